"""Sessions in the shared store (ops.store), so any replica serves any request.

`SharedSessionStore` has SessionStore's interface; each call reads the session from the store and
writes it back when it changed, under the key `session:<id>`. Launches in flight (state → PKCE
verifier) travel inside their session and are single-use as before: `take_pending` writes the
session back without them, and the state is also claimed once in the store (`state:<state>`), so two
replicas given the same callback cannot both complete it. Anonymous sessions expire with the pending
authorization they carry; launched ones after the idle timeout. The per-address bound on anonymous
sessions is the memory store's; with a shared store the launch rate limit (shared too) bounds them.
"""

from __future__ import annotations

import dataclasses
import secrets
import threading
import typing
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

import msgspec
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from azaguard.ops.store import SharedStore
from azaguard.smart.session import (
    MAX_LAUNCHES,
    MAX_PENDING,
    LaunchContext,
    PendingAuthorization,
    Session,
    SessionStore,
)

_LOCK_TYPE = type(threading.Lock())


def encode(session: Session) -> bytes:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(session):
        value = getattr(session, f.name)
        if f.name == "pending":
            value = list(value.values())
        elif f.name == "launches":
            value = [_plain(c) for c in value.values()]
        data[f.name] = value
    return msgspec.json.encode(data)


def _plain(ctx: LaunchContext) -> dict[str, Any]:
    return {f.name: getattr(ctx, f.name) for f in dataclasses.fields(ctx)
            if not isinstance(getattr(ctx, f.name), _LOCK_TYPE)}


def decode(payload: bytes) -> Session:
    data = msgspec.json.decode(payload)
    pending = [msgspec.convert(p, type=PendingAuthorization) for p in data.pop("pending", [])]
    launches = [_launch(c) for c in data.pop("launches", [])]
    session = msgspec.convert(data, type=Session)
    session.pending = OrderedDict((p.state, p) for p in pending)
    session.launches = OrderedDict((c.id, c) for c in launches)
    return session


def _launch(data: dict[str, Any]) -> LaunchContext:
    # msgspec cannot convert to LaunchContext itself (its lock field's type): field by field instead.
    hints = typing.get_type_hints(LaunchContext)
    values = {f.name: msgspec.convert(data[f.name], type=hints[f.name])
              for f in dataclasses.fields(LaunchContext) if f.name in data}
    return LaunchContext(**values)


def cipher(keys: list[str]) -> MultiFernet | None:
    """Fernet (AES-CBC + HMAC) over the keys: the first encrypts, each decrypts; None without keys."""
    if not keys:
        return None
    try:
        return MultiFernet([Fernet(k.encode()) for k in keys])
    except ValueError as exc:
        raise ValueError("a session key is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                         "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"
                         ) from exc


class SharedSessionStore(SessionStore):
    def __init__(self, store: SharedStore, *, idle_timeout: timedelta | None = None,
                 pending_ttl: timedelta | None = None, keys: list[str] | None = None) -> None:
        options = {k: v for k, v in (("idle_timeout", idle_timeout), ("pending_ttl", pending_ttl)) if v is not None}
        super().__init__(**options)
        self.store = store
        self.cipher = cipher(keys or [])

    # -- the store ----------------------------------------------------------------------------------
    def _ttl(self, session: Session) -> float:
        return (self.idle_timeout if session.launches else self.pending_ttl).total_seconds()

    def _save(self, session: Session) -> None:
        payload = encode(session)
        if self.cipher is not None:
            payload = self.cipher.encrypt(payload)
        self.store.put("session:" + session.id, payload, self._ttl(session))

    def _load(self, session_id: str) -> Session | None:
        payload = self.store.get("session:" + session_id)
        if payload is None:
            return None
        if self.cipher is not None:
            try:
                payload = self.cipher.decrypt(payload)
            except InvalidToken:
                return None  # another key, or tampered with: as good as no session (relaunch)
        try:
            return decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError, TypeError, KeyError):
            # Encrypted while this replica has no key, or written by another version during a rolling
            # upgrade: as good as no session (relaunch), never a 500.
            return None

    def __len__(self) -> int:
        return self.store.live("session:")  # every replica's sessions

    def all(self) -> list[Session]:
        return []

    def get(self, session_id: str | None, now: datetime) -> Session | None:
        if not session_id or len(session_id) > 100:
            return None
        session = self._load(session_id)
        if session is None or now - session.last_seen > self.idle_timeout:
            return None
        if (now - session.last_seen).total_seconds() > 60:  # sliding expiry, written at most once a minute
            session.last_seen = now
            self._save(session)
        return session

    def create(self, now: datetime, address: str = "") -> Session:
        session = Session(id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32), created=now,
                          last_seen=now, address=address)
        self._save(session)
        return session

    def rotate(self, session: Session, now: datetime) -> Session:
        self.store.delete("session:" + session.id)
        session.id = secrets.token_urlsafe(32)
        session.csrf_token = secrets.token_urlsafe(32)
        session.last_seen = now
        self._save(session)
        return session

    def add_pending(self, session: Session, pending: PendingAuthorization) -> None:
        session.pending[pending.state] = pending
        while len(session.pending) > MAX_PENDING:
            session.pending.popitem(last=False)
        self._save(session)
        # The state names its session in the store too: a callback without the cookie finds it on any replica.
        self.store.put("pending:" + pending.state, session.id.encode(), self.pending_ttl.total_seconds())

    def pending_owner(self, state: str, now: datetime) -> Session | None:
        owner = self.store.get("pending:" + state) if state and len(state) <= 100 else None
        return self.get(owner.decode(), now) if owner else None

    def take_pending(self, session: Session, state: str, now: datetime) -> PendingAuthorization | None:
        pending = session.pending.pop(state, None)
        if pending is None:
            return None
        self._save(session)
        if not self.store.add_once("state:" + state, self.pending_ttl.total_seconds()):
            return None  # another replica completed this authorization already
        if now - pending.created > self.pending_ttl:
            return None
        return pending

    def add_launch(self, session: Session, launch: LaunchContext) -> None:
        session.launches[launch.id] = launch
        while len(session.launches) > MAX_LAUNCHES:
            session.launches.popitem(last=False)
        self._save(session)

    def launch(self, session: Session, launch_id: str | None) -> LaunchContext | None:
        return session.launches.get(launch_id) if launch_id else None

    def drop_launch(self, session: Session, launch_id: str) -> None:
        session.launches.pop(launch_id, None)
        self._save(session)

    def update_launch(self, session: Session, ctx: LaunchContext) -> None:
        """Write back a launch changed in place (refreshed tokens, the page's memory) so every replica sees it:
        into the session as the store holds it now (another request may have changed its other launches)."""
        stored = self._load(session.id)
        if stored is None:
            return
        session = stored
        session.launches[ctx.id] = ctx
        self._save(session)
