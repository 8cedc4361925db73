"""A tiny in-process event bus: low layers say what happened, ops modules listen.

The FHIR client and service.py call `emit`; metrics and the audit trail subscribe when a long-running
command (serve, demo, scan) sets them up. Nothing is imported here, so emitting costs a dict lookup.
A listener that fails never breaks the caller: operations must not fail the clinical answer.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

Listener = Callable[..., None]
_listeners: dict[str, list[Listener]] = {}

# What low layers emit (name: keyword fields):
FHIR_RESPONSE = "fhir.response"  # method, host, status (None: no answer), seconds
ALERT_WRITE = "alert.write"  # patient, resource_type, rule, outcome
CHECKED = "patient.checked"  # patient, write (bool), outcome ("evaluated" | "failed")


def listen(name: str, listener: Listener) -> None:
    if listener not in _listeners.setdefault(name, []):
        _listeners[name].append(listener)


def unlisten(name: str, listener: Listener) -> None:
    if listener in _listeners.get(name, []):
        _listeners[name].remove(listener)


def emit(name: str, **fields: Any) -> None:
    for listener in _listeners.get(name, ()):
        try:
            listener(**fields)
        except Exception:  # an operations failure must never fail the clinical answer
            logging.getLogger("azaguard.ops").exception("listener for %s failed", name)
