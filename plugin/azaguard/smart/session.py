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
MAX_SESSIONS = 10_000  # sessions holding a completed launch
# Sessions with no completed launch yet (anyone can make one by opening /launch): kept apart and
# bounded per client address and in all, so a flood of launches never evicts a clinician's session.
MAX_ANONYMOUS = 2_000
MAX_ANONYMOUS_PER_ADDRESS = 20


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
    # What the page remembers between requests, kept here so any replica serving the next request has it:
    # the signed-in user's name once read (None and read: the EHR would not say), and the outcome of the last
    # write (the web layer's report, encoded), shown once by the page its redirect opens.
    user_name: str | None = None
    user_name_read: bool = False
    written: bytes | None = field(default=None, repr=False)
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
    address: str = ""  # the client address that created it (for the per-address bound)


class SessionStore:
    """Thread-safe in-memory store (Starlette runs the sync handlers in a thread pool).

    Two pools, both expiring when idle for `idle_timeout`: anonymous sessions (authorizations in
    flight only) are bounded per address and in all; sessions with a completed launch are bounded
    separately, so the first pool's churn never reaches them.
    """

    def __init__(
        self, *, idle_timeout: timedelta = IDLE_TIMEOUT, pending_ttl: timedelta = PENDING_TTL
    ) -> None:
        self.idle_timeout = idle_timeout
        self.pending_ttl = pending_ttl
        self._sessions: OrderedDict[str, Session] = OrderedDict()  # with launches, least recently seen first
        self._anonymous: OrderedDict[str, Session] = OrderedDict()  # oldest first
        # state -> id of the session that started that authorization: the callback finds its launch by the
        # state alone when the browser does not send the cookie (a third-party frame under a cookie policy).
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._sessions) + len(self._anonymous)

    def all(self) -> list[Session]:
        """Every session held (for tests and diagnostics)."""
        with self._lock:
            return [*self._sessions.values(), *self._anonymous.values()]

    def get(self, session_id: str | None, now: datetime) -> Session | None:
        if not session_id:
            return None
        with self._lock:
            session = self._sessions.get(session_id)
            if session is not None:
                if now - session.last_seen > self.idle_timeout:
                    del self._sessions[session_id]
                    return None
                session.last_seen = now
                self._sessions.move_to_end(session_id)
                return session
            session = self._anonymous.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_timeout:
                del self._anonymous[session_id]
                return None
            session.last_seen = now
            return session

    def get_or_create(self, session_id: str | None, now: datetime, address: str = "") -> Session:
        return self.get(session_id, now) or self.create(now, address)

    def create(self, now: datetime, address: str = "") -> Session:
        session = Session(
            id=secrets.token_urlsafe(32), csrf_token=secrets.token_urlsafe(32), created=now, last_seen=now,
            address=address,
        )
        with self._lock:
            self._sweep(now)
            same = [k for k, s in self._anonymous.items() if s.address == address]
            for key in same[: max(0, len(same) - MAX_ANONYMOUS_PER_ADDRESS + 1)]:
                del self._anonymous[key]  # this address's oldest launches in flight
            self._anonymous[session.id] = session
            while len(self._anonymous) > MAX_ANONYMOUS:
                self._anonymous.popitem(last=False)
        return session

    def _sweep(self, now: datetime) -> None:
        while self._anonymous:
            oldest = next(iter(self._anonymous.values()))
            if now - oldest.last_seen <= self.idle_timeout:
                break
            self._anonymous.popitem(last=False)
        while self._sessions:
            oldest = next(iter(self._sessions.values()))
            if now - oldest.last_seen <= self.idle_timeout:
                break
            self._sessions.popitem(last=False)

    def rotate(self, session: Session, now: datetime) -> Session:
        """A new session id (and CSRF token) for the same session, the old id forgotten: done when a
        launch completes, so an id planted in the browser before login is worth nothing after it."""
        with self._lock:
            self._anonymous.pop(session.id, None)
            self._sessions.pop(session.id, None)
            session.id = secrets.token_urlsafe(32)
            session.csrf_token = secrets.token_urlsafe(32)
            session.last_seen = now
            if session.launches:
                self._sessions[session.id] = session
                while len(self._sessions) > MAX_SESSIONS:
                    self._sessions.popitem(last=False)
            else:
                self._anonymous[session.id] = session
        return session

    def add_pending(self, session: Session, pending: PendingAuthorization) -> None:
        with self._lock:
            session.pending[pending.state] = pending
            while len(session.pending) > MAX_PENDING:
                session.pending.popitem(last=False)
            self._owners[pending.state] = session.id
            while len(self._owners) > MAX_ANONYMOUS * MAX_PENDING:
                self._owners.popitem(last=False)

    def pending_owner(self, state: str, now: datetime) -> Session | None:
        """The session holding the authorization in flight with this state (found by the state alone)."""
        with self._lock:
            owner = self._owners.get(state)
        return self.get(owner, now) if owner else None

    def take_pending(self, session: Session, state: str, now: datetime) -> PendingAuthorization | None:
        """The authorization awaiting this state, removed (single use); None if unknown or stale."""
        with self._lock:
            pending = session.pending.pop(state, None)
            if pending is not None:
                self._owners.pop(state, None)
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

    def update_launch(self, session: Session, ctx: LaunchContext) -> None:
        """A launch of `session` changed in place (refreshed tokens, the page's memory): here it already is; a
        shared store writes it back."""
