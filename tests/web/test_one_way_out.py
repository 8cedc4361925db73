"""The SMART app's one way out: whatever failure leaves a route, the page's status comes from the error tree
(errors.http_status, as a gateway for the EHR's data), every status is a documented one, and the page says it in
its audience's words, never with a traceback or a path of this machine. Parametrised over the whole tree."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from markupsafe import escape
from starlette.testclient import TestClient

import azaguard
from azaguard import service
from azaguard.config import load_app_config
from azaguard.errors import STATUSES, AzaguardError, ConfigError, KnowledgeError, http_status
from azaguard.fhir.errors import FhirError
from azaguard.web import clinician, patient
from azaguard.web.tokens import SessionExpired
from tests.errortree import IDS, SAID, TREE, failure
from tests.web.fake_ehr import ORIGIN, FakeEhr
from tests.web.test_app import REPO_CONFIG, Harness

INSIDE = str(Path(azaguard.__file__).resolve().parent)


@pytest.fixture
def harness(monkeypatch: pytest.MonkeyPatch) -> Iterator[Harness]:
    h = Harness(FakeEhr(), load_app_config(REPO_CONFIG), monkeypatch)
    with h.browser:
        yield h


@pytest.mark.parametrize("cls", TREE, ids=IDS)
def test_every_failure_maps_to_a_documented_status(cls: type[AzaguardError]) -> None:
    exc = failure(cls)
    assert http_status(exc) in STATUSES
    assert http_status(exc, gateway=True) in STATUSES
    assert http_status(exc, gateway=True) not in (400, 412)  # the EHR's data is never the browser's fault


def _raising(harness: Harness, monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(service, "check_on_server", broken)


def _said_plainly(text: str) -> None:
    assert "Traceback" not in text and INSIDE not in text and ".py" not in text


@pytest.mark.parametrize("cls", TREE, ids=IDS)
def test_the_clinicians_page_answers_each_failure_from_the_tree(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, cls: type[AzaguardError]
) -> None:
    page_url = harness.complete(harness.launch())
    exc = failure(cls)
    _raising(harness, monkeypatch, exc)
    recorded: list[str] = []
    monkeypatch.setattr(harness.app.state.web.audit, "record", lambda action, **kw: recorded.append(kw["outcome"]))
    page = harness.browser.get(page_url)
    status = http_status(exc, gateway=True)
    assert page.status_code == status
    _said_plainly(page.text)
    if isinstance(exc, SessionExpired):  # the launch's own expiry page (when and how to relaunch)
        assert "Session expired" in page.text
    else:
        words = clinician.FAILURES.get(status) or clinician.FAILURES[500]
        assert escape(words.heading) in page.text
        assert (SAID in page.text) == (words.detail or "{error}" in words.message)
    assert recorded == [f"refused {status}"]  # the audit trail says what the page said


@pytest.mark.parametrize("cls", TREE, ids=IDS)
def test_the_patients_page_answers_each_failure_from_the_tree_in_their_words(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, cls: type[AzaguardError]
) -> None:
    ctx = parse_qs(urlsplit(harness.complete(harness.launch())).query)["ctx"][0]
    exc = failure(cls)
    _raising(harness, monkeypatch, exc)
    page = harness.browser.get("/app/patient/", params={"ctx": ctx})
    status = http_status(exc, gateway=True)
    assert page.status_code == status
    _said_plainly(page.text)
    words = patient.FAILURES.get(status) or patient.FAILURES[500]
    assert escape(words.heading) in page.text and SAID not in page.text  # the server's words are for hospital IT


def test_a_bug_gets_the_500_page_and_its_traceback_only_in_the_log(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    page_url = harness.complete(harness.launch())
    _raising(harness, monkeypatch, KeyError("a bug"))
    browser = TestClient(harness.browser.app, base_url=ORIGIN, raise_server_exceptions=False,
                         cookies=harness.browser.cookies, follow_redirects=False)
    page = browser.get(page_url)
    assert page.status_code == 500 and escape(clinician.FAILURES[500].heading) in page.text
    # Answered inside the app's middleware: the 500 page carries the same security headers as every page.
    assert "default-src" in page.headers.get("content-security-policy", "")
    assert page.headers.get("cache-control") == "no-store"
    _said_plainly(page.text)
    assert "a bug" not in page.text
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_the_log_says_azaguards_own_500s_but_never_a_fhir_errors_sentence(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="azaguard.web")
    page_url = harness.complete(harness.launch())
    for exc, said in ((ConfigError(SAID), True), (KnowledgeError(SAID), True), (FhirError(SAID), False)):
        _raising(harness, monkeypatch, exc)
        caplog.clear()
        harness.browser.get(page_url)
        failed = [r for r in caplog.records if r.getMessage() == "request failed"]
        assert [getattr(r, "error", None) for r in failed] == [type(exc).__name__]
        assert (getattr(failed[0], "detail", None) == SAID) is said  # a FHIR error's sentence names resources
