"""HTTP hardening both web services share (the SMART app, the CDS service; below web/, cds/ and ops/): the
public origin, security headers, body limits, the launch rate limit.

- `SecurityHeaders`: every response gets CSP (no script; framing only by the configured
  frame-ancestors), an X-Frame-Options that says the same thing where it can, HSTS when the app
  is served over https, nosniff, no referrer, no caching of PHI. It also pins each request to the
  configured public origin (scheme and Host), so that any URL the framework builds from the
  request (e.g. the trailing-slash redirect of /app) is built from configuration, never from a
  Host header sent by whoever asks.
- `RateLimiter`: a token bucket per client address, bounded in memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from azaguard.config import AppConfig

HSTS = b"max-age=31536000; includeSubDomains"


def x_frame_options(frame_ancestors: tuple[str, ...]) -> bytes | None:
    """The X-Frame-Options equivalent of a frame-ancestors list, or None when it has none
    (several origins: CSP alone governs, as every current browser honours it over XFO)."""
    sources = tuple(s.strip().lower() for s in frame_ancestors)
    if sources in ((), ("'none'",)):
        return b"DENY"
    if sources == ("'self'",):
        return b"SAMEORIGIN"
    return None


# Every request body the service reads is at most this long: the largest is a CDS Hooks call with its
# prefetch (one patient's record), a few hundred kB in practice.
MAX_BODY_BYTES = 5 << 20


class BodyLimit:
    """Request bodies bounded before anything reads them: a declared Content-Length over the cap is
    answered 413 at once; a body sent without one (chunked) is counted as it streams in and stops at
    the cap with 413. Nothing upstream can be made to hold more than the cap."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k.lower() == b"content-length"), None)
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_bytes):
            await self._too_large(send)
            return
        received = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Answer now; the app sees the client gone and whatever it sends later is dropped.
                    refused = True
                    if not started:
                        await self._too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if refused:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except Exception:
            if not refused:  # the app's reaction to the cut-off body (ClientDisconnect): already answered
                raise

    async def _too_large(self, send: Send) -> None:
        body = f'{{"error":"too-large","message":"the request body is larger than {self.max_bytes} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
            (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


class PinnedOrigin:
    """Requests are seen as addressed to `public_base`'s scheme and host, whatever Host they carry."""

    def __init__(self, app: ASGIApp, public_base: str) -> None:
        self.app = app
        parts = urlsplit(public_base)
        self.scheme = parts.scheme
        self.host = parts.netloc.encode("latin-1")
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.hostname = parts.hostname or ""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() not in (b"host", b"x-forwarded-host")]
            scope = {
                **scope,
                "scheme": self.scheme if scope["type"] == "http" else scope["scheme"],
                "headers": [(b"host", self.host), *headers],
                "server": (self.hostname, self.port),
            }
        await self.app(scope, receive, send)


class SecurityHeaders:
    """One middleware for the app's security headers, read from the app registration."""

    def __init__(self, app: ASGIApp, config: AppConfig) -> None:
        ancestors = config.frame_ancestor_sources()
        public = config.public_base
        self.app = PinnedOrigin(app, public)
        framing = " ".join(ancestors) or "'none'"
        csp = (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
            f"base-uri 'none'; frame-ancestors {framing}"
        )
        self.headers: list[tuple[bytes, bytes]] = [
            (b"content-security-policy", csp.encode()),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"cache-control", b"no-store"),
        ]
        xfo = x_frame_options(ancestors)
        if xfo is not None:
            self.headers.append((b"x-frame-options", xfo))
        if public.startswith("https:"):
            self.headers.append((b"strict-transport-security", HSTS))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def add_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                mine = {k for k, _ in self.headers}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in mine]
                message["headers"] = kept + self.headers
            await send(message)

        await self.app(scope, receive, add_headers)


class RateLimiter:
    """`rate` requests per `per` seconds per key, bursts up to `burst`; remembers at most `max_keys`."""

    def __init__(
        self, *, rate: float = 30, per: float = 60.0, burst: int = 20, max_keys: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.refill = rate / per
        self.burst = float(burst)
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)
        self._lock = threading.Lock()

    def allow(self, key: str) -> float:
        """0 when allowed (and counted); else the seconds to wait before the next one is."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - at) * self.refill)
            wait = 0.0
            if tokens >= 1:
                tokens -= 1
            else:
                wait = (1 - tokens) / self.refill
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait
