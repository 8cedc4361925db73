"""The service's SQL database (SQLAlchemy): one engine per URL per process, shared by the CDS store,
the audit trail and the database-backed shared store. SQLite (a file, the default) or any URL, e.g.
PostgreSQL shared by several replicas (`postgresql+psycopg://…`, the `postgres` extra)."""

from __future__ import annotations

import os
import threading
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text

from azaguard.privatefiles import private_dir
from azaguard.settings import CDS_DATABASE_URL, Settings, current

DB_ENV = CDS_DATABASE_URL
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def default_database_url(settings: Settings | None = None) -> str:
    """$AZAGUARD_CDS_DATABASE_URL, else an SQLite file in the user's state directory."""
    environment = current(settings)
    if environment.cds_database_url:
        return environment.cds_database_url
    base = environment.state_home / "azaguard"
    private_dir(base)
    base.chmod(0o700)  # azaguard's own folder: feedback and audit name clinicians' decisions
    return f"sqlite:///{base / 'cds.sqlite'}"


def _private_sqlite(database: str | None) -> None:
    """The SQLite file made (or set) 0600 before SQLite opens it, never through a link; its journal
    files take the same mode from it."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    fd = os.open(database, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def engine_for(url: str | None, *tables: MetaData) -> Engine:
    """The process's engine for `url` (default_database_url when None), with `tables` created."""
    url = url or default_database_url()
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = create_engine(url, pool_pre_ping=True)
            if engine.dialect.name == "sqlite":
                _private_sqlite(engine.url.database)
                event.listen(engine, "connect", sqlite_pragmas)
            _engines[url] = engine
    for meta in tables:
        meta.create_all(engine)
    return engine


def reachable(url: str | None) -> str | None:
    """None when the database answers, else why not (one sentence, no credentials)."""
    try:
        with engine_for(url).connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return f"the database does not answer ({type(exc).__name__})"
    return None


def sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer (several workers)
    # WAL + NORMAL: no fsync per commit (a crash keeps the file consistent and may forget the last
    # commits); a hook call must not wait on the disk for its replay-cache entry.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
