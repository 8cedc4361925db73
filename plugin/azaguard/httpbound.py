"""Every outbound HTTP response read with a size cap and a total deadline.

httpx's timeouts are per socket operation: a server that drips one byte every few seconds keeps
a request alive for ever, and a huge body is read into memory whole. `fetch` streams the body,
stops at `max_bytes` (decoded bytes, so a compressed bomb is caught too) and at `deadline`
seconds after the request started (give or take one read timeout, which is also capped by what
remains). The errors subclass httpx's, so callers that handle httpx.HTTPError handle them too.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

# Token, discovery and key-set documents are a few kilobytes.
SMALL_BYTES = 1 << 20
SMALL_DEADLINE = 15.0


class ResponseTooLarge(httpx.RemoteProtocolError):
    """The body is larger than the cap: not retried (it will be as large next time)."""


class ResponseTooSlow(httpx.ReadTimeout):
    """The whole response did not arrive within the deadline."""


ERROR_BYTES = 64 << 10  # an error answer's body: an OperationOutcome, or the start of an HTML page


def fetch(
    client: httpx.Client,
    method: str,
    url: str,
    *,
    max_bytes: int = SMALL_BYTES,
    deadline: float = SMALL_DEADLINE,
    timeout: float | None = None,
    auth: httpx.Auth | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """`client.request(method, url, **kwargs)`, with the body read under `max_bytes` and `deadline`;
    `auth` (httpauth.BearerAuth) for this request only (clients are shared: none carries a token)."""
    start = time.monotonic()
    per_read = min(timeout if timeout is not None else deadline, deadline)
    request = client.build_request(method, url, timeout=httpx.Timeout(per_read), **kwargs)
    response = client.send(request, stream=True, auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT)
    return read_bounded(response, max_bytes=max_bytes, deadline=deadline, started=start)


def read_bounded(
    response: httpx.Response, *, max_bytes: int = ERROR_BYTES, deadline: float = SMALL_DEADLINE,
    started: float | None = None,
) -> httpx.Response:
    """A streamed response read whole under `max_bytes` (decoded) and `deadline` seconds from `started`
    (default: now), closed, and returned as a plain response holding that body. The one bounded reader:
    `fetch` and every streamed answer whose body is read (e.g. a download's error page) go through it."""
    start = time.monotonic() if started is None else started
    request = response.request
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"the response declares {int(declared)} bytes (limit {max_bytes})", request=request)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > max_bytes:
                raise ResponseTooLarge(f"the response is larger than {max_bytes} bytes", request=request)
            if time.monotonic() - start > deadline:
                raise ResponseTooSlow(f"the response took longer than {deadline:g} s", request=request)
            chunks.append(chunk)
    finally:
        response.close()
    # The body is decoded already: the copy must not claim an encoding or another length.
    headers = [(k, v) for k, v in response.headers.multi_items()
               if k.lower() not in ("content-encoding", "content-length", "transfer-encoding")]
    return httpx.Response(
        response.status_code, headers=headers, content=b"".join(chunks), request=request,
        extensions=response.extensions,
    )
