"""The CLI reports: the verdict first, gathering warnings never dropped, the JSON keeps its fields."""

from __future__ import annotations

from pathlib import Path

from azaguard import report
from azaguard.alerts import WriteOutcome
from azaguard.mappings import load_mappings
from azaguard.resources import load_json_file
from azaguard.sandbox.patients import EXAMPLES_NOW
from azaguard.service import CheckResult, check_resources

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
WARNING = "Observation: the server ignored the search parameter 'date'; results were filtered here"


def _result(patient_id: str) -> CheckResult:
    return check_resources(load_json_file(EXAMPLES / f"{patient_id}.json"), mappings=load_mappings(), now=EXAMPLES_NOW)


def test_gathering_warnings_reach_the_text_and_json_reports() -> None:
    result = _result("aza-stable")
    result.warnings = [WARNING]
    text = report.to_text(result)
    assert "What the data could not tell:" in text and WARNING in text
    assert report.to_json(result)["warnings"] == [WARNING]
    assert "warnings" not in report.to_json(_result("aza-stable"))  # omitted when there are none


def test_text_report_opens_with_the_verdict_and_words_write_outcomes() -> None:
    result = _result("aza-febrile-c")
    result.writes = [
        WriteOutcome("DetectedIssue", "a" * 40, "infection-hold", "exists", "DetectedIssue/1"),
        WriteOutcome("Flag", "b" * 40, "infection-hold", "failed", error="HTTP 500"),
    ]
    lines = report.to_text(result, include_writes=True).splitlines()
    assert lines[0] == "azaguard — Daniel Reyes (Patient/aza-febrile-c)"
    assert lines[1] == "✖ Hold azathioprine — fever 38.6 °C today 06:00; contact the prescriber."
    assert any(line.startswith("  already there DetectedIssue") for line in lines)
    assert any("FAILED" in line and "HTTP 500" in line for line in lines)
    data = report.to_json(result, include_writes=True)
    assert data["verdict"]["actions"][0] == {
        "rule": "infection-hold", "code": "fever", "status": "hold", "verb": "Hold", "object": "azathioprine",
        "reason": "fever 38.6 °C today 06:00", "advice": "contact the prescriber",
        "summary": "Hold azathioprine — fever 38.6 °C today 06:00; contact the prescriber.",
        "detail": data["verdict"]["actions"][0]["detail"], "todo": [],
        "evidence": data["verdict"]["actions"][0]["evidence"],
    }
    assert data["verdict"]["actions"][0]["evidence"][0] == {
        "what": "Temperature at or above fever threshold", "value": "38.6 °C", "date": "today 06:00",
        "role": "trigger", "reference": "Observation/aza-febrile-c-temp",
    }
