"""What a serving process sets up once from its configuration: logging, metrics, the shared store,
the audit trail, and the readiness checks; web/ and cds/ ask here for their session store, rate
limiter and replay cache, so `session_store` decides for all of them."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from azaguard.config import MEMORY
from azaguard.ops import logs, metrics
from azaguard.ops.audit import AuditTrail
from azaguard.ops.store import SharedStore, open_store

if TYPE_CHECKING:
    from azaguard.config import AppConfig
    from azaguard.mappings import Mappings
    from azaguard.smart.session import SessionStore

log = logging.getLogger("azaguard.ops")
_stores: dict[tuple[str, str | None], SharedStore] = {}
_trails: dict[str | None, AuditTrail] = {}
_lock = threading.Lock()


def shared_store(config: AppConfig) -> SharedStore | None:
    """The configured shared store, one per process and URL; None for `memory` (each app keeps its own)."""
    if config.session_store == MEMORY:
        return None
    key = (config.session_store, config.cds_database_url)
    with _lock:
        if key not in _stores:
            _stores[key] = open_store(config.session_store, config.cds_database_url)
        return _stores[key]


def audit_trail(config: AppConfig) -> AuditTrail:
    with _lock:
        trail = _trails.get(config.cds_database_url)
        if trail is None:
            trail = _trails[config.cds_database_url] = AuditTrail(config.cds_database_url)
            trail.listen_for_alert_writes()
            if config.audit_fhir:
                from azaguard.ops.auditevent import AuditEventWriter

                trail.sinks.append(AuditEventWriter.for_process().submit)
        return trail


def session_store(config: AppConfig) -> SessionStore:
    from azaguard.smart.session import SessionStore

    store = shared_store(config)
    sessions: SessionStore
    if store is None:
        sessions = SessionStore()
    else:
        from azaguard.ops.sessions import SharedSessionStore

        keys = config.session_keys()
        if not keys:
            log.warning("sessions unencrypted in the shared store",
                        extra={"reason": "no session_key_env: the EHR's tokens are stored in clear",
                               "session_store": store.kind})
        try:
            sessions = SharedSessionStore(store, keys=keys)
        except ValueError as exc:
            from azaguard.config import ConfigError

            raise ConfigError(f"session_key_env: {exc}") from exc
    metrics.ACTIVE_SESSIONS.set_function(lambda: len(sessions))  # the latest app's store (one per process)
    return sessions


class SharedRateLimiter:
    """RateLimiter's interface over the shared store: `rate` per `per` seconds per key, fixed windows."""

    def __init__(self, store: SharedStore, *, rate: int = 30, per: float = 60.0,
                 clock: Callable[[], float] | None = None) -> None:
        import time

        self.store, self.rate, self.per = store, rate, per
        self._clock = clock or time.time

    def allow(self, key: str) -> float:
        now = self._clock()
        window = int(now // self.per)
        if self.store.count(f"rate:{key}:{window}", self.per) <= self.rate:
            return 0.0
        return (window + 1) * self.per - now


def rate_limiter(config: AppConfig) -> Any:
    store = shared_store(config)
    if store is None:
        from azaguard.websecurity import RateLimiter

        return RateLimiter()
    return SharedRateLimiter(store)


def readiness_checks(config: AppConfig, mappings: Mappings | None) -> dict[str, Callable[[], str | None]]:
    from azaguard.ops.database import reachable

    store = shared_store(config)
    return {
        "config": lambda: None,  # the process would not be serving with an invalid one
        "mappings": lambda: None if mappings is not None and mappings.version else "the mappings are not loaded",
        "database": lambda: reachable(config.cds_database_url),
        "session_store": (lambda: store.ping()) if store is not None else (lambda: None),
    }


def start(config: AppConfig, *, log_format: str | None = None) -> None:
    """Logging from the config (a command-line --log-format wins), metrics listeners, the audit trail."""
    logs.configure(log_format or config.log_format,  # type: ignore[arg-type]
                   level=config.log_level, patient_ids=config.log_patient_ids)
    metrics.install()
    audit_trail(config)
