"""The public types a plugin builds on: ``Check`` and ``Result`` (``check``),
``ServiceManager`` and ``Action`` (``manager``), ``Alert``, ``AlertSink`` and
``Silence`` (``alert``), ``ConfigError`` (``errors``), thresholds, the sinks' HTTP
requests and the plugins' logger. ``vigil.__all__`` re-exports what plugins may use.

May import: ``vigil._kit``."""
