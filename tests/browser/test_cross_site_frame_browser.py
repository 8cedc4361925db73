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

import datetime
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
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
from azaguard.websecurity import PinnedOrigin
from tests.browser.servers import Certificate, Late, ThreadedServer, launch_chromium

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PATIENT = "aza-febrile-c"


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
    ehr_server = ThreadedServer(ehr_late, certificate=cert)
    app_server = ThreadedServer(app_late, certificate=cert, host="localhost")
    ehr_base, app_base = ehr_server.base, app_server.base
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
    # Trusting the test certificate; third-party cookies blocked, whatever the default.
    browser = launch_chromium(playwright, *sites[2].chromium_args(), "--test-third-party-cookie-phaseout")
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
