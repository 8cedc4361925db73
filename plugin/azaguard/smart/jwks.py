"""JWK Sets fetched for CDS clients (jwks_url, allow-listed jku) and the SMART login's id_token issuer (one cache:
below smart/ and cds/ both): bounded, cached, never a stampede,
and never fetched by a serving worker.

A key set is fetched in the background (a small pool of its own: a serving worker never waits on a
JWKS host) on a bounded client (httpclient, httpbound: a byte cap and a total deadline, so a dripping or
endless host costs one fetch at most JWKS_DEADLINE seconds) and kept JWKS_TTL_SECONDS.
`get` never blocks: it answers from the set in hand, or raises `KeysPending` (an `Untrusted`) while
the set it needs is being fetched; the async CDS routes await `KeysPending.ready()` (a coroutine, no
thread held) and verify again. A set past its TTL is still used while its refresh runs.

Per URL: at most one fetch at a time, and at most one fetch every MIN_REFETCH_SECONDS whether it
worked or not. A `kid` the fresh set does not hold is remembered as unknown for UNKNOWN_KID_SECONDS:
tokens naming made-up kids cannot make the service fetch again and again. Every failure is
`Untrusted` (401) with one sentence.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from azaguard.errors import AuthError
from azaguard.httpbound import Bound, within
from azaguard.httpclient import client as outbound_client

JWKS_TTL_SECONDS = 300.0
MIN_REFETCH_SECONDS = 30.0
UNKNOWN_KID_SECONDS = 60.0
# The whole response. No serving worker waits for it (a CDS call awaits it on the event loop), so it can give
# a slow EHR the slack a login's id_token check needs (that check waited 15 s for the keys before).
JWKS_DEADLINE = 10.0
JWKS_MAX_BYTES = 256 << 10  # a key set is a few kB
FETCHERS = 2  # background fetches at once (per cache; the URLs are registered, so few)
_MAX_UNKNOWN = 1024  # remembered unknown (url, kid) pairs, oldest forgotten first


class Untrusted(AuthError):
    """The caller could not be authenticated: 401, nothing evaluated."""


class KeysPending(Untrusted):
    """The key set needed is being fetched: verify again once `ready()` returns (a 401 if one cannot wait)."""

    def __init__(self, url: str, flight: Future[None]) -> None:
        super().__init__(f"the client's JWK Set at {url} is being fetched; try again shortly")
        self.flight = flight

    async def ready(self) -> None:
        """Wait for the fetch without holding a thread (it ends by its own deadline)."""
        await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(self.flight)), JWKS_DEADLINE + 5.0)


@dataclass
class _Entry:
    keys: KeySet | None = None
    fetched_at: float = float("-inf")  # when `keys` arrived
    tried_at: float = float("-inf")  # the last attempt, successful or not
    error: str | None = None  # why the last attempt failed
    flight: Future[None] | None = None  # the fetch running now


class JwksCache:
    """JWK Sets by URL, shared by the process's requests (thread-safe)."""

    def __init__(
        self, transport: httpx.BaseTransport | None = None, clock: Callable[[], float] = time.monotonic,
        *, http: httpx.Client | None = None,
    ) -> None:
        """`http`: a client to fetch with (shared, thread-safe), else one per fetch on `transport`."""
        self._transport, self._http = transport, http
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, _Entry] = {}
        self._unknown: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._pool = ThreadPoolExecutor(max_workers=FETCHERS, thread_name_prefix="jwks-fetch")
        self.fetches = 0  # HTTP fetches made (tests and metrics)

    def get(self, url: str, kid: str | None) -> KeySet:
        """The key set at `url` when in hand and holding `kid`; else a fetch is started (within the
        limits above) and KeysPending raised, or Untrusted when none may be started."""
        with self._lock:
            now = self._clock()
            entry = self._entries.setdefault(url, _Entry())
            keys, flight = entry.keys, entry.flight
            known_unknown = kid is not None and self._unknown.get((url, kid), float("-inf")) > now
            has_kid = keys is not None and (kid is None or _has_kid(keys, kid) or known_unknown)
            stale = keys is None or now - entry.fetched_at >= JWKS_TTL_SECONDS or not has_kid
            may_fetch = flight is None and now - entry.tried_at >= MIN_REFETCH_SECONDS and not known_unknown
            if stale and may_fetch:
                entry.tried_at = now
                self.fetches += 1
                flight = entry.flight = self._pool.submit(self._fetch, url, entry, kid)
        if keys is not None and has_kid:
            return keys  # past its TTL it still verifies while the refresh runs
        if flight is not None:
            raise KeysPending(url, flight)
        if keys is not None:
            return keys  # lacks the kid: the caller says which key is missing
        wait = max(0.0, entry.tried_at + MIN_REFETCH_SECONDS - self._clock())
        raise Untrusted(f"the client's JWK Set at {url} could not be read ({entry.error or 'not yet fetched'}); "
                        f"not tried again for {wait:.0f} s")  # fmt: skip

    def get_waiting(self, url: str, kid: str | None) -> KeySet:
        """`get`, for a caller that must answer now and has no event loop to wait on (a SMART login's
        id_token): it waits on its own thread for the fetch, which ends by its deadline."""
        for _ in range(2):
            try:
                return self.get(url, kid)
            except KeysPending as pending:
                try:
                    pending.flight.result(timeout=JWKS_DEADLINE + 5.0)
                except TimeoutError:
                    break
        return self.get(url, kid)

    def wait(self, url: str) -> None:
        """Block until the fetch of `url` in flight (if any) has ended: for tests and scripts, never a worker."""
        with self._lock:
            entry = self._entries.get(url)
            flight = entry.flight if entry is not None else None
        if flight is not None:
            flight.result()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _fetch(self, url: str, entry: _Entry, kid: str | None) -> None:
        keys: KeySet | None = None
        error = "the fetch failed"
        try:
            keys = self._read(url)
        except _Unreadable as exc:
            error = str(exc)
        finally:
            with self._lock:
                entry.flight = None  # whatever happened: the next call may fetch again (rate-limited)
        with self._lock:
            if keys is None:
                entry.error = error
                return
            entry.keys, entry.fetched_at, entry.error = keys, self._clock(), None
            if kid is not None and not _has_kid(keys, kid):
                self._unknown[(url, kid)] = self._clock() + UNKNOWN_KID_SECONDS
                self._unknown.move_to_end((url, kid))
                while len(self._unknown) > _MAX_UNKNOWN:
                    self._unknown.popitem(last=False)

    def _read(self, url: str) -> KeySet:
        try:
            if self._http is not None:
                response = self._get(self._http, url)
            else:
                with outbound_client(bound=Bound(JWKS_MAX_BYTES, JWKS_DEADLINE), transport=self._transport) as client:
                    response = self._get(client, url)
            response.raise_for_status()
            return KeySet.import_key_set(response.json())
        except httpx.HTTPStatusError as exc:
            raise _Unreadable(f"HTTP {exc.response.status_code}") from exc
        except (httpx.ReadTimeout, httpx.RemoteProtocolError) as exc:
            raise _Unreadable(str(exc) or type(exc).__name__) from exc
        except (httpx.HTTPError, ValueError, JoseError, RecursionError, TypeError, KeyError) as exc:
            raise _Unreadable(type(exc).__name__) from exc


    @staticmethod
    def _get(client: httpx.Client, url: str) -> httpx.Response:
        return client.get(url, headers={"Accept": "application/json"}, extensions=within(JWKS_MAX_BYTES, JWKS_DEADLINE))


class _Unreadable(Exception):
    pass


def _has_kid(keys: KeySet, kid: str) -> bool:
    return any(k.kid == kid for k in keys.keys)
