"""Sessions as peers really behave, in headless Chromium: short-lived tokens refreshed across expiry without the
clinician noticing; an EHR that grants no refresh token (online_access refused) — the page says when the session
ends and how to relaunch, and after expiry keeps saying so, never "No patient open"; a smart-launcher-style id_token
with a relative fhirUser (Practitioner/x) — the page names the user from that resource."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.fhir.client import FhirClient
from azaguard.sandbox.ehr.authserver import SANDBOX_PRACTITIONER
from azaguard.sandbox.patients import build_patients, transaction_bundle
from tests.browser.live_site import LiveSite

pytestmark = [pytest.mark.integration, pytest.mark.browser]

PATIENT = "aza-febrile-c"
TOKEN_LIFETIME = 300  # short-lived, as many EHRs issue them


@pytest.fixture(scope="module")
def upstream(fhir_server: Any) -> str:
    start = datetime.now(UTC)
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle([p for p in build_patients(start) if p.id == PATIENT]))
        client.update({
            "resourceType": "Practitioner", "id": SANDBOX_PRACTITIONER, "active": True,
            "name": [{"prefix": ["Dr"], "given": ["Priya"], "family": "Raman"}],
        })
    return str(fhir_server.base_url)


@pytest.fixture
def site(request: pytest.FixtureRequest, upstream: str) -> Iterator[LiveSite]:
    live = LiveSite(upstream, datetime.now(UTC), token_lifetime=TOKEN_LIFETIME, **getattr(request, "param", {}))
    yield live
    live.close()


@pytest.fixture
def tab(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    yield context.new_page()
    context.close()


def _launch(tab: Any, site: LiveSite) -> str:
    tab.goto(f"{site.base}/ehr/")
    tab.click(f'a.launch[data-patient="{PATIENT}"]')
    tab.wait_for_selector("section.verdict")
    return str(tab.url)


def _grants(site: LiveSite) -> int:
    return len(site.ehr.auth.store.tokens)  # access tokens issued: the launch's, then one per refresh


def test_a_short_lived_token_is_refreshed_across_its_expiry(tab: Any, site: LiveSite) -> None:
    url = _launch(tab, site)
    assert tab.inner_text("#verdict-words").strip() == "Hold"
    assert tab.query_selector(".session-note") is None  # it renews itself: nothing to say
    assert _grants(site) == 1
    for _ in range(3):  # three lifetimes, each crossed while the clinician reads
        site.clocks.advance(TOKEN_LIFETIME + 30)
        response = tab.goto(url)
        assert response is not None and response.status == 200
        assert tab.inner_text("#verdict-words").strip() == "Hold"
    assert _grants(site) == 4  # refreshed each time, never relaunched
    assert "Session expired" not in tab.inner_text("body")


@pytest.mark.parametrize(
    "site", [{"granted_scope_filter": lambda s: " ".join(w for w in s.split() if w != "online_access")}],
    indirect=True,
)
def test_without_a_refresh_token_the_page_says_when_it_ends_then_that_it_ended(tab: Any, site: LiveSite) -> None:
    url = _launch(tab, site)
    note = tab.inner_text(".session-note")
    assert "(in 5 minutes)" in note and "open azaguard again from the patient" in note, note
    site.clocks.advance(4 * 60 + 30)  # inside the refresh margin: the token still serves
    assert tab.goto(url).status == 200 and "(in less than a minute)" in tab.inner_text(".session-note")
    site.clocks.advance(60)
    for _ in range(2):  # expired, and a reload says the same
        response = tab.goto(url)
        assert response is not None and response.status == 401
        text = tab.inner_text("main")
        assert "Session expired" in text and "no way to renew it" in text and "chart in the EHR" in text, text
        assert "No patient open" not in text


@pytest.mark.parametrize("site", [{"user_claims": "smart-launcher"}], indirect=True)
def test_a_relative_fhir_user_names_the_signed_in_user(tab: Any, site: LiveSite) -> None:
    _launch(tab, site)
    assert tab.inner_text("header .user").strip() == "Signed in as Dr Priya Raman"
