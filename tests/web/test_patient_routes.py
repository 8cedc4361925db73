"""The patient view's routes without a browser: the patient's scopes, refusals, and a clinician's launch."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from azaguard.config import load_app_config
from tests.web.fake_ehr import ISS, FakeEhr
from tests.web.test_app import REPO_CONFIG, Harness, _csrf


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(FakeEhr(), load_app_config(REPO_CONFIG), monkeypatch)
    with h.browser:
        yield h


def test_the_patient_start_asks_the_patient_scopes(harness: Harness) -> None:
    response = harness.browser.get("/app/patient/start")
    q = {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}
    assert q["aud"] == ISS and "launch" not in q
    scope = q["scope"].split()
    wanted = {"launch/patient", "openid", "fhirUser", "patient/Patient.rs", "patient/QuestionnaireResponse.crus"}
    assert wanted <= set(scope)
    assert not any(s.startswith("patient/DetectedIssue") for s in scope)  # a patient never writes alerts


def test_without_a_launch_the_patient_is_asked_to_sign_in_again(harness: Harness) -> None:
    response = harness.browser.get("/app/patient/", params={"ctx": "nope"})
    assert response.status_code == 401 and "patient portal" in response.text


def test_a_check_in_from_another_page_is_refused(harness: Harness) -> None:
    page = harness.open_page()  # a clinician's launch (the fake EHR's id_token names no Patient)
    _, ctx = _csrf(page.text)
    response = harness.browser.post("/app/patient/checkin", data={"csrf_token": "forged", "ctx": ctx,
                                                                   "checkin": "0" * 32, "sign": "49727002"})
    assert response.status_code == 403


def test_a_clinicians_launch_stays_on_the_clinicians_page(harness: Harness) -> None:
    location = harness.complete(harness.launch())
    assert urlsplit(location).path == "/app/"
