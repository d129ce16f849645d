"""The configuration: finding and loading the TOML file (``loader``), checking it and
building its sections (``validate``), each section's keys (``sections``), the
objectives' sections (``slos``), a plugin's typed options (``options``), the plugin
registry (``plugins``), the lines of keys for error messages (``tomllines``) and the
packaged defaults (``defaults.toml``).

May import: ``vigil._store``, ``vigil._api``, ``vigil._kit``."""
