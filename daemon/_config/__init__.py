"""The configuration: finding and loading the TOML file (``loader``), each section's
keys (``sections``), a plugin's typed options (``options``), the plugin registry
(``plugins``), the lines of keys for error messages (``tomllines``) and the packaged
defaults (``defaults.toml``).

May import: ``vigil._store``, ``vigil._api``, ``vigil._kit``."""
