"""Every outbound HTTP response read with a size cap and a total deadline: a property of the client.

httpx's timeouts are per socket operation: a server that drips one byte every few seconds keeps
a request alive for ever, and a huge body is read into memory whole. `BoundedTransport` sits under
every outbound client (httpclient.client): each response's body is read through a stream that stops
at `max_bytes` (decoded bytes, so a compressed bomb is caught too) and at `deadline` seconds after the
request started (give or take one read timeout, which is also capped by what remains). The bound is
chosen where the client is built; one request may narrow it (`within`), never widen it. The errors
subclass httpx's, so callers that handle httpx.HTTPError handle them too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

# Token, discovery and key-set documents are a few kilobytes.
SMALL_BYTES = 1 << 20
SMALL_DEADLINE = 15.0
ERROR_BYTES = 64 << 10  # an error answer's body: an OperationOutcome, or the start of an HTML page
BOUND = "azaguard.bound"  # request extension: a narrower Bound for this request only


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The body is larger than the cap: not retried (it will be as large next time)."""


class ResponseTooSlow(httpx.ReadTimeout):
    """The whole response did not arrive within the deadline."""


@dataclass(frozen=True)
class Bound:
    max_bytes: int = SMALL_BYTES
    deadline: float = SMALL_DEADLINE

    def narrowed(self, other: object) -> Bound:
        """This bound, narrowed by a request's own (never widened by it)."""
        if not isinstance(other, Bound):
            return self
        return Bound(min(self.max_bytes, other.max_bytes), min(self.deadline, other.deadline))


def within(max_bytes: int = SMALL_BYTES, deadline: float = SMALL_DEADLINE) -> dict[str, Any]:
    """Request extensions narrowing the client's bound for one request: `client.get(url, extensions=within(...))`."""
    return {BOUND: Bound(max_bytes, deadline)}


class BoundedTransport(httpx.BaseTransport):
    """Wraps a transport: every response's body streams under the client's Bound (or a request's narrower one)."""

    def __init__(self, inner: httpx.BaseTransport, bound: Bound) -> None:
        self.inner, self.bound = inner, bound

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        started = time.monotonic()
        bound = self.bound.narrowed(request.extensions.get(BOUND))
        # Each socket read waits at most the whole deadline.
        timeouts = request.extensions.get("timeout") or {}
        request.extensions = {**request.extensions, "timeout": {
            k: bound.deadline if v is None else min(v, bound.deadline)
            for k, v in {"connect": None, "read": None, "write": None, "pool": None, **timeouts}.items()}}
        response = self.inner.handle_request(request)
        return bounded(response, request, bound, started)

    def close(self) -> None:
        self.inner.close()


def bounded(response: httpx.Response, request: httpx.Request, bound: Bound, started: float) -> httpx.Response:
    """`response` with its body decoded through a stream that enforces `bound` from `started` (monotonic)."""
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > bound.max_bytes:
        response.close()
        raise ResponseTooLarge(f"the response declares {int(declared)} bytes (limit {bound.max_bytes})",
                               request=request)  # fmt: skip
    response.request = request  # a read error names the request
    return httpx.Response(response.status_code, headers=decoded_headers(response), extensions=response.extensions,
                          stream=_BoundedStream(response, request, bound, started))  # fmt: skip


def decoded_headers(response: httpx.Response) -> list[tuple[str, str]]:
    """Headers for a copy holding the decoded body: it must not claim an encoding or another length."""
    return [(k, v) for k, v in response.headers.multi_items()
            if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]


class _BoundedStream(httpx.SyncByteStream):
    def __init__(self, response: httpx.Response, request: httpx.Request, bound: Bound, started: float) -> None:
        self._response, self._request, self._bound, self._started = response, request, bound, started

    def __iter__(self) -> Iterator[bytes]:
        size, bound = 0, self._bound
        for chunk in self._response.iter_bytes():  # decoded (gzip, deflate, br, zstd) as it arrives
            size += len(chunk)
            if size > bound.max_bytes:
                raise ResponseTooLarge(f"the response is larger than {bound.max_bytes} bytes", request=self._request)
            if time.monotonic() - self._started > bound.deadline:
                raise ResponseTooSlow(f"the response took longer than {bound.deadline:g} s", request=self._request)
            yield chunk

    def close(self) -> None:
        self._response.close()


def read_bounded(response: httpx.Response, *, max_bytes: int = ERROR_BYTES, deadline: float = SMALL_DEADLINE,
                 started: float | None = None) -> httpx.Response:  # fmt: skip
    """A streamed response of a client without a bound (a download's error page) read whole under `max_bytes`
    (decoded) and `deadline` seconds from `started` (default: now), closed, and returned holding that body."""
    start = time.monotonic() if started is None else started
    request = response.request
    body = bounded(response, request, Bound(max_bytes, deadline), start)
    body.request = request
    try:
        body.read()
    finally:
        body.close()
    return body
