"""The SMART app under attack: session fixation, a Host header pointing elsewhere, framing and
transport headers, and a flood of launches."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from starlette.testclient import TestClient

from azaguard.alerts import WriteOutcome
from azaguard.config import AppConfig, Scopes, load_app_config
from azaguard.sandbox.site import create_site
from azaguard.smart.session import MAX_ANONYMOUS, SessionStore
from azaguard.web.app import COOKIE, served_app
from azaguard.websecurity import x_frame_options
from tests.clinical.builders import NOW
from tests.web.fake_ehr import ISS, ORIGIN, FakeEhr
from tests.web.test_app import REPO_CONFIG, Harness


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(FakeEhr(), load_app_config(REPO_CONFIG), monkeypatch)
    with h.browser:
        yield h


def test_the_session_id_rotates_at_the_callback(harness: Harness) -> None:
    authorize = harness.launch()
    planted = harness.browser.cookies.get(COOKIE)
    assert planted
    page_url = harness.complete(authorize)
    after = harness.browser.cookies.get(COOKIE)
    assert after and after != planted
    assert harness.browser.get(page_url).status_code == 200
    # The id known before the login (e.g. planted by an attacker) opens nothing.
    harness.browser.cookies.clear()
    harness.browser.cookies.set(COOKIE, planted)
    assert harness.browser.get(page_url).status_code == 401


def _config(launch_uri: str, frame_ancestors: tuple[str, ...] | None = None) -> AppConfig:
    origin = launch_uri.rsplit("/app/", 1)[0]
    return AppConfig(
        client_id="azaguard", client_type="public", redirect_uris=(f"{origin}/app/callback",), launch_uri=launch_uri,
        scopes=Scopes(v2="launch", v1="launch"), allowed_iss=(f"{origin}/ehr/fhir",), frame_ancestors=frame_ancestors,
    )


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8400", "127.0.0.1:8400@evil.example"])
def test_redirects_come_from_the_public_base_never_the_host_header(host: str) -> None:
    served = TestClient(served_app(load_app_config(REPO_CONFIG)), base_url=ORIGIN, follow_redirects=False)
    site = TestClient(create_site(fhir_upstream="http://127.0.0.1:9/fhir", public_base=ORIGIN,
                                  app_config=load_app_config(REPO_CONFIG)), base_url=ORIGIN, follow_redirects=False)
    for client in (served, site):
        response = client.get("/app", headers={"host": host, "x-forwarded-host": "evil.example"})
        assert response.status_code in (301, 302, 307, 308)
        assert response.headers["location"].startswith(f"{ORIGIN}/"), response.headers["location"]


def test_hsts_under_https_and_x_frame_options_agrees_with_frame_ancestors() -> None:
    from azaguard.web.app import create_app

    cases = {
        ("'self'",): ("SAMEORIGIN", "frame-ancestors 'self'"),
        ("'none'",): ("DENY", "frame-ancestors 'none'"),
        ("'self'", "https://ehr.example"): (None, "frame-ancestors 'self' https://ehr.example"),
    }
    for ancestors, (xfo, csp) in cases.items():
        app = create_app(_config("https://app.example/app/launch", ancestors))
        response = TestClient(app, base_url="https://app.example").get("/static/does-not-exist")
        assert response.headers.get("x-frame-options") == xfo
        assert csp in response.headers["content-security-policy"]
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert x_frame_options(ancestors) == (xfo.encode() if xfo else None)
    plain = create_app(_config("http://127.0.0.1:8400/app/launch"))
    assert "strict-transport-security" not in TestClient(plain, base_url=ORIGIN).get("/static/x").headers


def test_a_launch_flood_is_rate_limited_and_never_evicts_a_live_session(harness: Harness) -> None:
    page_url = harness.complete(harness.launch())
    live = harness.browser.cookies.get(COOKIE)
    statuses = []
    for i in range(60):
        harness.browser.cookies.clear()
        statuses.append(harness.launch(iss=ISS, launch=f"L{i}").status_code)
    assert statuses.count(302) <= 20 and statuses[-1] == 429
    limited = harness.launch(iss=ISS, launch="again")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    discoveries = [r for r in harness.ehr.requests if r.url.path.endswith("/.well-known/smart-configuration")]
    assert len(discoveries) == 1  # cached: launches do not become requests to the EHR
    harness.browser.cookies.clear()
    harness.browser.cookies.set(COOKIE, live)
    assert harness.browser.get(page_url).status_code == 200


def test_anonymous_sessions_from_many_addresses_are_bounded_and_spare_launched_ones() -> None:
    store = SessionStore(idle_timeout=timedelta(hours=8))
    launched = store.create(NOW, "10.0.0.1")
    launched.launches["x"] = object()  # type: ignore[assignment]
    store.rotate(launched, NOW)
    for i in range(MAX_ANONYMOUS * 3):
        store.create(NOW, f"10.1.{i // 250}.{i % 250}")
    for _ in range(100):  # one address alone keeps only its newest few
        store.create(NOW, "10.9.9.9")
    assert store.get(launched.id, NOW) is launched
    assert len(store) <= MAX_ANONYMOUS + 1
    assert sum(1 for s in store.all() if s.address == "10.9.9.9") <= 20
    # Idle sessions expire.
    assert store.get(launched.id, NOW + timedelta(hours=9)) is None


def test_the_app_never_logs_a_token(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    page_url = harness.complete(harness.launch())
    harness.ehr.expire_all_access_tokens()  # the next page load refreshes
    assert harness.browser.get(page_url).status_code == 200
    secrets = [*harness.ehr.live_tokens, *harness.ehr.refresh_tokens]
    assert secrets
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert not [s for s in secrets if s in logged]


def test_the_page_says_what_was_written_when_the_read_back_failed(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azaguard import service

    def written_then_unreadable(*args: object, **kwargs: object) -> service.CheckResult:
        result = harness.fake_check(*args, **kwargs)  # type: ignore[arg-type]
        result.writes = [WriteOutcome("DetectedIssue", "di-1", "blood-counts", "created", "DetectedIssue/9")]
        result.existing_alerts = []
        result.existing_alerts_problem = "the alerts were written as listed, but reading the chart back failed: 503"
        result.notes = ["1 resource(s) carry azaguard's identifiers but were not written by azaguard: Flag/x"]
        return result

    page = harness.open_page()
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    ctx = page.text.split('name="ctx" value="')[1].split('"')[0]
    monkeypatch.setattr(service, "check_on_server", written_then_unreadable)
    posted = harness.browser.post("/app/alerts", data={"csrf_token": csrf, "ctx": ctx})
    assert posted.status_code == 303  # POST-redirect-GET: the outcomes are shown by the GET
    written = harness.browser.get(posted.headers["location"])
    assert written.status_code == 200
    assert "DetectedIssue/9" in written.text and "reading the chart back failed" in written.text
    assert "not written by azaguard" in written.text
    assert "nothing was evaluated" not in written.text
