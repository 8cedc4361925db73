"""The CDS service's one way out: whatever failure leaves a hook or feedback call, its status and JSON body come
from the error tree (errors.http_status, errors.http_body), through the real signed route. Parametrised over the
whole tree; a bug is answered 500 with no detail and logged with its traceback."""

from __future__ import annotations

from typing import Any

import pytest

from azaguard.cds import app as cds_app
from azaguard.errors import STATUSES, AzaguardError, http_body, http_status
from tests.cds.conftest import Caller
from tests.cds.hookdata import body, sandbox_chart
from tests.errortree import IDS, TREE, failure

PV = "azaguard-patient-view"


def _raising(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise exc

    monkeypatch.setattr(cds_app, "run_hook", broken)


@pytest.mark.parametrize("cls", TREE, ids=IDS)
def test_a_hook_answers_each_failure_from_the_tree(
    call: Caller, monkeypatch: pytest.MonkeyPatch, cls: type[AzaguardError]
) -> None:
    exc = failure(cls)
    _raising(monkeypatch, exc)
    response = call(PV, body("patient-view", sandbox_chart("aza-stable"), patient_id="aza-stable"))
    assert response.status_code == http_status(exc) and response.status_code in STATUSES
    assert response.json() == http_body(exc)
    assert response.headers["access-control-allow-origin"] == "*"  # a browser client can read why


def test_a_bug_is_answered_500_without_detail_and_logged(
    call: Caller, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _raising(monkeypatch, KeyError("a secret detail"))
    response = call(PV, body("patient-view", sandbox_chart("aza-stable"), patient_id="aza-stable"))
    assert response.status_code == 500
    assert response.json() == {"error": "internal-error", "message": "internal error"}
    assert any(r.exc_info and r.exc_info[0] is KeyError for r in caplog.records)


def test_unreadable_feedback_is_answered_from_the_tree(call: Caller) -> None:
    response = call(f"{PV}/feedback", {"feedback": "not a list"})
    assert response.status_code == 400
    assert response.json()["error"] == "bad-request"
