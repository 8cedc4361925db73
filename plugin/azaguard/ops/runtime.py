"""What a serving process sets up once from its configuration: logging, metrics, the shared store,
the audit trail, and the readiness checks; web/ and cds/ ask here for their session store, rate
limiter and replay cache, so `session_store` decides for all of them.

Each takes the configuration and the Settings the entry point built (`serve`, `demo`, or the outermost library
call): the service's database is the configuration's, else the one those settings name (`database_url`), never
the environment as it is when a store happens to open."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from azaguard import websecurity
from azaguard.config import MEMORY, AppConfig, ConfigError
from azaguard.mappings import Mappings, default_mappings_dir, load_mappings_from
from azaguard.ops import logs, metrics
from azaguard.ops.audit import AuditTrail
from azaguard.ops.auditevent import AuditEventWriter
from azaguard.ops.database import default_database_url, reachable
from azaguard.ops.sessions import SharedSessionStore
from azaguard.ops.store import SharedStore, open_store
from azaguard.smart.session import SessionStore

if TYPE_CHECKING:
    from azaguard.settings import Settings

log = logging.getLogger("azaguard.ops")
_stores: dict[tuple[str, str | None], SharedStore] = {}
_trails: dict[str, AuditTrail] = {}
_lock = threading.Lock()


def database_url(config: AppConfig, settings: Settings) -> str:
    """The service's database: cds_database_url, else the default `settings` name ($AZAGUARD_CDS_DATABASE_URL, or
    an SQLite file under their state directory)."""
    return config.cds_database_url or default_database_url(settings)


def shared_store(config: AppConfig, settings: Settings) -> SharedStore | None:
    """The configured shared store, one per process and URL; None for `memory` (each app keeps its own)."""
    if config.session_store == MEMORY:
        return None
    database = database_url(config, settings)
    key = (config.session_store, database)
    with _lock:
        if key not in _stores:
            _stores[key] = open_store(config.session_store, database)
        return _stores[key]


def audit_trail(config: AppConfig, settings: Settings) -> AuditTrail:
    database = database_url(config, settings)
    with _lock:
        trail = _trails.get(database)
        if trail is None:
            trail = _trails[database] = AuditTrail(database)
            trail.listen_for_alert_writes()
            if config.audit_fhir:
                trail.sinks.append(AuditEventWriter.for_process().submit)
        return trail


def session_store(config: AppConfig, settings: Settings) -> SessionStore:
    store = shared_store(config, settings)
    sessions: SessionStore
    if store is None:
        sessions = SessionStore()
    else:
        keys = config.session_keys()
        if not keys:
            log.warning("sessions unencrypted in the shared store",
                        extra={"reason": "no session_key_env: the EHR's tokens are stored in clear",
                               "session_store": store.kind})
        try:
            sessions = SharedSessionStore(store, keys=keys)
        except ValueError as exc:
            raise ConfigError(f"session_key_env: {exc}") from exc
    metrics.ACTIVE_SESSIONS.set_function(lambda: len(sessions))  # the latest app's store (one per process)
    return sessions


class SharedRateLimiter:
    """RateLimiter's interface over the shared store: `rate` per `per` seconds per key, fixed windows."""

    def __init__(self, store: SharedStore, *, rate: int = 30, per: float = 60.0,
                 clock: Callable[[], float] | None = None) -> None:
        self.store, self.rate, self.per = store, rate, per
        self._clock = clock or time.time

    def allow(self, key: str) -> float:
        now = self._clock()
        window = int(now // self.per)
        if self.store.count(f"rate:{key}:{window}", self.per) <= self.rate:
            return 0.0
        return (window + 1) * self.per - now


def rate_limiter(config: AppConfig, settings: Settings) -> Any:
    store = shared_store(config, settings)
    if store is None:
        return websecurity.RateLimiter()  # read at call time: tests replace it
    return SharedRateLimiter(store)


def readiness_checks(
    config: AppConfig, settings: Settings, mappings: Mappings | None
) -> dict[str, Callable[[], str | None]]:
    store = shared_store(config, settings)
    database = database_url(config, settings)
    return {
        "config": lambda: None,  # the process would not be serving with an invalid one
        "mappings": lambda: None if mappings is not None and mappings.version else "the mappings are not loaded",
        "database": lambda: reachable(database),
        "session_store": (lambda: store.ping()) if store is not None else (lambda: None),
    }


@cache
def _mappings_in(directory: Path) -> Mappings:
    return load_mappings_from(directory)


def mappings(settings: Settings) -> Mappings:
    """The mappings `settings` name (AZAGUARD_MAPPINGS, else the bundled ones), loaded once per process and folder."""
    return _mappings_in(default_mappings_dir(settings))


def start(config: AppConfig, settings: Settings, *, log_format: str | None = None) -> None:
    """Logging from the config (a command-line --log-format wins), metrics listeners, the audit trail."""
    logs.configure(log_format or config.log_format,  # type: ignore[arg-type]
                   level=config.log_level, patient_ids=config.log_patient_ids)
    metrics.install()
    audit_trail(config, settings)
