"""Find and read the TOML configuration (``-c``, ``$VIGIL_CONFIG``, ``./config.toml``, the
platform folder, the packaged defaults); the validator checks it."""

from __future__ import annotations

import importlib.resources
import tomllib
from pathlib import Path

from vigil._api.errors import ConfigError, ConfigIssue
from vigil._config.sections import (
    PACKAGED,
    Config,
    DaemonSettings,
)
from vigil._config.validate import Validator
from vigil._kit.paths import config_candidates


def find_source(explicit: str | None = None) -> str:
    """The file name of the config in effect, following the lookup order, or PACKAGED."""
    for path, must_exist in config_candidates(explicit):
        if path.is_file():
            return str(path)
        if must_exist:
            what = "is a folder" if path.is_dir() else "does not exist"
            raise ConfigError(issues=[ConfigIssue(str(path), "", f"config file {what}")])
    return PACKAGED


def read_source(explicit: str | None = None) -> tuple[str, str]:
    """(file name, TOML text) of the config in effect, following the lookup order."""
    source = find_source(explicit)
    if source == PACKAGED:
        return PACKAGED, packaged_text()
    return source, Path(source).read_text(encoding="utf-8")


def packaged_text() -> str:
    """The commented defaults shipped with vigil: used when no config file is found, and
    what `vigil init` writes."""
    return (importlib.resources.files("vigil._config") / "defaults.toml").read_text("utf-8")


def load(explicit: str | None = None) -> Config:
    """The validated config; raises ConfigError listing every issue."""
    return parse(*read_source(explicit))


def load_daemon(explicit: str | None = None) -> DaemonSettings:
    """Only the ``[daemon]`` section, as far as it can be read: for commands that must work
    while the rest of the config is broken (status, logs, plugins). A file that is not
    TOML at all gives the platform defaults."""
    source, text = read_source(explicit)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return DaemonSettings(source=source)
    return Validator(source, text, data).daemon()


def parse(source: str, text: str) -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = _toml_error_line(str(exc))
        issue = ConfigIssue(source, "", f"not valid TOML: {exc}", line)
        raise ConfigError(issues=[issue]) from None
    return Validator(source, text, data).run()


def _toml_error_line(message: str) -> int | None:
    marker = "(at line "
    if marker in message:
        return int(message.split(marker, 1)[1].split(",", 1)[0])
    return None
