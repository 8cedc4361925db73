"""A fault-injecting HTTP proxy on 127.0.0.1 in front of a FHIR server, for the write-path tests.

Each request draws one fault from a seeded mix: pass, 429/503 with Retry-After (not forwarded),
500 before or after forwarding, connection dropped before or after forwarding, a delay longer
than the client's timeout (then forwarded: the write lands after the client gave up), or 200 with
garbage after forwarding. Every loop is bounded; delays are short (the client's timeouts are small).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

FAULTS = ("pass", "429", "503", "500-before", "500-after", "drop-before", "drop-after", "delay", "garbage")
_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


class FaultProxy:
    def __init__(self, upstream: str, *, seed: int, fault_rate: float, delay: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.fault_rate = fault_rate
        self.delay = delay
        self.enabled = True
        self.counts: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=30.0)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                return

            def _handle(self) -> None:
                proxy.handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        path = httpx.URL(self.upstream).path
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._http.close()

    def _draw(self) -> str:
        with self._lock:
            if not self.enabled or self._rng.random() >= self.fault_rate:
                fault = "pass"
            else:
                fault = self._rng.choice(FAULTS[1:])
            self.counts[fault] += 1
            return fault

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes) -> httpx.Response:
        origin = httpx.URL(self.upstream)
        url = f"{origin.scheme}://{origin.host}:{origin.port}{h.path}"
        headers = {k: v for k, v in h.headers.items() if k.lower() not in _HOP}
        return self._http.request(h.command, url, headers=headers, content=body or None)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        fault = self._draw()
        h.close_connection = True
        if fault in ("429", "503"):
            self._send(h, int(fault), b"", {"Retry-After": "0"})
            return
        if fault == "500-before":
            self._send(h, 500, b"", {})
            return
        if fault == "drop-before":
            return  # the connection closes without an answer; nothing reached the server
        if fault == "delay":
            time.sleep(self.delay)
        upstream = self._forward(h, body)
        if fault == "drop-after":
            return
        if fault == "500-after":
            self._send(h, 500, b"", {})
            return
        if fault == "garbage":
            self._send(h, 200, b"\x00\xffnot json{{", {"Content-Type": "application/fhir+json"})
            return
        headers = {k: v for k, v in upstream.headers.items() if k.lower() not in _HOP}
        try:
            self._send(h, upstream.status_code, upstream.content, headers)
        except OSError:
            return  # the client gave up (delay): its problem to report

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str]) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)
