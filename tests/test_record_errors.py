"""The record builder turns only the readers' data errors into "could not be read"; a programming error fails.
A rule that crashes is still cannot-evaluate for the user, and its traceback is logged for whoever fixes it."""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from azaguard import rules
from azaguard.findings import Status
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.record.build import Builder
from azaguard.resources import Resource, load_json_file, resource_set_from_json
from azaguard.rules import evaluate

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aza-leukopenic.json"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def m() -> Mappings:
    return load_mappings()


def _bundle() -> dict[str, Any]:
    import json

    data: dict[str, Any] = json.loads(EXAMPLE.read_text())
    return data


def test_invalid_fhir_data_becomes_a_parse_problem(m: Mappings) -> None:
    bundle = _bundle()
    obs = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    obs["effectiveDateTime"] = "2026-02-30T10:00:00Z"  # off the calendar
    record = build_record(resource_set_from_json(bundle), m)
    assert [p.ref for p in record.problems] == [f"Observation/{obs['id']}"]


@pytest.mark.parametrize("error", [AttributeError, TypeError, KeyError, ValueError])
def test_a_programming_error_in_a_handler_is_not_read_as_bad_data(
    m: Mappings, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    def broken(builder: Builder, raw: Resource) -> None:
        raise error("a bug in the builder")

    monkeypatch.setattr(Builder, "_observation", broken)
    with pytest.raises(error, match="a bug in the builder"):
        build_record(load_json_file(EXAMPLE), m)


def test_a_crashing_rule_is_cannot_evaluate_and_logged_with_its_traceback(
    m: Mappings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    record = build_record(load_json_file(EXAMPLE), m)
    rule_ids = [rule_id for rule_id, _ in rules._rules()]
    victim = rule_ids[0]

    def crash(*_: object) -> list[Any]:
        return {}["no such key"]  # type: ignore[no-any-return]

    patched = tuple((rid, crash if rid == victim else fn) for rid, fn in rules._rules())
    monkeypatch.setattr(rules, "_rules", lambda: patched)
    with caplog.at_level(logging.ERROR, logger="azaguard.rules"):
        findings = evaluate(record, m, NOW)
    crashed = [f for f in findings if f.rule == victim]
    assert [(f.code, f.status) for f in crashed] == [("internal-error", Status.CANNOT_EVALUATE)]
    logged = [r for r in caplog.records if r.name == "azaguard.rules"]
    assert len(logged) == 1 and victim in logged[0].getMessage()
    assert logged[0].exc_info is not None and logged[0].exc_info[0] is KeyError
    assert "in crash" in caplog.text  # the traceback names the failing frame
    other = [f for f in findings if f.rule != victim]
    assert other and not [f for f in other if f.code == "internal-error"]


def test_unchanged_record_has_no_problems(m: Mappings) -> None:
    record = build_record(resource_set_from_json(copy.deepcopy(_bundle())), m)
    assert record.problems == ()


@pytest.mark.parametrize(("resource_type", "element", "value"), [
    ("Procedure", "code", "vaccination"),  # a string where a CodeableConcept belongs
    ("Procedure", "code", 90707),
    ("Observation", "code", {"coding": "6690-2"}),
    ("Observation", "category", "laboratory"),
    ("Observation", "component", 5),
    ("DiagnosticReport", "contained", 5),
    ("MedicationRequest", "dosageInstruction", [{"timing": "daily"}]),
    ("Patient", "link", ["Patient/x"]),
])
def test_json_of_the_wrong_kind_is_read_as_data_never_a_crash(
    m: Mappings, resource_type: str, element: str, value: object
) -> None:
    """The quick reads on a resource's JSON (before it is read into its Struct) take each value for what JSON it
    is (fhirtypes.raw): a list, string or number where an object belongs is invalid data, never an exception."""
    bundle = _bundle()
    bundle["entry"] += [{"resource": {"resourceType": rtype, "id": f"added-{rtype}", "status": status,
                                      "subject": {"reference": "Patient/aza-leukopenic"}, "code": {"text": "x"}}}
                        for rtype, status in (("Procedure", "completed"), ("DiagnosticReport", "final"))]
    target = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type)
    target[element] = value
    record = build_record(resource_set_from_json(bundle), m)
    assert record.patient is not None
