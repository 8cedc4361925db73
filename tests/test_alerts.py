"""Planning alerts is pure: which DetectedIssues and Flags a set of findings asks for."""

from __future__ import annotations

from datetime import timedelta

from azaguard.alerts import (
    ALERT_ID_SYSTEM,
    FLAG_ID_SYSTEM,
    PlannedWrite,
    alert_identifier,
    device_resource,
    plan_alerts,
)
from azaguard.findings import Evidence, Finding, Severity, Status
from azaguard.mappings import load_mappings
from azaguard.verdict import build_verdict
from tests.clinical.builders import NOW

PATIENT = "Patient/p1"
AUTHOR = {"reference": "Device/d1"}


def _finding(status: Status, *, rule: str = "infection-hold", code: str = "fever",
             evidence: tuple[str, ...] = ("Observation/t1",), severity: Severity = Severity.HIGH) -> Finding:
    return Finding(
        rule=rule,  # type: ignore[arg-type]
        code=code, status=status, severity=severity,
        evidence=tuple(Evidence(reference=r, description="temperature", value="38.4 Cel") for r in evidence),
        missing=("a temperature in the last 72 h",) if status is Status.CANNOT_EVALUATE else (),
        implicated=("MedicationRequest/aza",), mappings_version="test-1",
    )


def _plan(patient: str, findings: list[Finding], *args: object) -> list[PlannedWrite]:
    """plan_alerts with the chart's wording of these findings (absolute dates), as the service writes them."""
    verdict = build_verdict(findings, None, NOW, load_mappings(), relative_dates=False)
    return plan_alerts(patient, findings, *args, verdict=verdict)  # type: ignore[arg-type]


def _flag(finding: Finding, *, status: str = "active", version: str = "1") -> dict[str, object]:
    return {
        "resourceType": "Flag", "id": "f1", "meta": {"versionId": version}, "status": status,
        "identifier": [{"system": FLAG_ID_SYSTEM, "value": alert_identifier(PATIENT, finding)}],
        "code": {"coding": [{"system": "urn:azaguard:finding", "code": f"{finding.rule}/{finding.code}"}]},
        "subject": {"reference": PATIENT}, "period": {"start": (NOW - timedelta(days=1)).isoformat()},
    }


def test_identifier_is_deterministic_and_depends_on_the_evidence_set() -> None:
    a = _finding(Status.HOLD, evidence=("Observation/t1", "Observation/t2"))
    same = _finding(Status.HOLD, evidence=("Observation/t2", "Observation/t1"))
    other = _finding(Status.HOLD, evidence=("Observation/t3",))
    assert alert_identifier(PATIENT, a) == alert_identifier(PATIENT, same)
    assert alert_identifier(PATIENT, a) != alert_identifier(PATIENT, other)
    assert alert_identifier(PATIENT, a) != alert_identifier("Patient/p2", a)


def test_a_hold_becomes_a_detected_issue_and_a_flag() -> None:
    plan = _plan(PATIENT, [_finding(Status.HOLD)], [], NOW, AUTHOR)
    assert [(p.action, p.resource_type) for p in plan] == [("create", "DetectedIssue"), ("create", "Flag")]
    issue = plan[0].resource
    assert issue["status"] == "final" and issue["severity"] == "high"
    assert issue["patient"] == {"reference": PATIENT}
    assert issue["implicated"] == [{"reference": "MedicationRequest/aza"}]
    assert issue["evidence"][0]["detail"][0]["reference"] == "Observation/t1"
    assert issue["identifier"][0]["system"] == ALERT_ID_SYSTEM
    assert issue["author"] == AUTHOR
    assert "test-1" in issue["detail"]  # the mappings version behind it
    flag = plan[1].resource
    assert flag["status"] == "active" and flag["period"]["start"] == NOW.isoformat()


def test_caution_is_an_issue_without_a_flag_and_ok_writes_nothing() -> None:
    plan = _plan(PATIENT, [_finding(Status.CAUTION, severity=Severity.MODERATE), _finding(Status.OK, code="ok")],
                       [], NOW, AUTHOR)
    assert [(p.resource_type, p.resource["severity"]) for p in plan] == [("DetectedIssue", "moderate")]


def test_cannot_evaluate_is_a_low_severity_issue_saying_what_is_missing() -> None:
    plan = _plan(PATIENT, [_finding(Status.CANNOT_EVALUATE, code="no-temperature")], [], NOW, AUTHOR)
    assert len(plan) == 1
    assert plan[0].resource["severity"] == "low"
    assert "a temperature in the last 72 h" in plan[0].resource["detail"]


def test_an_active_flag_for_a_continuing_hold_is_kept() -> None:
    hold = _finding(Status.HOLD)
    plan = _plan(PATIENT, [hold], [_flag(hold)], NOW, AUTHOR)
    assert [(p.action, p.resource_type) for p in plan] == [("create", "DetectedIssue"), ("exists", "Flag")]


def test_a_cleared_hold_closes_its_flag_with_a_period_end() -> None:
    hold = _finding(Status.HOLD)
    plan = _plan(PATIENT, [_finding(Status.OK, code="ok")], [_flag(hold, version="3")], NOW, AUTHOR)
    assert len(plan) == 1
    close = plan[0]
    assert close.action == "close" and close.version == "3"
    assert close.resource["status"] == "inactive"
    assert close.resource["period"]["end"] == NOW.isoformat()
    assert close.resource["period"]["start"]  # the episode's start is kept


def test_inactive_flags_are_history_and_a_new_episode_gets_a_new_flag() -> None:
    hold = _finding(Status.HOLD)
    old = _flag(hold, status="inactive")
    new_episode = _finding(Status.HOLD, evidence=("Observation/t9",))
    plan = _plan(PATIENT, [new_episode], [old], NOW, AUTHOR)
    assert [(p.action, p.resource_type) for p in plan] == [("create", "DetectedIssue"), ("create", "Flag")]
    assert plan[1].identifier != old["identifier"][0]["value"]  # type: ignore[index]


def test_a_later_episode_of_the_same_hold_has_its_own_flag_identifier() -> None:
    """The same evidence holding again after the Flag was closed: a new id AND a new identifier, so the
    conditional create of a server refusing client ids cannot match the inactive first episode."""
    hold = _finding(Status.HOLD)
    first = _flag(hold, status="inactive")
    first["id"] = "azg-" + alert_identifier(PATIENT, hold)
    flag = _plan(PATIENT, [hold], [first], NOW, AUTHOR)[1]
    base = alert_identifier(PATIENT, hold)
    assert flag.resource["id"] == f"azg-{base}-1"
    assert flag.identifier == f"{base}-1" == flag.resource["identifier"][0]["value"]
    second = {**flag.resource, "status": "inactive"}
    third = _plan(PATIENT, [hold], [first, second], NOW, AUTHOR)[1]
    assert third.identifier == f"{base}-2" and third.resource["id"] == f"azg-{base}-2"
    # An episode an older version wrote under the first identifier (its id says which) is counted too.
    older = {**first, "id": f"azg-{base}-3"}
    assert _plan(PATIENT, [hold], [first, older], NOW, AUTHOR)[1].identifier == f"{base}-4"


def test_the_author_device_names_software_and_mappings_versions() -> None:
    device = device_resource("2026.11.1")
    versions = {v["type"]["text"]: v["value"] for v in device["version"]}
    assert versions["mappings"] == "2026.11.1" and versions["software"]


def test_alert_text_in_the_chart_is_the_clinicians_wording() -> None:
    from pathlib import Path

    from azaguard.mappings import load_mappings
    from azaguard.resources import load_json_file
    from azaguard.sandbox.patients import EXAMPLES_NOW
    from azaguard.service import chart_verdict, check_resources

    mappings = load_mappings()
    example = Path(__file__).resolve().parents[1] / "examples" / "aza-febrile-f.json"
    result = check_resources(load_json_file(example), mappings=mappings, now=EXAMPLES_NOW)
    verdict = chart_verdict(result, mappings)
    plan = plan_alerts(result.patient_ref, result.findings, [], EXAMPLES_NOW, {"display": "azaguard"}, verdict=verdict)
    issue = next(p.resource for p in plan if p.resource_type == "DetectedIssue")
    flag = next(p.resource for p in plan if p.resource_type == "Flag")
    headline = "Hold azathioprine — fever 101.8 °F 1 Nov 2026 06:00; contact the prescriber."
    assert issue["code"]["text"] == headline and flag["code"]["text"] == headline
    assert issue["detail"].startswith(headline)
    assert issue["detail"].endswith(f"(azaguard rule infection-hold, mappings {mappings.version})")
    shown = [d["display"] for d in issue["evidence"][0]["detail"]]
    assert "101.8 °F" in shown[0] and "[degF]" not in " ".join(shown) and "Cel" not in issue["detail"]


def test_alerts_already_in_the_chart_are_summarised_even_with_codings_that_are_not_objects() -> None:
    from azaguard.alerts import RULE_SYSTEM, summarise_existing

    issue = {"resourceType": "DetectedIssue", "id": "d1", "status": "final", "identifiedDateTime": "2026-11-01",
             "code": {"text": "Hold", "coding": ["not an object", {"system": RULE_SYSTEM, "code": "vaccination"}]}}
    flag = {"resourceType": "Flag", "id": "f1", "status": "active", "period": {"start": "2026-10-01"},
            "code": {"coding": [7, {"system": "urn:other", "code": "x"}]}}
    (first, second) = summarise_existing([issue], [flag])
    assert (first.reference, first.rule, first.summary) == ("DetectedIssue/d1", "vaccination", "Hold")
    assert (second.reference, second.rule) == ("Flag/f1", None)
