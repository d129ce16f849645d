"""The ``vigil`` command: the parser and the small commands (``main``), and the
larger ones each in its module: ``status`` (and ``logs``, with ``statusview`` and
``logview``), ``history``, ``alerts``, ``export``, ``detect`` (for ``init --detect``)
and ``oneshot`` (a heal with no daemon running).

May import: every other part."""
