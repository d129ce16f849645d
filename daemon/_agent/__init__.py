"""The daemon process: its main loop and signals (``agent``), sd_notify
(``sdnotify``), the control socket (``control``), the runtime entry other commands find
it by (``runtime``), the JSON logs (``logs``) and the maintenance windows it reads and
opens (``windows``).

May import: ``vigil._web`` and the parts below it."""
