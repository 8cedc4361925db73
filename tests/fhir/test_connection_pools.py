"""Keep-alive connections shared by the FhirClients of a process (ConnectionPools), against a real
HTTP/1.1 server on loopback that counts connections and tries to set a cookie."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from azaguard.fhir.client import ConnectionPools, FhirClient


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = 0
        self.seen: list[dict[str, str]] = []  # the headers of every request
        self.lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            self.connections += 1
        super().process_request(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: _Server

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.seen.append({k.lower(): v for k, v in self.headers.items()})
        body = json.dumps({"resourceType": "Patient", "id": self.path.rsplit("/", 1)[-1]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Set-Cookie", "session=of-whoever-asked; Path=/")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def base(srv: _Server) -> str:
    return f"http://127.0.0.1:{srv.server_address[1]}/fhir"


def test_clients_sharing_pools_reuse_one_connection(server: _Server) -> None:
    pools = ConnectionPools()
    try:
        for pid in ("p1", "p2", "p3"):  # a client per request, as the app makes them
            with FhirClient(base(server), pools=pools) as client:
                assert client.read("Patient", pid)["id"] == pid
        assert server.connections == 1
    finally:
        pools.close()


def test_clients_without_pools_each_open_their_own_connection(server: _Server) -> None:
    # The CLI's case (one fresh process per patient), and the benchmark's cold client: unchanged.
    for pid in ("p1", "p2"):
        with FhirClient(base(server)) as client:
            client.read("Patient", pid)
    assert server.connections == 2


def test_nothing_of_one_client_reaches_another_through_shared_pools(server: _Server) -> None:
    pools = ConnectionPools()
    try:
        with FhirClient(base(server), token="token-of-user-a", pools=pools) as a:
            a.read("Patient", "p1")
            a.read("Patient", "p1")  # the server tried to set a cookie on the first answer
        with FhirClient(base(server), pools=pools) as b:
            b.read("Patient", "p2")
        first, second, other = server.seen
        assert first["authorization"] == second["authorization"] == "Bearer token-of-user-a"
        assert "cookie" not in second and "cookie" not in other  # no cookie is ever kept
        assert "authorization" not in other
        assert server.connections == 1
    finally:
        pools.close()


def test_a_client_with_its_own_transport_does_not_use_the_pools(server: _Server) -> None:
    pools = ConnectionPools()
    transport = httpx.HTTPTransport()
    with FhirClient(base(server), pools=pools, transport=transport) as client:
        client.read("Patient", "p1")
    assert pools.client("http", f"127.0.0.1:{server.server_address[1]}") is not client._http
    pools.close()


def test_closing_the_pools_closes_their_connections(server: _Server) -> None:
    pools = ConnectionPools()
    with FhirClient(base(server), pools=pools) as client:
        client.read("Patient", "p1")
    pools.close()
    with FhirClient(base(server), pools=pools) as client:  # a new connection, from a new pool
        client.read("Patient", "p2")
    pools.close()
    assert server.connections == 2
