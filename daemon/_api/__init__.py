"""The public types a plugin builds on: ``Check`` and ``Result`` (``check``),
``ServiceManager`` and ``Action`` (``manager``), ``Alert``, ``AlertSink`` and
``Silence`` (``alert``), ``ConfigError`` (``errors``), thresholds (``thresholds``), the
latency ladder results are counted on (``ladder``), the sinks' HTTP requests
(``httppost``) and the plugins' logger (``logger``). ``vigil.__all__`` re-exports what
plugins may use.

May import: ``vigil._kit``."""
