"""Issue 17 shapes through the command itself: `check --bundle` on a batch-response with a failed entry, a
transaction with conditional references, a DiagnosticReport and a check-in (exit codes and the JSON report)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from azaguard.cli import main
from tests.clinical import builders as b
from tests.clinical.signs_builders import DETECTED, lab, loinc, questionnaire_response, yes_no

EXIT_OK = 0


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code = main(["check", "--bundle", str(path), "--format", "json", "--now", b.NOW.isoformat()])
    out, _ = capsys.readouterr()
    return code, json.loads(out)


def statuses(report: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for f in report["findings"]:
        out.setdefault(f["rule"], set()).add(f"{f['status']}:{f['code']}")
    return out


def test_failed_batch_entry_is_never_no_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [b.azathioprine(), b.observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6)]
    bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": b.patient(), "response": {"status": "200 OK"}},
        {"resource": {"resourceType": "Bundle", "type": "searchset",
                      "entry": [{"resource": r} for r in records]}, "response": {"status": "200 OK"}},
        {"response": {"status": "404 Not Found"}, "request": {"method": "GET", "url": "QuestionnaireResponse?x=1"}},
    ]}
    code, report = check(tmp_path, capsys, bundle)
    assert code == EXIT_OK
    assert statuses(report)["infection-hold"] == {"cannot-evaluate:data-unread"}


def test_a_check_in_and_a_lab_report_in_a_collection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    records = [b.patient(), b.azathioprine(), b.observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6),
               questionnaire_response([yes_no("cough", "Cough for more than two days?", True)]),
               lab(loinc("94500-6"), value=DETECTED)]
    code, report = check(tmp_path, capsys, {"resourceType": "Bundle", "type": "collection",
                                            "entry": [{"resource": r} for r in records]})
    assert code == EXIT_OK
    assert {"hold:lab-proven-infection", "caution:warning-signs"} <= statuses(report)["infection-hold"]
