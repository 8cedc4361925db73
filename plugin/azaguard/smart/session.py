"""Server-side sessions: the browser holds only a random session id.

A session holds the authorizations in flight (state → PKCE verifier, keyed by
state so two tabs can launch at once) and the completed launches, each under
its own random id carried in the page URL: a clinician who launches patient A
in one tab and patient B in another never sees B's data on A's page.
Kept in memory: a restart means relaunching from the EHR, which is acceptable
for an EHR-launched app and keeps tokens off disk.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from azaguard.smart.discovery import SmartConfiguration
from azaguard.smart.launch import Identity, TokenSet

IDLE_TIMEOUT = timedelta(hours=8)
PENDING_TTL = timedelta(minutes=10)
MAX_PENDING = 5
MAX_LAUNCHES = 10
MAX_SESSIONS = 10_000


@dataclass
class PendingAuthorization:
    state: str = field(repr=False)
    iss: str
    smart: SmartConfiguration
    code_verifier: str = field(repr=False)
    redirect_uri: str
    scope: str  # requested
    launch: str | None = field(repr=False)
    created: datetime


@dataclass
class LaunchContext:
    id: str
    iss: str
    smart: SmartConfiguration
    tokens: TokenSet
    requested_scope: str
    identity: Identity | None
    created: datetime
    # Serialises refreshes: two page loads must not spend one refresh token twice.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def patient_id(self) -> str:
        return self.tokens.patient or ""


@dataclass
class Session:
    id: str = field(repr=False)
    csrf_token: str = field(repr=False)
    created: datetime
    last_seen: datetime
    pending: OrderedDict[str, PendingAuthorization] = field(default_factory=OrderedDict)
    launches: OrderedDict[str, LaunchContext] = field(default_factory=OrderedDict)


class SessionStore:
    """Thread-safe in-memory store (Starlette runs the sync handlers in a thread pool)."""

    def __init__(
        self, *, idle_timeout: timedelta = IDLE_TIMEOUT, pending_ttl: timedelta = PENDING_TTL
    ) -> None:
        self.idle_timeout = idle_timeout
        self.pending_ttl = pending_ttl
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session_id: str | None, now: datetime) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_timeout:
                del self._sessions[session_id]
                return None
            session.last_seen = now
            self._sessions.move_to_end(session_id)
            return session

    def get_or_create(self, session_id: str | None, now: datetime) -> Session:
        return self.get(session_id, now) or self.create(now)

    def create(self, now: datetime) -> Session:
        session = Session(
            id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now
        )
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)  # least recently seen
        return session

    def add_pending(self, session: Session, pending: PendingAuthorization) -> None:
        with self._lock:
            session.pending[pending.state] = pending
            while len(session.pending) > MAX_PENDING:
                session.pending.popitem(last=False)

    def take_pending(self, session: Session, state: str, now: datetime) -> PendingAuthorization | None:
        """The authorization awaiting this state, removed (single use); None if unknown or stale."""
        with self._lock:
            pending = session.pending.pop(state, None)
        if pending is None or now - pending.created > self.pending_ttl:
            return None
        return pending

    def add_launch(self, session: Session, launch: LaunchContext) -> None:
        with self._lock:
            session.launches[launch.id] = launch
            while len(session.launches) > MAX_LAUNCHES:
                session.launches.popitem(last=False)

    def launch(self, session: Session, launch_id: str | None) -> LaunchContext | None:
        if not launch_id:
            return None
        with self._lock:
            return session.launches.get(launch_id)

    def drop_launch(self, session: Session, launch_id: str) -> None:
        with self._lock:
            session.launches.pop(launch_id, None)
