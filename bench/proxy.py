"""A latency proxy in front of the local FHIR server: the network between an app and an EHR.

Every byte is held `rtt / 2` in each direction (a delay line, not a bandwidth cap), and the first
request of each new connection waits one more round trip (the TCP handshake a real network charges
before a client may send). It counts every HTTP request it forwards, whichever client sent it, so
the counts include what a client does on its own (metadata, paging, retries).

With `refuse_batch`, a POST to the FHIR base (a batch or transaction) is answered 405 by the proxy
itself: a server without batch, for measuring the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from dataclasses import dataclass, field

_REFUSAL = (
    b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"not-supported",'
    b'"diagnostics":"batch is not supported"}]}'
)


@dataclass
class Counts:
    requests: int = 0
    connections: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)  # "GET Observation", "POST (base)", "GET metadata"


class LatencyProxy:
    def __init__(self, upstream_host: str, upstream_port: int, base_path: str, *, rtt_ms: float = 0.0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.base_path = base_path.rstrip("/")
        self.rtt = rtt_ms / 1000
        self.refuse_batch = False
        self.counts = Counts()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    # -- lifecycle --

    def __enter__(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _shutdown(self) -> None:
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.base_path}"

    def snapshot(self) -> Counts:
        with self._lock:
            return Counts(self.counts.requests, self.counts.connections, dict(self.counts.by_kind))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    # -- one client connection --

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self.counts.connections += 1
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        to_client: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        to_server: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        handshake = self.rtt  # the first request of a connection pays the TCP handshake too
        tasks = [
            asyncio.create_task(self._requests(reader, to_server, to_client, handshake)),
            asyncio.create_task(self._pump(up_reader, to_client)),
            asyncio.create_task(self._deliver(to_server, up_writer)),
            asyncio.create_task(self._deliver(to_client, writer)),
        ]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass  # the proxy is shutting down
        finally:
            for t in tasks:
                t.cancel()
            for w in (writer, up_writer):
                with contextlib.suppress(Exception):
                    w.close()

    async def _requests(
        self,
        reader: asyncio.StreamReader,
        to_server: asyncio.Queue[tuple[float, bytes] | None],
        to_client: asyncio.Queue[tuple[float, bytes] | None],
        handshake: float,
    ) -> None:
        """Frame the client's HTTP/1.1 requests (Content-Length bodies), count them, delay them."""
        extra = handshake
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                await to_server.put(None)
                return
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
                elif name.strip().lower() == b"transfer-encoding":
                    raise RuntimeError("the latency proxy frames Content-Length bodies only")
            body = await reader.readexactly(length) if length else b""
            method, target = head.split(b" ", 2)[:2]
            path = target.decode().split("?", 1)[0]
            rel = path[len(self.base_path):].strip("/") if path.startswith(self.base_path) else path
            kind = f"{method.decode()} {rel.split('/')[0] or '(base)'}"
            with self._lock:
                self.counts.requests += 1
                self.counts.by_kind[kind] = self.counts.by_kind.get(kind, 0) + 1
            due = time.monotonic() + self.rtt / 2 + extra
            extra = 0.0
            if self.refuse_batch and kind == "POST (base)":
                response = (
                    b"HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/fhir+json\r\n"
                    + f"Content-Length: {len(_REFUSAL)}\r\n\r\n".encode() + _REFUSAL
                )
                await to_client.put((due + self.rtt / 2, response))
            else:
                await to_server.put((due, head + body))

    async def _pump(self, reader: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes] | None]) -> None:
        while data := await reader.read(65536):
            await queue.put((time.monotonic() + self.rtt / 2, data))
        await queue.put(None)

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes] | None], writer: asyncio.StreamWriter) -> None:
        while (item := await queue.get()) is not None:
            due, data = item
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()
