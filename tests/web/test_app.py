"""The app's side of the SMART launch and the page, against an in-memory EHR (no server, no browser)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from azaguard import service
from azaguard.alerts import ExistingAlert, WriteOutcome
from azaguard.config import AppConfig, load_app_config
from azaguard.findings import RULE_IDS, Finding, Severity, Status
from azaguard.mappings import Mappings, load_mappings
from azaguard.resources import ResourceSet
from azaguard.service import CheckResult
from azaguard.verdict import build_verdict
from azaguard.web.app import create_app, rule_groups
from tests.clinical.builders import NOW, azathioprine, observation
from tests.web.fake_ehr import ISS, ORIGIN, FakeEhr

REPO_CONFIG = Path(__file__).resolve().parents[2] / "smart_launch.json"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class Harness:
    def __init__(self, ehr: FakeEhr, config: AppConfig, monkeypatch: pytest.MonkeyPatch) -> None:
        self.ehr = ehr
        self.clock = Clock()
        self.checks: list[tuple[str, bool]] = []
        self.warnings: list[str] = []
        monkeypatch.setattr(service, "check_on_server", self.fake_check)
        self.app = create_app(config, mappings=load_mappings(), now=self.clock, transport=ehr.transport)
        site = Starlette(routes=[Mount("/app", app=self.app)])
        self.browser = TestClient(site, base_url=ORIGIN, follow_redirects=False)

    def fake_check(
        self,
        client: Any,
        patient_id: str,
        *,
        mappings: Mappings,
        now: datetime,
        write: bool = False,
        dry_run: bool = False,
        tz: Any = None,
        read_alerts: bool = True,
        terminology: Any = None,
    ) -> CheckResult:
        self.checks.append((patient_id, write))
        patient = client.read("Patient", patient_id)  # through the real FhirClient: 401 → AuthExpired
        resources = [patient, azathioprine(), observation("6690-2", 3.1, "10*3/uL", days_ago=2)]
        result = service.check_resources(
            ResourceSet.from_resources(resources), mappings=mappings, now=now, terminology=terminology
        )
        result.existing_alerts = [ExistingAlert("Flag/f1", "Flag", "blood-counts", "active", "Hold: WBC low", None)]
        result.warnings = list(self.warnings)
        if dry_run:
            result.writes = [WriteOutcome("DetectedIssue", "di-1", "blood-counts", "would-write")]
        if write:
            result.writes = [
                WriteOutcome("DetectedIssue", "di-1", "blood-counts", "created", "DetectedIssue/9"),
                WriteOutcome("Flag", "fl-1", "blood-counts", "failed", error="HTTP 500 from the server"),
            ]
        return result

    def launch(self, **params: str) -> httpx.Response:
        """EHR launch up to the authorize redirect."""
        return self.browser.get("/app/launch", params=params or {"iss": ISS, "launch": "L1"})

    def complete(self, authorize: httpx.Response) -> str:
        """The EHR approves; the browser comes back to the callback. Returns the page URL."""
        assert authorize.status_code == 302, authorize.text
        location = authorize.headers["location"]
        code = self.ehr.authorize(location)
        state = parse_qs(urlsplit(location).query)["state"][0]
        callback = self.browser.get("/app/callback", params={"code": code, "state": state})
        assert callback.status_code == 303, callback.text
        return str(callback.headers["location"])

    def open_page(self) -> httpx.Response:
        return self.browser.get(self.complete(self.launch()))


@pytest.fixture
def ehr() -> FakeEhr:
    return FakeEhr()


@pytest.fixture
def harness(ehr: FakeEhr, monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(ehr, load_app_config(REPO_CONFIG), monkeypatch)
    with h.browser:
        yield h


def _statuses(html: str) -> dict[str, str]:
    return dict(re.findall(r'data-rule="([^"]+)" data-status="([^"]+)"', html))


def _csrf(html: str) -> tuple[str, str]:
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', html)
    ctx = re.search(r'name="ctx" value="([^"]+)"', html)
    assert csrf and ctx
    return csrf.group(1), ctx.group(1)


# --- launch ----------------------------------------------------------------------------------


def test_ehr_launch_redirects_to_authorize_with_pkce_state_aud_and_v2_scopes(harness: Harness) -> None:
    response = harness.launch()
    assert response.status_code == 302
    location = response.headers["location"]
    assert location.startswith("http://127.0.0.1:8400/ehr/auth/authorize?")
    q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    assert q["response_type"] == "code" and q["client_id"] == "azaguard"
    assert q["redirect_uri"] == "http://127.0.0.1:8400/app/callback"
    assert q["aud"] == ISS and q["launch"] == "L1"
    assert q["code_challenge_method"] == "S256" and len(q["code_challenge"]) == 43
    assert len(q["state"]) >= 43
    assert "patient/DetectedIssue.crus" in q["scope"].split()
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Secure" not in cookie  # loopback


def test_v1_scopes_when_the_server_does_not_advertise_permission_v2(ehr: FakeEhr, harness: Harness) -> None:
    ehr.capabilities = ["launch-ehr"]
    q = parse_qs(urlsplit(harness.launch().headers["location"]).query)
    assert "patient/DetectedIssue.write" in q["scope"][0].split()


def test_pkce_is_used_even_when_not_advertised(ehr: FakeEhr, harness: Harness) -> None:
    ehr.capabilities = []
    q = parse_qs(urlsplit(harness.launch().headers["location"]).query)
    assert q["code_challenge_method"] == ["S256"]


@pytest.mark.parametrize(
    "params",
    [
        {"iss": "https://evil.example.org/fhir", "launch": "L1"},
        {"iss": "http://127.0.0.1:8400/ehr/fhir.evil.example.org", "launch": "L1"},
        {"launch": "L1"},
    ],
)
def test_unknown_or_missing_iss_is_refused_before_any_request(
    harness: Harness, ehr: FakeEhr, params: dict[str, str]
) -> None:
    response = harness.launch(**params)
    assert response.status_code == 400
    assert "Launch refused" in response.text
    assert ehr.requests == []
    assert "location" not in response.headers


def test_the_refusal_page_never_lists_the_allowed_servers(ehr: FakeEhr, monkeypatch: pytest.MonkeyPatch) -> None:
    """Anyone can ask /launch with any iss; the allowed list is configuration (a launcher URL may hold a secret)."""
    secret = "http://127.0.0.1:8400/v/r4/sim/eyJzZWNyZXQiOiJzM2NyM3QifQ/fhir"
    config = load_app_config(REPO_CONFIG)
    config = config.model_copy(update={"allowed_iss": (*config.allowed_iss, secret)})
    with Harness(ehr, config, monkeypatch).browser as browser:
        for path in ("/app/launch", "/app/start"):
            response = browser.get(path, params={"iss": "https://evil.example.org/fhir", "launch": "L1"})
            assert response.status_code == 400 and "is not on this app" in response.text
            assert secret not in response.text and ISS not in response.text and "Allowed" not in response.text


def test_start_refuses_unknown_iss_before_any_request(harness: Harness, ehr: FakeEhr) -> None:
    response = harness.browser.get("/app/start", params={"iss": "https://evil.example.org/fhir"})
    assert response.status_code == 400 and ehr.requests == []


def test_missing_launch_parameter_is_refused(harness: Harness, ehr: FakeEhr) -> None:
    response = harness.launch(iss=ISS)
    assert response.status_code == 400
    assert "launch" in response.text
    assert ehr.requests == []


def test_standalone_launch_defaults_to_the_first_allowed_iss(harness: Harness) -> None:
    response = harness.browser.get("/app/start")
    q = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert q["aud"] == ISS
    assert "launch" not in q
    assert "launch/patient" in q["scope"].split()
    assert harness.browser.get(harness.complete(response)).status_code == 200


# --- callback ----------------------------------------------------------------------------------


def test_state_mismatch_is_refused(harness: Harness, ehr: FakeEhr) -> None:
    location = harness.launch().headers["location"]
    code = ehr.authorize(location)
    response = harness.browser.get("/app/callback", params={"code": code, "state": "forged"})
    assert response.status_code == 400
    assert "state mismatch" in response.text
    assert "authorization_code" not in ehr.grants  # the code was not spent


def test_callback_from_another_browser_is_refused(harness: Harness, ehr: FakeEhr) -> None:
    location = harness.launch().headers["location"]
    code = ehr.authorize(location)
    state = parse_qs(urlsplit(location).query)["state"][0]
    # The attacker's browser, elsewhere, has no session bound to that state: the state alone is not enough.
    with TestClient(harness.browser.app, base_url=ORIGIN, follow_redirects=False, client=("192.0.2.9", 5000)) as other:
        response = other.get("/app/callback", params={"code": code, "state": state})
    assert response.status_code == 400 and "state mismatch" in response.text
    # ... and the launch is still there for the browser that started it.
    assert harness.browser.get("/app/callback", params={"code": code, "state": state}).status_code == 303


def test_state_is_single_use(harness: Harness, ehr: FakeEhr) -> None:
    location = harness.launch().headers["location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    first = harness.browser.get("/app/callback", params={"code": ehr.authorize(location), "state": state})
    assert first.status_code == 303
    again = harness.browser.get("/app/callback", params={"code": ehr.authorize(location), "state": state})
    assert again.status_code == 400


def test_authorization_server_error_is_shown(harness: Harness) -> None:
    location = harness.launch().headers["location"]
    state = parse_qs(urlsplit(location).query)["state"][0]
    response = harness.browser.get(
        "/app/callback", params={"error": "access_denied", "error_description": "<b>user said no</b>", "state": state}
    )
    assert response.status_code == 400
    assert "access_denied" in response.text
    assert "&lt;b&gt;user said no&lt;/b&gt;" in response.text  # escaped


def test_token_refusal_is_shown(harness: Harness, ehr: FakeEhr) -> None:
    location = harness.launch().headers["location"]
    ehr.authorize(location)
    state = parse_qs(urlsplit(location).query)["state"][0]
    response = harness.browser.get("/app/callback", params={"code": "not-issued", "state": state})
    assert response.status_code == 400
    assert "invalid_grant" in response.text


# --- the page ------------------------------------------------------------------------------------


def test_page_shows_banner_every_rule_and_the_alerts_already_in_the_chart(harness: Harness) -> None:
    page = harness.open_page()
    assert page.status_code == 200
    statuses = _statuses(page.text)
    assert set(statuses) == set(RULE_IDS)
    assert statuses["blood-counts"] == "hold"  # WBC 3.1 < 3.5
    assert "Ada Lovelace" in page.text and "4 Mar 1970" in page.text
    assert "Flag/f1" in page.text and "Hold: WBC low" in page.text
    assert "Hold azathioprine — WBC 3.1" in page.text
    assert "Writing would add 1" in page.text
    assert page.text.count('class="trend-chart"') == 6
    assert "Write alerts to the chart" in page.text
    assert harness.checks == [("p1", False)]  # one check_on_server call per page


def test_security_headers(harness: Harness) -> None:
    page = harness.open_page()
    csp = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' http://127.0.0.1:8400" in csp
    assert "script-src" not in csp and "default-src 'none'" in csp
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text and 'style="' not in page.text
    css = harness.browser.get("/app/static/azaguard.css")
    assert css.status_code == 200 and "frame-ancestors" in css.headers["content-security-policy"]


def test_tokens_never_reach_the_browser(harness: Harness, ehr: FakeEhr) -> None:
    page = harness.open_page()
    for token in ehr.live_tokens | ehr.refresh_tokens:
        assert token not in page.text
        assert all(token not in v for v in harness.browser.cookies.values())


def test_no_banner_when_the_ehr_says_it_is_not_needed(harness: Harness, ehr: FakeEhr) -> None:
    ehr.need_patient_banner = False
    page = harness.open_page()
    assert page.status_code == 200 and "patient-banner" not in page.text


def test_page_without_a_launch_asks_to_relaunch(harness: Harness) -> None:
    response = harness.browser.get("/app/")
    assert response.status_code == 401 and "chart in the EHR" in response.text


def test_two_launches_in_one_browser_keep_their_own_patient(harness: Harness, ehr: FakeEhr) -> None:
    first = harness.complete(harness.launch())
    ehr.patient = "p2"
    second = harness.complete(harness.launch())
    assert first != second
    harness.browser.get(first)
    assert harness.checks[-1] == ("p1", False)


# --- tokens mid-session ------------------------------------------------------------------------------


def test_token_is_refreshed_before_it_expires(harness: Harness, ehr: FakeEhr) -> None:
    url = harness.complete(harness.launch())
    harness.clock.now = NOW + timedelta(minutes=59, seconds=30)
    assert harness.browser.get(url).status_code == 200
    assert ehr.grants == ["authorization_code", "refresh_token"]


def test_token_rejected_mid_session_is_refreshed_once(harness: Harness, ehr: FakeEhr) -> None:
    url = harness.complete(harness.launch())
    ehr.expire_all_access_tokens()  # the server dropped it; the app still thinks it is valid
    page = harness.browser.get(url)
    assert page.status_code == 200
    assert ehr.grants == ["authorization_code", "refresh_token"]
    # The old refresh token is kept when none comes back: a second expiry refreshes again.
    ehr.expire_all_access_tokens()
    assert harness.browser.get(url).status_code == 200
    assert ehr.grants.count("refresh_token") == 2


def test_failed_refresh_says_the_session_expired(harness: Harness, ehr: FakeEhr) -> None:
    url = harness.complete(harness.launch())
    ehr.expire_all_access_tokens()
    ehr.refresh_fails = True
    page = harness.browser.get(url)
    assert page.status_code == 401
    assert "Session expired" in page.text and "chart in the EHR" in page.text
    again = harness.browser.get(url)  # a reload says the same, never "No patient open"
    assert again.status_code == 401 and "Session expired" in again.text and "No patient open" not in again.text


def test_without_a_refresh_token_the_page_says_how_long_is_left_and_how_to_relaunch(
    harness: Harness, ehr: FakeEhr
) -> None:
    ehr.offers_refresh = False
    url = harness.complete(harness.launch())
    page = harness.browser.get(url)
    assert page.status_code == 200
    assert "session-note" in page.text and "(in 60 minutes)" in page.text and "today 13:00" in page.text
    assert "open azaguard again from the patient" in page.text
    # Inside the refresh margin the token is still used (nothing to refresh with), and the note counts down.
    harness.clock.now = NOW + timedelta(minutes=59, seconds=30)
    page = harness.browser.get(url)
    assert page.status_code == 200 and "(in less than a minute)" in page.text
    assert ehr.grants == ["authorization_code"]
    # Past expiry: the session expired, when, and how to relaunch; a reload says the same.
    harness.clock.now = NOW + timedelta(minutes=61)
    ehr.expire_all_access_tokens()
    for _ in range(2):
        page = harness.browser.get(url)
        assert page.status_code == 401 and "Session expired" in page.text, page.text
        assert "ended today 13:00" in page.text and "no way to renew it" in page.text
        assert "chart in the EHR" in page.text and "No patient open" not in page.text


def test_a_session_that_renews_itself_shows_no_countdown(harness: Harness) -> None:
    page = harness.open_page()
    assert page.status_code == 200 and "session-note" not in page.text


# --- writing alerts ------------------------------------------------------------------------------------


def test_write_alerts_needs_the_csrf_token(harness: Harness) -> None:
    page = harness.open_page()
    _, ctx = _csrf(page.text)
    response = harness.browser.post("/app/alerts", data={"csrf_token": "forged", "ctx": ctx})
    assert response.status_code == 403
    response = harness.browser.post("/app/alerts", data={"ctx": ctx})
    assert response.status_code == 403
    assert all(not write for _, write in harness.checks)


def test_write_alerts_shows_what_was_written_and_what_failed(harness: Harness) -> None:
    page = harness.open_page()
    csrf, ctx = _csrf(page.text)
    response = harness.browser.post("/app/alerts", data={"csrf_token": csrf, "ctx": ctx})
    assert response.status_code == 303  # POST-redirect-GET: a reload does not write again
    assert harness.checks[-1] == ("p1", True)
    page = harness.browser.get(response.headers["location"])
    assert page.status_code == 200
    assert harness.checks[-1] == ("p1", False)
    assert "DetectedIssue/9" in page.text and "Created" in page.text
    assert "could NOT be written" in page.text and "HTTP 500 from the server" in page.text
    assert 'data-outcome="failed"' in page.text
    again = harness.browser.get(response.headers["location"])  # the reload shows the chart, not the result
    assert 'data-outcome="failed"' not in again.text
    assert sum(1 for _, write in harness.checks if write) == 1


def test_narrower_scope_page_says_alerts_cannot_be_written(harness: Harness, ehr: FakeEhr) -> None:
    ehr.grant = "launch openid fhirUser patient/Patient.rs patient/Observation.rs patient/DetectedIssue.rs"
    page = harness.open_page()
    assert page.status_code == 200
    assert "Alerts cannot be written" in page.text
    assert "Write alerts to the chart" not in page.text
    assert _statuses(page.text)["blood-counts"] == "hold"  # findings still shown
    csrf = re.search(r"csrf", page.text)
    assert csrf is None  # no form at all
    # Even a hand-made POST does not write.
    ctx = parse_qs(urlsplit(harness.complete(harness.launch())).query)["ctx"][0]
    session = harness.app.state.web.sessions.all()[0]
    response = harness.browser.post("/app/alerts", data={"csrf_token": session.csrf_token, "ctx": ctx})
    assert response.status_code == 403
    assert all(not write for _, write in harness.checks)


# --- rows ------------------------------------------------------------------------------------------------


def test_a_rule_without_any_finding_is_shown_as_cannot_evaluate() -> None:
    ok = Finding(
        rule="liver",
        code="x",
        status=Status.OK,
        severity=Severity.INFO,
        mappings_version="t",
    )
    verdict = build_verdict([ok], None, NOW, load_mappings())
    groups = rule_groups(verdict)
    assert {g.rule for g in groups} == set(RULE_IDS) - {"liver"}
    assert all(g.status == "cannot-evaluate" and g.words == "Cannot check" for g in groups)
    assert [r.rule for r in verdict.passed] == ["liver"]


def test_gathering_warnings_are_shown_on_the_page(harness: Harness) -> None:
    harness.warnings = ["Observation: the server ignored the search parameter 'date'"]
    page = harness.open_page()
    assert "What the record could not tell" in page.text
    assert "the server ignored the search parameter &#39;date&#39;" in page.text


def test_over_https_the_cookie_works_inside_an_ehr_iframe() -> None:
    from starlette.requests import Request
    from starlette.responses import Response

    from azaguard.smart.session import SessionStore
    from azaguard.web.pages import set_cookie

    config = load_app_config(REPO_CONFIG, public_base="https://azaguard.example.org")
    web = create_app(config, mappings=load_mappings(), now=lambda: NOW).state.web
    session = SessionStore().get_or_create(None, NOW)
    response = Response()
    set_cookie(Request({"type": "http", "root_path": "/app", "headers": []}), response, session,
               secure_cookies=web.pages.secure_cookies)
    cookie = response.headers["set-cookie"]
    assert "SameSite=none" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    assert "Partitioned" in cookie  # CHIPS: kept by browsers that block third-party cookies, in the EHR's jar


def test_the_callback_finds_its_launch_by_the_state_when_the_cookie_is_withheld(harness: Harness) -> None:
    """A third-party frame under a cookie policy, or launch and callback in different cookie partitions: the
    browser comes back without the session cookie. The state, bound server-side, still completes the launch
    (once), and the page works with the cookie the callback sets."""
    authorize = harness.launch()
    location = authorize.headers["location"]
    code = harness.ehr.authorize(location)
    state = parse_qs(urlsplit(location).query)["state"][0]
    harness.browser.cookies.clear()
    callback = harness.browser.get("/app/callback", params={"code": code, "state": state})
    assert callback.status_code == 303, callback.text
    assert harness.browser.get(callback.headers["location"]).status_code == 200
    harness.browser.cookies.clear()
    replay = harness.browser.get("/app/callback", params={"code": code, "state": state})
    assert replay.status_code == 400 and "state mismatch" in replay.text
    unknown = harness.browser.get("/app/callback", params={"code": code, "state": "x" * 43})
    assert unknown.status_code == 400
