"""The daemon process: its main loop and signals (``agent``), sd_notify
(``sdnotify``), the control socket (``control``), the runtime entry other commands find
it by (``runtime``) and the JSON logs (``logs``).

May import: ``vigil._web`` and the parts below it."""
