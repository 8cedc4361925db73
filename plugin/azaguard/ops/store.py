"""The shared store: what several `serve` replicas must agree on, chosen by `session_store`.

- `memory` (the default): in this process only; one replica.
- `redis://…` / `rediss://…`: Redis through redis-py; any number of replicas.
- `database`: the service's SQL database (cds_database_url), table `ops_kv`; any number of replicas
  sharing that database (PostgreSQL), without another service to run.

What lives here: sessions (with launches in flight: state and PKCE verifier), the CDS JWT replay
cache and rate-limit counters. Every entry expires. Values are opaque bytes to the store.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from azaguard.config import DATABASE, MEMORY, valid_store_url
from azaguard.ops.database import engine_for, reachable


class SharedStore(Protocol):
    kind: str

    def get(self, key: str) -> bytes | None: ...
    def put(self, key: str, value: bytes, ttl: float) -> None: ...
    def take(self, key: str) -> bytes | None:
        """Get and delete in one step: of two replicas taking the same key, one gets it."""
        ...

    def delete(self, key: str) -> None: ...
    def add_once(self, key: str, ttl: float) -> bool:
        """True the first time `key` is added (until it expires); False after."""
        ...

    def count(self, key: str, ttl: float) -> int:
        """Add one to the counter `key` (created expiring after `ttl`); the new count."""
        ...

    def live(self, prefix: str) -> int:
        """How many unexpired entries have keys starting with `prefix` (for the metrics)."""
        ...

    def ping(self) -> str | None:
        """None when the store answers, else why not."""
        ...


def open_store(url: str, database_url: str | None = None) -> SharedStore:
    valid_store_url(url)
    if url == MEMORY:
        return MemoryStore()
    if url == DATABASE:
        return DatabaseStore(database_url)
    return RedisStore(url)


class MemoryStore:
    kind = MEMORY

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = 50_000) -> None:
        self._data: dict[str, tuple[bytes, float]] = {}
        self._counts: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self.max_entries = max_entries  # each of the two tables; beyond it the oldest entries go

    def _live(self, key: str) -> bytes | None:
        hit = self._data.get(key)
        if hit is None or hit[1] <= self._clock():
            self._data.pop(key, None)
            return None
        return hit[0]

    def get(self, key: str) -> bytes | None:
        with self._lock:
            return self._live(key)

    def put(self, key: str, value: bytes, ttl: float) -> None:
        with self._lock:
            self._data[key] = (value, self._clock() + ttl)
            if len(self._data) > self.max_entries:
                self._sweep()

    def _sweep(self) -> None:
        now = self._clock()
        for k in [k for k, (_, exp) in self._data.items() if exp <= now]:
            del self._data[k]
        for k in [k for k, (_, exp) in self._counts.items() if exp <= now]:
            del self._counts[k]
        # Still over the cap with live entries: the oldest go (a dict keeps insertion order), a tenth at a time.
        for table in (self._data, self._counts):
            if len(table) > self.max_entries:
                for k in list(table)[: len(table) - self.max_entries * 9 // 10]:
                    del table[k]

    def take(self, key: str) -> bytes | None:
        with self._lock:
            value = self._live(key)
            self._data.pop(key, None)
            return value

    def delete(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def add_once(self, key: str, ttl: float) -> bool:
        with self._lock:
            if self._live(key) is not None:
                return False
            self._data[key] = (b"1", self._clock() + ttl)
            return True

    def count(self, key: str, ttl: float) -> int:
        with self._lock:
            n, exp = self._counts.get(key, (0, self._clock() + ttl))
            if exp <= self._clock():
                n, exp = 0, self._clock() + ttl
            self._counts[key] = (n + 1, exp)
            if len(self._counts) > self.max_entries:
                self._sweep()
            return n + 1

    def live(self, prefix: str) -> int:
        now = self._clock()
        with self._lock:
            return sum(1 for k, (_, exp) in self._data.items() if k.startswith(prefix) and exp > now)

    def ping(self) -> str | None:
        return None


class RedisStore:
    kind = "redis"

    def __init__(self, url: str) -> None:
        import redis  # the optional Redis client: only a redis:// session_store loads it

        self.url = url
        self.redis = redis.Redis.from_url(url, socket_timeout=3.0, socket_connect_timeout=3.0)

    def get(self, key: str) -> bytes | None:
        value = self.redis.get(key)
        return value if isinstance(value, bytes) else None

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self.redis.set(key, value, px=max(1, int(ttl * 1000)))

    def take(self, key: str) -> bytes | None:
        value = self.redis.getdel(key)
        return value if isinstance(value, bytes) else None

    def delete(self, key: str) -> None:
        self.redis.delete(key)

    def add_once(self, key: str, ttl: float) -> bool:
        return bool(self.redis.set(key, b"1", nx=True, px=max(1, int(ttl * 1000))))

    def count(self, key: str, ttl: float) -> int:
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.pexpire(key, max(1, int(ttl * 1000)), nx=True)
        n, _ = pipe.execute()
        return int(n)

    def live(self, prefix: str) -> int:
        return sum(1 for _ in self.redis.scan_iter(match=prefix + "*", count=1000))

    def ping(self) -> str | None:
        try:
            self.redis.ping()
        except Exception as exc:
            return f"the session store (Redis) does not answer ({type(exc).__name__})"
        return None


_meta = MetaData()
kv = Table(
    "ops_kv", _meta,
    Column("key", String(300), primary_key=True),
    Column("value", LargeBinary, nullable=True),
    Column("n", Integer, nullable=False, default=0),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)  # fmt: skip


class DatabaseStore:
    kind = DATABASE

    def __init__(self, database_url: str | None) -> None:
        self.database_url = database_url
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self._last_purge = 0.0

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = engine_for(self.database_url, _meta)
            return self._engine

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)

    def _purge(self) -> None:
        # Expired rows are never read (every query checks expires_at): remove them now and then.
        if time.monotonic() - self._last_purge < 60:
            return
        self._last_purge = time.monotonic()
        with self.engine.begin() as conn:
            conn.execute(delete(kv).where(kv.c.expires_at < self._now()))

    def get(self, key: str) -> bytes | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(kv.c.value).where(kv.c.key == key, kv.c.expires_at > self._now())).first()
        return bytes(row[0]) if row is not None and row[0] is not None else None

    def put(self, key: str, value: bytes, ttl: float) -> None:
        self._purge()
        expires = self._now() + timedelta(seconds=ttl)
        with self.engine.begin() as conn:
            conn.execute(delete(kv).where(kv.c.key == key))
            conn.execute(insert(kv).values(key=key, value=value, n=0, expires_at=expires))

    def take(self, key: str) -> bytes | None:
        with self.engine.begin() as conn:
            row = conn.execute(select(kv.c.value).where(kv.c.key == key, kv.c.expires_at > self._now())).first()
            if row is None:
                return None
            # Only the transaction whose delete removed the row may use it.
            if conn.execute(delete(kv).where(kv.c.key == key)).rowcount != 1:
                return None
        return bytes(row[0]) if row[0] is not None else None

    def delete(self, key: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(kv).where(kv.c.key == key))

    def add_once(self, key: str, ttl: float) -> bool:
        self._purge()
        now = self._now()
        try:
            with self.engine.begin() as conn:
                conn.execute(delete(kv).where(kv.c.key == key, kv.c.expires_at <= now))
                conn.execute(insert(kv).values(key=key, value=None, n=1, expires_at=now + timedelta(seconds=ttl)))
        except IntegrityError:
            return False
        return True

    def count(self, key: str, ttl: float) -> int:
        now = self._now()
        for _ in range(3):
            try:
                with self.engine.begin() as conn:
                    conn.execute(delete(kv).where(kv.c.key == key, kv.c.expires_at <= now))
                    done = conn.execute(update(kv).where(kv.c.key == key).values(n=kv.c.n + 1)).rowcount
                    if not done:
                        conn.execute(insert(kv).values(key=key, value=None, n=1,
                                                       expires_at=now + timedelta(seconds=ttl)))
                    return int(conn.execute(select(kv.c.n).where(kv.c.key == key)).scalar_one())
            except IntegrityError:
                continue  # another replica created it meanwhile: count again
        return 1_000_000  # contended beyond reason: count as over any limit

    def live(self, prefix: str) -> int:
        query = select(func.count()).select_from(kv).where(kv.c.key.startswith(prefix), kv.c.expires_at > self._now())
        with self.engine.connect() as conn:
            return int(conn.execute(query).scalar_one())

    def ping(self) -> str | None:
        return reachable(self.database_url)
