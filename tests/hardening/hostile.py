"""Hostile servers on 127.0.0.1 for the round-2 hardening tests.

`TamperProxy`: in front of a real FHIR server, each request goes through `tamper(request)`, which
answers it itself (a `Reply`), forwards it changed (a `Forward`) or lets it pass (None).
`Scripted`: a server whose every answer is a function of the request (JWKS, token endpoint, Bulk
status/manifest/files), able to drip bytes slowly or to send a body larger than it declares.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


@dataclass
class Request:
    method: str
    path: str  # with the query
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    drip: float = 0.0  # seconds between chunks of an iterable body
    length: int | None = None  # a Content-Length to declare (None: the body's, or none for an iterable)


@dataclass
class Forward:
    method: str
    path: str
    body: bytes
    rewrite: Callable[[httpx.Response], Reply] | None = None  # change the upstream's answer


Tamper = Callable[[Request], "Reply | Forward | None"]


class _Server:
    def __init__(self, handle: Callable[[BaseHTTPRequestHandler], None]) -> None:
        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read(h: BaseHTTPRequestHandler) -> Request:
    body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
    return Request(h.command, h.path, {k.lower(): v for k, v in h.headers.items()}, body)


def send(h: BaseHTTPRequestHandler, reply: Reply) -> None:
    h.close_connection = True
    try:
        h.send_response(reply.status)
        h.send_header("Connection", "close")  # one request per connection: no stale keep-alive
        for k, v in reply.headers.items():
            h.send_header(k, v)
        if isinstance(reply.body, bytes):
            h.send_header("Content-Length", str(reply.length if reply.length is not None else len(reply.body)))
            h.end_headers()
            h.wfile.write(reply.body)
            return
        if reply.length is not None:
            h.send_header("Content-Length", str(reply.length))
        h.end_headers()
        for chunk in reply.body:
            h.wfile.write(chunk)
            h.wfile.flush()
            if reply.drip:
                time.sleep(reply.drip)
    except OSError:
        return  # the client gave up: that is what the test wants to see


class TamperProxy:
    """A FHIR server that misbehaves on purpose, in front of a real one. `requests` logs what came in."""

    def __init__(self, upstream: str, tamper: Tamper) -> None:
        self.upstream = upstream.rstrip("/")
        self.tamper = tamper
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30.0)
        self._server = _Server(self._handle)

    @property
    def base_url(self) -> str:
        return self._server.origin + httpx.URL(self.upstream).path

    def __enter__(self) -> TamperProxy:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
        self._http.close()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        request = _read(h)
        with self._lock:
            self.requests.append(request)
        action = self.tamper(request)
        if isinstance(action, Reply):
            send(h, action)
            return
        forward = action or Forward(request.method, request.path, request.body)
        origin = httpx.URL(self.upstream)
        url = f"{origin.scheme}://{origin.host}:{origin.port}{forward.path}"
        headers = {k: v for k, v in request.headers.items() if k not in _HOP}
        upstream = self._http.request(forward.method, url, headers=headers, content=forward.body or None)
        if forward.rewrite is not None:
            send(h, forward.rewrite(upstream))
            return
        kept = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        send(h, Reply(upstream.status_code, upstream.content, kept))


class Scripted:
    """A server answering every request with `answer(request)`; `requests` logs what came in."""

    def __init__(self, answer: Callable[[Request], Reply]) -> None:
        self.answer = answer
        self.requests: list[Request] = []
        self._lock = threading.Lock()
        self._server = _Server(self._handle)

    @property
    def origin(self) -> str:
        return self._server.origin

    def __enter__(self) -> Scripted:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        request = _read(h)
        with self._lock:
            self.requests.append(request)
        send(h, self.answer(request))


def outcome(severity: str, text: str) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": [{"severity": severity, "code": "processing",
                                                           "diagnostics": text}]}
