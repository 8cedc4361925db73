"""DNS rebinding: a host that answers a public address to the allow-list check and a private one to the
connection. The connection resolves for itself and checks what it connects to (addresses.PinnedTransport),
so the private address is never reached; the URL keeps its name (Host header, TLS SNI and certificate
verification for the name). Resolution is monkeypatched, never the network."""

from __future__ import annotations

import datetime as dt
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from azaguard.addresses import PinnedTransport, is_public
from azaguard.cds.discovery import SERVICES
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.prefetch import PreconditionFailed, Templates, assemble, default_client_factory
from azaguard.cds.request import parse_request
from azaguard.mappings import load_mappings
from tests.cds.hookdata import body
from tests.clinical.builders import NOW
from tests.hardening.hostile import Reply, Scripted

REBINDING = "ehr.rebinding.example"
PUBLIC = "93.184.216.34"


class Listener:
    """A TCP port on 127.0.0.1 that records every connection it accepts (and closes it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """socket.getaddrinfo for REBINDING: public the first time, 127.0.0.1 after (every other host as it is)."""
    real = socket.getaddrinfo
    answers: list[str] = []

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != REBINDING:
            return real(host, port, *args, **kwargs)
        address = PUBLIC if not answers else "127.0.0.1"
        answers.append(address)
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def test_a_host_rebinding_to_loopback_after_the_check_is_never_reached(
    listener: Listener, rebinding: list[str]
) -> None:
    mappings = load_mappings()
    server = f"https://{REBINDING}:{listener.port}/fhir"
    request = parse_request(json.dumps(body(
        "patient-view", [], patient_id="p1", prefetch={}, fhirServer=server,
        fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300})).encode(),
        SERVICES["azaguard-patient-view"])
    with pytest.raises(PreconditionFailed) as refused:
        assemble(request, Templates(mappings), mappings, NOW, default_client_factory(), FetchPolicy(deadline=10))
    assert rebinding[0] == PUBLIC and "127.0.0.1" in rebinding  # the check was told public, the connection not
    assert listener.accepted == 0
    assert "not allowed for this client" in str(refused.value)  # the one refusal text


def test_every_address_is_checked_at_connect_time(listener: Listener) -> None:
    for answer in (["127.0.0.1"], [PUBLIC, "127.0.0.1"], ["10.0.0.1"], []):
        transport = PinnedTransport(is_public, resolver=lambda host, port, a=answer: a)
        with httpx.Client(transport=transport) as client, pytest.raises(httpx.ConnectError):
            client.get(f"http://{REBINDING}:{listener.port}/")
    with httpx.Client(transport=PinnedTransport(is_public)) as client, pytest.raises(httpx.ConnectError):
        client.get(f"http://127.0.0.1:{listener.port}/")  # a literal address: checked, not resolved
    assert listener.accepted == 0


def test_the_pinned_connection_keeps_the_name_for_host_header() -> None:
    with Scripted(lambda r: Reply(200, r.headers.get("host", "").encode())) as server:
        port = server.origin.rsplit(":", 1)[1]
        transport = PinnedTransport(lambda a: True, resolver=lambda host, port: ["127.0.0.1"])
        with httpx.Client(transport=transport) as client:
            r = client.get(f"http://fhir.example.test:{port}/metadata")
    assert r.text == f"fhir.example.test:{port}"


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_is_verified_for_the_name_and_sni_names_it(tmp_path: Path) -> None:
    """A certificate for fhir.example.test only (not for 127.0.0.1): the pinned connection to 127.0.0.1
    verifies it, because TLS speaks for the name; the server sees that name in SNI."""
    cert, key = _certificate(tmp_path, "fhir.example.test")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    seen: list[str | None] = []
    server_context.sni_callback = lambda sock, name, ctx: seen.append(name)  # type: ignore[assignment,func-returns-value]
    raw = socket.socket()
    raw.bind(("127.0.0.1", 0))
    raw.listen(4)
    port = int(raw.getsockname()[1])

    def serve() -> None:
        conn, _ = raw.accept()
        with server_context.wrap_socket(conn, server_side=True) as tls:
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    trust = ssl.create_default_context(cafile=str(cert))
    transport = PinnedTransport(lambda a: True, resolver=lambda host, p: ["127.0.0.1"], verify=trust)
    try:
        with httpx.Client(transport=transport) as client:
            r = client.get(f"https://fhir.example.test:{port}/metadata")
    finally:
        thread.join(5)
        raw.close()
    assert r.text == "ok"
    assert seen == ["fhir.example.test"]
