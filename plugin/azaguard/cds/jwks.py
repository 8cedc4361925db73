"""JWK Sets fetched for CDS clients (jwks_url, allow-listed jku): bounded, cached, never a stampede.

A key set is fetched through the one bounded fetch (`httpbound.fetch`: a byte cap and a total
deadline, so a dripping or endless host costs one request at most JWKS_DEADLINE seconds) and kept
JWKS_TTL_SECONDS. Per URL: at most one fetch at a time (a request that finds a fetch in flight does
not wait for it: it uses the set in hand, or is refused at once), and at most one fetch every
MIN_REFETCH_SECONDS whether it worked or not. A `kid` the fresh set does not hold is remembered as
unknown for UNKNOWN_KID_SECONDS: tokens naming made-up kids cannot make the service fetch again and
again. Every failure is `Untrusted` (401) with one sentence.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from azaguard.errors import AuthError
from azaguard.httpbound import fetch

JWKS_TTL_SECONDS = 300.0
MIN_REFETCH_SECONDS = 30.0
UNKNOWN_KID_SECONDS = 60.0
JWKS_DEADLINE = 3.0  # the whole response; the request waiting for it holds one worker at most this long
JWKS_MAX_BYTES = 256 << 10  # a key set is a few kB
_MAX_UNKNOWN = 1024  # remembered unknown (url, kid) pairs, oldest forgotten first


class Untrusted(AuthError):
    """The caller could not be authenticated: 401, nothing evaluated."""


@dataclass
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")  # when `keys` arrived
    tried_at: float = float("-inf")  # the last attempt, successful or not
    error: str | None = None  # why the last attempt failed


class JwksCache:
    """JWK Sets by URL, shared by the process's requests (thread-safe)."""

    def __init__(self, transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.monotonic):
        self._transport = transport
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self._unknown: OrderedDict[tuple[str, str], float] = OrderedDict()
        self.fetches = 0  # HTTP fetches made (tests and metrics)

    def get(self, url: str, kid: str | None) -> KeySet:
        """The key set at `url`, fetched if the one in hand is stale or lacks `kid` (within the limits above)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.setdefault(url, _Entry())
            flight = self._fetching.setdefault(url, threading.Lock())
            known_unknown = kid is not None and self._unknown.get((url, kid), float("-inf")) > now
        keys = entry.keys
        fresh = keys is not None and now - entry.fetched_at < JWKS_TTL_SECONDS
        if keys is not None and (kid is None or _has_kid(keys, kid) or known_unknown) and fresh:
            return keys
        if flight.locked():  # another request is fetching it: do not wait
            return self._in_hand(url, entry, busy=True)
        if now - entry.tried_at < MIN_REFETCH_SECONDS or known_unknown:
            return self._in_hand(url, entry)
        if not flight.acquire(blocking=False):
            return self._in_hand(url, entry, busy=True)
        try:
            self._fetch(url, entry)
        finally:
            flight.release()
        if entry.keys is not None and kid is not None and not _has_kid(entry.keys, kid):
            with self._lock:
                self._unknown[(url, kid)] = self._clock() + UNKNOWN_KID_SECONDS
                self._unknown.move_to_end((url, kid))
                while len(self._unknown) > _MAX_UNKNOWN:
                    self._unknown.popitem(last=False)
        return self._in_hand(url, entry)

    def _in_hand(self, url: str, entry: _Entry, *, busy: bool = False) -> KeySet:
        if entry.keys is not None:
            return entry.keys
        if busy:
            raise Untrusted(f"the client's JWK Set at {url} is being fetched for another call; try again shortly")
        wait = max(0.0, entry.tried_at + MIN_REFETCH_SECONDS - self._clock())
        raise Untrusted(f"the client's JWK Set at {url} could not be read ({entry.error or 'not yet fetched'}); "
                        f"not tried again for {wait:.0f} s")  # fmt: skip

    def _fetch(self, url: str, entry: _Entry) -> None:
        entry.tried_at = self._clock()
        self.fetches += 1
        try:
            with httpx.Client(transport=self._transport, follow_redirects=False) as client:
                response = fetch(client, "GET", url, max_bytes=JWKS_MAX_BYTES, deadline=JWKS_DEADLINE,
                                 headers={"Accept": "application/json"})  # fmt: skip
            response.raise_for_status()
            keys = KeySet.import_key_set(response.json())
        except (httpx.HTTPError, ValueError, JoseError, RecursionError, TypeError, KeyError) as exc:
            entry.error = type(exc).__name__
            if isinstance(exc, httpx.HTTPStatusError):
                entry.error = f"HTTP {exc.response.status_code}"
            elif isinstance(exc, httpx.ReadTimeout | httpx.RemoteProtocolError) and str(exc):
                entry.error = str(exc)
            return
        entry.keys, entry.fetched_at, entry.error = keys, self._clock(), None


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
