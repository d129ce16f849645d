"""The hooks a vigil plugin can implement. Each is documented in plugins/README.md.

Mark implementations with ``vigil.hookimpl``; a plugin is any module or object that
has them. vigil calls each implementation on its own, so one that raises is logged as
``plugin.error`` and never keeps the others from running.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import pluggy

from vigil._api.alert import AlertSink
from vigil._api.check import Check, Result
from vigil._api.manager import ServiceManager

hookspec = pluggy.HookspecMarker("vigil")
hookimpl = pluggy.HookimplMarker("vigil")

#: The callbacks the hooks below hand a plugin, to annotate an implementation with.
RegisterCheck = Callable[[str, type[Check]], None]
RegisterManager = Callable[[str, type[ServiceManager]], None]
RegisterSink = Callable[[str, type[AlertSink]], None]


class Detected(Protocol):
    """``add`` in ``vigil_detect``: what a plugin found, as config tables to write."""

    def __call__(self, name: str, check: dict[str, Any],
                 service: dict[str, Any] | None = None, note: str = "") -> None: ...


@hookspec
def vigil_check_types(register: RegisterCheck) -> None:
    """Offer check types: call ``register("name", CheckSubclass)`` once for each.

    The name is what ``type = "name"`` in a ``[checks.X]`` section refers to.
    """


@hookspec
def vigil_service_managers(register: RegisterManager) -> None:
    """Offer service managers: call ``register("name", ServiceManagerSubclass)``.

    The name is what ``manager = "name"`` in a ``[services.X]`` section refers to.
    """


@hookspec
def vigil_alert_sinks(register: RegisterSink) -> None:
    """Offer alert sinks: call ``register("name", AlertSinkSubclass)``.

    The name is what ``type = "name"`` in an ``[alerts.X]`` section refers to.
    """


@hookspec
def vigil_detect(add: Detected) -> None:
    """Look for what your check types watch on this host, for ``vigil init --detect``:
    call ``add(name, check={...}, service={...} or None, note="what was found")`` with
    the ``[checks.NAME]`` and ``[services.NAME]`` tables to write."""


@hookspec
def vigil_check_result(check: str, result: Result, state: str) -> None:
    """Observe every result: ``check`` is the check's name, ``state`` its state after it
    (``PENDING``, ``OK`` or ``FAILING``). Called from the check's worker thread: be quick."""


@hookspec
def vigil_state_changed(check: str, old: str, new: str, result: Result) -> None:
    """Observe every state transition of a check, with the result that caused it."""
