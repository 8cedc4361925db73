"""`azaguard check --bundle`: the bundled examples, output formats, and bad input."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from azaguard.cli import COMMANDS, EXIT_INPUT, EXIT_OK, HANDLERS, build_parser, load, main
from azaguard.findings import RULE_IDS
from azaguard.sandbox.patients import EXAMPLES_NOW, build_patients
from tests.clinical import builders as b

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW_ARG = ["--now", EXAMPLES_NOW.isoformat()]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def headlines(findings: list[dict[str, Any]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in findings:
        out.setdefault(f["rule"], f["status"])
    return out


@pytest.mark.parametrize("patient", build_patients(EXAMPLES_NOW), ids=lambda p: p.id)
def test_each_bundled_example_gives_its_expected_findings(capsys: pytest.CaptureFixture[str], patient: Any) -> None:
    code, out, _ = run(capsys, "check", "--bundle", str(EXAMPLES / f"{patient.id}.json"), "--format", "json", *NOW_ARG)
    assert code == EXIT_OK
    report = json.loads(out)
    assert report["patient"] == f"Patient/{patient.id}"
    assert headlines(report["findings"]) == patient.expected


def test_json_output_has_the_documented_shape(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--bundle", str(EXAMPLES / "aza-febrile-c.json"), "--format", "json", *NOW_ARG)
    assert code == EXIT_OK
    report = json.loads(out)
    assert {"patient", "mappings_version", "evaluated_at", "findings"} <= set(report)
    assert report["verdict"]["actions"][0]["summary"].startswith("Hold azathioprine — fever 38.6 °C")
    assert {"rule", "status", "object", "summary"} <= set(report["verdict"]["actions"][0])
    assert report["evaluated_at"] == EXAMPLES_NOW.isoformat()
    assert {f["rule"] for f in report["findings"]} == set(RULE_IDS)
    fever = next(f for f in report["findings"] if f["rule"] == "infection-hold" and f["status"] == "hold")
    assert {"rule", "status", "severity", "summary", "detail", "evidence", "missing"} <= set(fever)
    assert fever["evidence"] and all(e["reference"] for e in fever["evidence"])
    assert fever["mappings_version"] == report["mappings_version"]


def test_text_output_starts_with_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--bundle", str(EXAMPLES / "aza-mmr-due.json"), *NOW_ARG)
    assert code == EXIT_OK
    lines = out.splitlines()
    assert "Do not give the MMR vaccine (live)" in lines[1]
    assert "[HOLD]" in out
    assert "Passed (9):" in out


def _write(tmp_path: Path, content: str) -> str:
    path = tmp_path / "input.json"
    path.write_text(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"resourceType": "Patient", "id": "x"}', "not a record"),
        ('{"resourceType": "OperationOutcome", "issue": [{"diagnostics": "boom"}]}', "boom"),
        ('{"hello": "world"}', "not a FHIR resource"),
        ('[{"resourceType": "Patient"}, 3]', "item 1"),
        ('{"resourceType": "Bundle", "entry": {"resource": 1}}', "Bundle.entry is not a list"),
    ],
)
def test_unusable_input_is_a_clear_error_not_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    code, out, err = run(capsys, "check", "--bundle", _write(tmp_path, content))
    assert code == EXIT_INPUT
    assert message in err and "Traceback" not in err
    assert out == ""


def test_a_missing_file_is_a_clear_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run(capsys, "check", "--bundle", str(tmp_path / "nope.json"))
    assert code == EXIT_INPUT and "is not a readable file (no such file)" in err


def test_two_patients_in_one_bundle_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": b.patient("a")}, {"resource": b.patient("b")}]}
    code, _, err = run(capsys, "check", "--bundle", _write(tmp_path, json.dumps(bundle)))
    assert code == EXIT_INPUT and "2 patients" in err


def test_write_needs_a_server(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--bundle", str(EXAMPLES / "aza-stable.json"), "--write")
    assert code == EXIT_INPUT and "--fhir-url" in err


def test_a_bad_now_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "check", "--bundle", str(EXAMPLES / "aza-stable.json"), "--now", "yesterday")
    assert code == EXIT_INPUT and "ISO-8601" in err


def test_a_transaction_bundle_with_urn_uuid_references_and_a_json_array(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Synthea style: urn:uuid fullUrls, the order references its Medication by urn:uuid.
    med_url = "urn:uuid:6d1f0b8c-0000-4000-8000-000000000001"
    med = b.medication(mid="6d1f0b8c-0000-4000-8000-000000000001")
    order = b.azathioprine(medication_reference=med_url)
    fever = b.observation("8310-5", 101.5, "[degF]", days_ago=0, hours_ago=2)
    entries = [b.patient(), med, order, fever]
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": med_url if r is med else f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r,
         "request": {"method": "POST", "url": r["resourceType"]}} for r in entries]}
    # As a plain array there are no fullUrls: the same order references Medication/<id> instead.
    array = [b.patient(), med, {**order, "medicationReference": {"reference": f"Medication/{med['id']}"}}, fever]
    for content in (json.dumps(bundle), json.dumps(array)):
        code, out, _ = run(capsys, "check", "--bundle", _write(tmp_path, content), "--format", "json",
                           "--now", b.NOW.isoformat())
        assert code == EXIT_OK
        findings = json.loads(out)["findings"]
        assert headlines(findings)["infection-hold"] == "hold"
        assert not [f for f in findings if f["code"] == "medication-unknown"]


def test_the_monitoring_schedule_can_be_chosen(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--bundle", str(EXAMPLES / "aza-stable.json"), "--format", "json",
                       "--monitoring-schedule", "bsr-2017", *NOW_ARG)
    assert code == EXIT_OK
    detail = next(f["detail"] for f in json.loads(out)["findings"] if f["rule"] == "monitoring-schedule")
    assert "bsr-2017" in detail or "BSR" in detail


@pytest.mark.parametrize(
    "words",
    [
        ["check", "--bundle", str(EXAMPLES / "aza-febrile-c.json"), "--format", "json", "--now",
         "2026-11-20T09:00:00Z"],
        ["check", "--fhir-url", "http://127.0.0.1:1/fhir", "--patient", "p", "--write",
         "--monitoring-schedule", "eu-smpc"],
        ["demo", "--no-serve", "--fhir-port", "0"],
        ["scan", "--fhir-url", "http://127.0.0.1:1/fhir"],
        ["mappings", "--report", "--format", "markdown"],
        ["serve", "--port", "8500"],
        ["feedback", "--since", "2026-11-01"],
    ],
)
def test_a_command_parsed_alone_reads_as_with_the_whole_parser(words: list[str]) -> None:
    assert vars(build_parser(words[0]).parse_args(words)) == vars(build_parser().parse_args(words))


def test_every_command_of_the_whole_parser_can_be_built_alone() -> None:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert tuple(sub.choices) == COMMANDS


def test_every_command_has_a_handler_that_imports() -> None:
    # The table is strings (imported when a command runs), so a misspelt row would fail only when used.
    assert {row.split()[0] for row in HANDLERS} == set(COMMANDS)
    for row, target in HANDLERS.items():
        assert callable(load(target)), row
