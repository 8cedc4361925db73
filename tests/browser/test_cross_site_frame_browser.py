"""The EHR frames azaguard from another site, over https, in Chromium with third-party cookies blocked.

Two sites on loopback: the EHR at https://127.0.0.1:A (its chart page frames the launch) and azaguard at
https://localhost:B (another host, so another site: its cookies in that frame are third-party). The certificate
is made here with `cryptography` and accepted by its public-key hash only. First a probe proves the browser
blocks an ordinary SameSite=None cookie in that frame; then the launch runs entirely inside the frame (the
session cookie is Partitioned, CHIPS) and the page shows the patient's verdict; then the authorization step
leaves the frame for the top level (as EHR login pages do): the callback comes without the framed cookie and
still completes (state bound server-side).
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

from azaguard.config import load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.site import create_site
from azaguard.web.app import create_app
from azaguard.web.security import PinnedOrigin
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PATIENT = "aza-febrile-c"


class Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, written under `folder`."""

    def __init__(self, folder: Path) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "azaguard cross-site test")])
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


class HttpsServer:
    def __init__(self, app: Any, cert: Certificate) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        config = uvicorn.Config(app, log_level="warning", access_log=False,
                                ssl_certfile=str(cert.cert), ssl_keyfile=str(cert.key))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:  # bounded wait for the socket
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the https server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


class Late:
    """An ASGI app chosen once the ports are known (the two sites name each other)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


def _chart(request: Request) -> Response:
    """The EHR's chart page: the app framed, launched for the patient (as an EHR embeds a SMART app)."""
    return HTMLResponse(
        f'<!doctype html><title>EHR chart</title><h1>Chart of {PATIENT}</h1>'
        f'<iframe id="app" title="azaguard" src="/ehr/launch/{PATIENT}" width="1200" height="700"></iframe>'
    )


BREAKOUT = {"on": False}


class BreakOut:
    """The EHR's authorization page, when framed, moves itself to the top level (as login pages that refuse
    to be framed do): it is same-origin with the chart, so it may."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or [])
        if (BREAKOUT["on"] and scope["type"] == "http" and scope["path"] == "/ehr/auth/authorize"
                and headers.get(b"sec-fetch-dest") == b"iframe"):
            page = HTMLResponse("<!doctype html><script>top.location.href = location.href</script>")
            await page(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _probe_page(request: Request) -> Response:
    return HTMLResponse(f'<iframe id="probe" src="{request.query_params["src"]}"></iframe>')


async def _probe_set(request: Request) -> Response:
    response = HTMLResponse('<a id="next" href="/probe/read">read</a>')
    response.headers.append("set-cookie", "probe=1; Secure; HttpOnly; SameSite=None; Path=/probe")
    return response


async def _probe_read(request: Request) -> Response:
    return HTMLResponse(f'<p id="cookies">{" ".join(sorted(request.cookies)) or "none"}</p>')


@pytest.fixture(scope="module")
def sites(fhir_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, Certificate]]:
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle([p for p in build_patients(datetime.datetime.now(datetime.UTC))
                                               if p.id == PATIENT]))
    cert = Certificate(tmp_path_factory.mktemp("tls"))
    ehr_late, app_late = Late(), Late()
    ehr_server, app_server = HttpsServer(ehr_late, cert), HttpsServer(app_late, cert)
    ehr_base = f"https://127.0.0.1:{ehr_server.port}"
    app_base = f"https://localhost:{app_server.port}"
    # The app's registration, as hospital IT writes it for this EHR: its own origin, the EHR's FHIR base.
    config = load_app_config(public_base=app_base).model_copy(update={"allowed_iss": (f"{ehr_base}/ehr/fhir",)})
    site = create_site(fhir_upstream=fhir_server.base_url, public_base=ehr_base, app_config=config,
                       mappings=load_mappings())
    ehr_late.app = BreakOut(Starlette(routes=[Route("/chart", _chart), Route("/probe", _probe_page),
                                              Mount("/", app=site)]))
    # azaguard as `serve` runs it (mounted at /app, pinned to its public origin), trusting the test certificate.
    transport = httpx.HTTPTransport(verify=cert.client_context())
    web = create_app(config, mappings=load_mappings(), transport=transport)
    app_late.app = PinnedOrigin(Starlette(routes=[Route("/probe/set", _probe_set), Route("/probe/read", _probe_read),
                                                  Mount("/app", app=web)]), app_base)
    ehr_server.start()
    app_server.start()
    yield ehr_base, app_base, cert
    app_server.stop()
    ehr_server.stop()


@pytest.fixture(scope="module")
def chromium(playwright: Any, sites: tuple[str, str, Certificate]) -> Iterator[Any]:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=[*CHROMIUM_ARGS, f"--ignore-certificate-errors-spki-list={sites[2].spki_hash}",
              "--test-third-party-cookie-phaseout"],  # third-party cookies blocked, whatever the default
    )
    yield browser
    browser.close()


def test_third_party_cookies_are_blocked_in_this_browser(chromium: Any, sites: tuple[str, str, Certificate]) -> None:
    ehr_base, app_base, _ = sites
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{ehr_base}/probe?src={app_base}/probe/set")
        frame = page.frame_locator("#probe")
        frame.locator("#next").click()
        assert frame.locator("#cookies").inner_text() == "none"
    finally:
        context.close()


def test_the_launch_and_the_page_work_framed_by_the_ehr_from_another_site(
    chromium: Any, sites: tuple[str, str, Certificate]
) -> None:
    ehr_base, app_base, _ = sites
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    try:
        page = context.new_page()
        page.goto(f"{ehr_base}/chart")
        frame = page.frame_locator("#app")
        frame.locator("section.verdict").wait_for()
        assert frame.locator("#verdict-words").inner_text().strip() == "Hold"
        app_frame = next(f for f in page.frames if f.url.startswith(f"{app_base}/app/"))
        # A second request in the frame (a reload, as any click on the page does) keeps the session.
        app_frame.goto(app_frame.url)
        assert app_frame.inner_text("#verdict-words").strip() == "Hold"
        cookie = next(c for c in context.cookies() if c["name"] == "azaguard_session")
        assert cookie["secure"] and cookie["sameSite"] == "None", cookie
        assert cookie.get("partitionKey") == "https://127.0.0.1", cookie  # CHIPS: in the EHR site's jar only
    finally:
        context.close()


def test_a_callback_at_the_top_level_completes_a_launch_started_in_the_frame(
    chromium: Any, sites: tuple[str, str, Certificate]
) -> None:
    """Many EHR login pages refuse to be framed and break out: the callback then arrives at the top level, in
    another cookie partition than the framed /launch. The state, bound server-side, still finds the launch."""
    ehr_base, app_base, _ = sites
    context = chromium.new_context(viewport={"width": 1366, "height": 900})
    BREAKOUT["on"] = True
    try:
        page = context.new_page()
        page.goto(f"{ehr_base}/chart")
        page.wait_for_selector("section.verdict")  # at the top level now
        assert page.url.startswith(f"{app_base}/app/")
        assert page.inner_text("#verdict-words").strip() == "Hold"
        page.reload()
        assert page.inner_text("#verdict-words").strip() == "Hold"
    finally:
        BREAKOUT["on"] = False
        context.close()
