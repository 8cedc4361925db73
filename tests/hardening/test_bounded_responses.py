"""Every outbound response has a size cap and a total deadline: FHIR, token endpoint, discovery.

A local hostile server (127.0.0.1) drips bytes or sends an endless body; the app stops reading
at the cap or the deadline, whatever the per-read timeout. The clients are made as the app makes
them (httpclient.client): the bound is the client's; a call may narrow it (the token endpoint's,
discovery's deadline), and a plain httpx.Client has none (which is why no module builds one)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from azaguard.config import AppConfig, Scopes
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirProtocolError, FhirUnavailable
from azaguard.httpbound import Bound
from azaguard.httpclient import client as outbound_client
from azaguard.smart.discovery import DiscoveryError, SmartConfiguration, discover
from azaguard.smart.launch import TokenError, exchange_code

MODE: dict[str, str] = {"mode": "drip"}


class _Hostile(BaseHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        return

    def _answer(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if MODE["mode"] == "drip":  # a byte every 0.1 s, for at most 10 s
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.1)
            except OSError:
                return
        else:  # endless: 64 KiB chunks, at most 64 MiB, no Content-Length
            self.end_headers()
            chunk = b'{"a":' + b" " * 65530 + b"1}"
            try:
                for _ in range(1024):
                    self.wfile.write(chunk)
            except OSError:
                return

    do_GET = _answer
    do_POST = _answer


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_dripping_fhir_server_is_cut_at_the_deadline(hostile: str) -> None:
    MODE["mode"] = "drip"
    start = time.monotonic()
    with FhirClient(hostile, timeout=0.5, response_deadline=1.0, max_retries=0) as client, \
            pytest.raises(FhirUnavailable):
        client.read("Patient", "p1")
    assert time.monotonic() - start < 3.0  # deadline + at most one read timeout, not 10 s


def test_an_endless_fhir_response_is_cut_at_the_size_cap(hostile: str) -> None:
    MODE["mode"] = "endless"
    with FhirClient(hostile, max_response_bytes=1 << 20, max_retries=0) as client, \
            pytest.raises(FhirProtocolError, match="larger than"):
        client.read("Patient", "p1")


def _smart(base: str) -> SmartConfiguration:
    return SmartConfiguration(base, f"{base}/authorize", f"{base}/token", frozenset(), ("S256",), None, None,
                              "well-known")


def _config(base: str) -> AppConfig:
    return AppConfig(client_id="azaguard", client_type="public", redirect_uris=(f"{base}/cb",),
                     launch_uri=f"{base}/launch", scopes=Scopes(v2="launch", v1="launch"), allowed_iss=(base,))


@pytest.mark.parametrize("mode", ["drip", "endless"])
def test_a_hostile_token_endpoint_is_cut(hostile: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MODE["mode"] = mode
    monkeypatch.setattr("azaguard.smart.launch.TOKEN_TIMEOUT", 1.0)
    start = time.monotonic()
    with outbound_client(bound=Bound()) as http, pytest.raises(TokenError) as info:
        exchange_code(http, _config(hostile), _smart(hostile), code="c", code_verifier="v",
                      redirect_uri=f"{hostile}/cb", requested_scope="launch", now=datetime.now(UTC))
    assert info.value.error == "unreachable"
    assert time.monotonic() - start < 3.0


@pytest.mark.parametrize("mode", ["drip", "endless"])
def test_hostile_discovery_is_cut(hostile: str, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    MODE["mode"] = mode
    monkeypatch.setattr("azaguard.smart.discovery.DISCOVERY_TIMEOUT", 0.7)
    start = time.monotonic()
    with outbound_client(bound=Bound()) as http, pytest.raises(DiscoveryError):
        discover(hostile, http)
    assert time.monotonic() - start < 4.0  # two documents tried, each cut
