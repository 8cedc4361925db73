"""What the browser tests run: headless Chromium (one way, with per-test extras), and their sites: an ASGI app
under uvicorn on a free loopback port, in a thread, over plain http or https (a self-signed certificate made here,
trusted by its public-key hash only)."""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import shutil
import socket
import ssl
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


def launch_chromium(playwright: Any, *args: str) -> Any:
    """Headless Chromium as every browser test runs it, with any `args` of the test's own."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *args])


class Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, written under `folder`."""

    def __init__(self, folder: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azaguard browser test")])
        now = datetime.datetime.now(datetime.UTC)
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        self.cert = folder / "cert.pem"
        self.key = folder / "key.pem"
        self.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        self.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        self.key.chmod(0o600)
        der, spki_format = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        spki = cert.public_key().public_bytes(der, spki_format)
        self.spki_hash = base64.b64encode(hashlib.sha256(spki).digest()).decode()

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))

    def chromium_args(self) -> list[str]:
        """Chromium trusts this certificate (and no other untrusted one)."""
        return [f"--ignore-certificate-errors-spki-list={self.spki_hash}"]


class ThreadedServer:
    """`app` served by uvicorn on 127.0.0.1 at a free port (bound before start, so `base` is known first)."""

    def __init__(self, app: Any, *, certificate: Certificate | None = None, host: str = "127.0.0.1") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.base = f"{'https' if certificate else 'http'}://{host}:{self.port}"
        tls = {"ssl_certfile": str(certificate.cert), "ssl_keyfile": str(certificate.key)} if certificate else {}
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, **tls))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:  # bounded wait for the socket
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"the server at {self.base} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()


class Late:
    """An ASGI app chosen once the ports are known (sites that name each other)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
