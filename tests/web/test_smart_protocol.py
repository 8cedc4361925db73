"""The SMART launch end to end, without a browser: httpx as the browser, the real site (EHR simulator +
azaguard) served by uvicorn on a free port, in front of the real sekmet server.

Both clocks are fakes moved by the tests: the simulator's (token expiry) and the app's (refresh
decisions, evaluation time), so expiry is tested without waiting.
"""

from __future__ import annotations

import html
import re
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import httpx
import pytest

from azaguard.config import load_app_config
from azaguard.findings import RULE_IDS

pytestmark = pytest.mark.integration

TOKEN_LIFETIME = 600
REFRESH_LIFETIME = 86400  # the simulator's default


class SimClock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


class AppClock:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now


class LiveSite:
    """create_site served by uvicorn on 127.0.0.1:<free port> in a thread."""

    def __init__(self, upstream: str, now: datetime, **options: Any) -> None:
        import uvicorn

        from azaguard.sandbox.site import create_site

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.sim_clock = SimClock()
        self.sim_clock.now = now.timestamp()  # both clocks start together, however long ago NOW was taken
        self.app_clock = AppClock(now)
        self.site = create_site(
            fhir_upstream=upstream,
            public_base=self.base,
            app_config=load_app_config(public_base=self.base),
            token_lifetime=TOKEN_LIFETIME,
            clock=self.sim_clock,
            now=self.app_clock,
            **options,
        )
        self.server = uvicorn.Server(uvicorn.Config(self.site, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the sandbox site did not start")
            time.sleep(0.02)
        self.browser = httpx.Client(base_url=self.base, follow_redirects=False, timeout=30)

    @property
    def web(self) -> Any:
        """The azaguard app's internals (its session store), to set up replay cases."""
        for route in self.site.routes:
            if getattr(route, "path", None) == "/app":
                return route.app.state.web  # type: ignore[attr-defined]
        raise AssertionError("no /app mount")

    def advance(self, seconds: float, *, app: bool = True) -> None:
        self.sim_clock.now += seconds
        if app:
            self.app_clock.now += timedelta(seconds=seconds)

    def get(self, url: str) -> httpx.Response:
        parts = urlsplit(url)
        if parts.netloc:
            assert f"{parts.scheme}://{parts.netloc}" == self.base, f"redirect off the site: {url}"
        return self.browser.get(url)

    def follow(
        self,
        response: httpx.Response,
        until: Callable[[httpx.Response], bool] = lambda r: False,
    ) -> httpx.Response:
        """Follow redirects (same origin only) until a non-redirect or `until` says stop."""
        for _ in range(10):
            if response.status_code not in (302, 303) or until(response):
                return response
            response = self.get(response.headers["location"])
        raise AssertionError("redirect loop")

    def launch_link(self, patient_id: str) -> str:
        page = self.get("/ehr/")
        assert page.status_code == 200, page.text
        m = re.search(rf'href="([^"]+)" data-patient="{re.escape(patient_id)}"', page.text)
        assert m, f"no launch link for {patient_id} on the launcher page"
        return html.unescape(m.group(1))

    def to_authorize(self, patient_id: str) -> httpx.Response:
        """EHR launch up to the app's redirect to the authorization endpoint."""
        response = self.get(self.launch_link(patient_id))
        assert response.status_code == 302, response.text
        assert response.headers["location"].startswith(f"{self.base}/ehr/auth/authorize?")
        return response

    def to_callback(self, patient_id: str) -> tuple[str, str]:
        """Launch and authorize; return (authorize URL, callback URL) without visiting the callback."""
        authorize = self.to_authorize(patient_id).headers["location"]
        back = self.get(authorize)
        assert back.status_code == 302, back.text
        callback = back.headers["location"]
        assert callback.startswith(f"{self.base}/app/callback?")
        return authorize, callback

    def open_chart(self, patient_id: str) -> httpx.Response:
        return self.follow(self.to_authorize(patient_id))

    def close(self) -> None:
        self.browser.close()
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    q = _query(url)
    q.update(params)
    return urlunsplit(parts._replace(query=urlencode(q)))


def _statuses(text: str) -> dict[str, str]:
    return dict(re.findall(r'data-rule="([^"]+)" data-status="([^"]+)"', text))


NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def patients(fhir_server: Any) -> list[Any]:
    from azaguard.sandbox.patients import build_patients, transaction_bundle

    built = build_patients(NOW)
    response = httpx.post(
        fhir_server.base_url,
        json=transaction_bundle(built),
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
        timeout=120,
    )
    assert response.status_code == 200, response.text[:500]
    return built


@pytest.fixture
def make_site(fhir_server: Any, patients: list[Any]) -> Iterator[Callable[..., LiveSite]]:
    sites: list[LiveSite] = []

    def make(**options: Any) -> LiveSite:
        site = LiveSite(fhir_server.base_url, NOW, **options)
        sites.append(site)
        return site

    yield make
    for site in sites:
        site.close()


@pytest.fixture
def site(make_site: Callable[..., LiveSite]) -> LiveSite:
    return make_site()


def _a_patient_with_a_hold(patients: list[Any]) -> Any:
    return next(p for p in patients if "hold" in p.expected.values())


def test_full_ehr_launch_shows_the_patients_findings(site: LiveSite, patients: list[Any]) -> None:
    patient = _a_patient_with_a_hold(patients)
    page = site.open_chart(patient.id)
    assert page.status_code == 200, page.text
    assert list(_statuses(page.text)) == list(RULE_IDS)
    assert patient.name in page.text  # need_patient_banner: true
    assert 'class="patient-banner"' in page.text
    assert "Practitioner/sandbox-clinician" in page.text and "identity not verified" not in page.text
    assert "Write alerts to the chart" in page.text
    assert page.text.count('class="trend-chart"') == 6


def test_page_statuses_match_the_scenarios(site: LiveSite, patients: list[Any]) -> None:
    for patient in patients[:4]:
        page = site.open_chart(patient.id)
        assert page.status_code == 200, page.text
        shown = _statuses(page.text)
        assert {r: shown[r] for r in patient.expected} == patient.expected, patient.story


def test_standalone_launch_with_the_patient_picker(site: LiveSite, patients: list[Any]) -> None:
    patient = patients[0]
    authorize = site.get("/app/start")
    assert authorize.status_code == 302
    q = _query(authorize.headers["location"])
    assert "launch" not in q and "launch/patient" in q["scope"].split()
    picker = site.get(authorize.headers["location"])
    assert picker.status_code == 200, picker.text
    pending = re.search(r'name="pending" value="([^"]+)"', picker.text)
    assert pending
    chosen = site.browser.post("/ehr/auth/authorize/select", data={"pending": pending.group(1), "patient": patient.id})
    page = site.follow(chosen)
    assert page.status_code == 200, page.text
    assert patient.name in page.text
    assert list(_statuses(page.text)) == list(RULE_IDS)


def test_state_mismatch_is_refused(site: LiveSite, patients: list[Any]) -> None:
    _, callback = site.to_callback(patients[0].id)
    response = site.get(_with_query(callback, state="forged-state"))
    assert response.status_code == 400
    assert "state mismatch" in response.text


def test_replayed_code_is_refused(site: LiveSite, patients: list[Any]) -> None:
    pid = patients[0].id
    authorize, callback = site.to_callback(pid)
    verifier = _pending_verifier(site, _query(authorize)["state"])
    assert site.follow(site.get(callback)).status_code == 200  # the code is spent here
    # A second launch in the same browser whose pending authorization holds the SAME verifier:
    # only the code's single use can refuse it.
    second = site.to_authorize(pid).headers["location"]
    _set_pending_verifier(site, _query(second)["state"], verifier)
    response = site.get(_with_query(callback, state=_query(second)["state"]))
    assert response.status_code == 400
    assert "invalid_grant" in response.text


def test_wrong_pkce_verifier_is_refused(site: LiveSite, patients: list[Any]) -> None:
    pid = patients[0].id
    _, callback = site.to_callback(pid)  # code bound to launch 1's challenge, not visited
    second = site.to_authorize(pid).headers["location"]  # launch 2: another verifier
    response = site.get(_with_query(callback, state=_query(second)["state"]))
    assert response.status_code == 400
    assert "invalid_grant" in response.text


def test_unknown_iss_is_refused_before_any_request(site: LiveSite) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as trap:
        trap.bind(("127.0.0.1", 0))
        trap.listen(1)
        trap.setblocking(False)
        evil = f"http://127.0.0.1:{trap.getsockname()[1]}/fhir"
        response = site.get(f"/app/launch?{urlencode({'iss': evil, 'launch': 'x'})}")
        assert response.status_code == 400
        assert "not on this app" in response.text
        readable, _, _ = select.select([trap], [], [], 0.2)
        assert readable == [], "the app contacted the unknown iss"


def test_missing_launch_is_refused(site: LiveSite) -> None:
    response = site.get(f"/app/launch?{urlencode({'iss': site.base + '/ehr/fhir'})}")
    assert response.status_code == 400


def test_token_is_refreshed_before_expiry(site: LiveSite, patients: list[Any]) -> None:
    page = site.open_chart(patients[0].id)
    url = str(page.url)
    before = _only_launch(site).tokens.access_token
    site.advance(TOKEN_LIFETIME - 30)  # both clocks: inside the app's refresh margin
    again = site.get(url)
    assert again.status_code == 200, again.text
    assert _only_launch(site).tokens.access_token != before


def test_token_expired_mid_session_is_refreshed(site: LiveSite, patients: list[Any]) -> None:
    page = site.open_chart(patients[0].id)
    before = _only_launch(site).tokens.access_token
    site.advance(TOKEN_LIFETIME + 5, app=False)  # the server expired it; the app does not know yet
    again = site.get(str(page.url))
    assert again.status_code == 200, again.text
    assert _only_launch(site).tokens.access_token != before


def test_session_expired_when_refresh_fails(site: LiveSite, patients: list[Any]) -> None:
    page = site.open_chart(patients[0].id)
    site.advance(REFRESH_LIFETIME + TOKEN_LIFETIME, app=False)  # access and refresh tokens both dead
    again = site.get(str(page.url))
    assert again.status_code == 401
    assert "Session expired" in again.text


def test_narrower_scope_page_says_alerts_cannot_be_written(
    make_site: Callable[..., LiveSite], patients: list[Any]
) -> None:
    def read_only(scope: str) -> str:
        # The simulator can only take scopes away: without the .cruds scopes nothing may touch the alerts.
        return " ".join(s for s in scope.split() if not s.startswith(("patient/DetectedIssue", "patient/Flag")))

    site = make_site(granted_scope_filter=read_only)
    patient = _a_patient_with_a_hold(patients)
    page = site.open_chart(patient.id)
    assert page.status_code == 200, page.text
    assert "Alerts cannot be written" in page.text
    assert "Write alerts to the chart" not in page.text
    assert "hold" in _statuses(page.text).values()  # the findings are still there


def test_write_alerts_to_the_chart(site: LiveSite, patients: list[Any]) -> None:
    patient = _a_patient_with_a_hold(patients)
    page = site.open_chart(patient.id)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    ctx = re.search(r'name="ctx" value="([^"]+)"', page.text)
    assert csrf and ctx
    refused = site.browser.post("/app/alerts", data={"csrf_token": "forged", "ctx": ctx.group(1)})
    assert refused.status_code == 403
    written = site.browser.post("/app/alerts", data={"csrf_token": csrf.group(1), "ctx": ctx.group(1)})
    assert written.status_code == 200, written.text
    assert "Alerts written to the chart" in written.text, written.text
    assert 'data-outcome="failed"' not in written.text
    assert re.search(r"DetectedIssue/[A-Za-z0-9\-.]+", written.text)


# --- reaching into the app's session store (set-up only) ---------------------------------------------


def _session(site: LiveSite) -> Any:
    sessions = site.web.sessions.all()
    assert len(sessions) == 1
    return sessions[0]


def _pending_verifier(site: LiveSite, state: str) -> str:
    return str(_session(site).pending[state].code_verifier)


def _set_pending_verifier(site: LiveSite, state: str, verifier: str) -> None:
    _session(site).pending[state].code_verifier = verifier


def _only_launch(site: LiveSite) -> Any:
    launches = _session(site).launches
    assert len(launches) == 1
    return next(iter(launches.values()))
