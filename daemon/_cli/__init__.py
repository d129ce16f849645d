"""The ``vigil`` command: its arguments (``parser``), the small commands (``main``), and
the larger ones each in its module: ``status`` (and ``logs``, with ``logview``),
``history``, ``alerts`` (and ``silence``), ``heal`` (through the daemon, or here when
none runs), ``init`` (and ``--detect``), ``export``, ``plugin new`` (``scaffold``),
``maintenance``, ``wait``, ``deploy``, ``slo`` and ``anomalies``; a load check's floor
held outside the daemon (``floor``).

May import: every other part."""
