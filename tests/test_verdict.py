"""The verdict: one clinical message from the findings, most urgent first, in a clinician's words."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

import msgspec
import pytest

from azaguard.findings import RULE_IDS, Finding, Severity, Status
from azaguard.mappings import load_mappings
from azaguard.resources import load_json_file
from azaguard.sandbox.demo import try_it
from azaguard.sandbox.patients import EXAMPLES_NOW, build_patients
from azaguard.service import check_resources
from azaguard.verdict import Verdict, build_verdict
from azaguard.wording import Words

M = load_mappings()
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PATIENTS = {p.id: p for p in build_patients(EXAMPLES_NOW)}
RAW_UCUM = re.compile(r"10\*\d|\bCel\b|\[degF\]|\[lb_av\]|\{1\.73_m2\}|\bumol/L|\b10\^\d|x10\^")
FHIR_ID = re.compile(r"\b(?:Patient|Observation|MedicationRequest|MedicationStatement|MedicationDispense|"
                     r"MedicationAdministration|Condition|Immunization|ImmunizationRecommendation|DiagnosticReport|"
                     r"ServiceRequest|DetectedIssue|Flag|Medication)/[A-Za-z0-9\-.]+")
ISO_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def verdict_of(patient_id: str, now: datetime = EXAMPLES_NOW) -> Verdict:
    result = check_resources(load_json_file(EXAMPLES / f"{patient_id}.json"), mappings=M, now=now)
    assert result.verdict is not None
    return result.verdict


@pytest.mark.parametrize(
    ("patient_id", "headline"),
    [
        ("aza-febrile-c", "Hold azathioprine — fever 38.6 °C today 06:00; contact the prescriber."),
        ("aza-febrile-f", "Hold azathioprine — fever 101.8 °F today 06:00; contact the prescriber."),
        ("aza-mmr-due", "Do not give the MMR vaccine (live) — the patient is on azathioprine; discuss with the "
                        "prescriber."),
        ("aza-stopped", "Do not give the MMR vaccine (live) — azathioprine stopped less than 3 months ago; "
                        "discuss with the prescriber."),
        ("aza-leukopenic", "Hold azathioprine — WBC 2.9 ×10⁹/L on 22 Oct 2026, 10 days ago, below 3.5 ×10⁹/L; "
                           "discuss with the specialist."),
        ("aza-no-weight", "Cannot check the dose — needs a recent body weight (none on file)."),
        ("aza-stable", "No action needed — all 10 checks passed."),
        ("aza-not-on", "No checks apply — not on azathioprine now or in the last 3 months."),
    ],
)
def test_the_verdict_names_verb_object_and_reason(patient_id: str, headline: str) -> None:
    assert verdict_of(patient_id).headline == headline


def test_actions_are_most_urgent_first_and_ok_rules_are_passed() -> None:
    v = verdict_of("aza-leukopenic")
    assert v.status is Status.HOLD and v.tone == "red" and v.words == "Hold"
    assert [a.status for a in v.actions] == sorted((a.status for a in v.actions), key=lambda s: s != Status.HOLD)
    assert v.actions[0].verb == "Hold" and v.actions[0].object == "azathioprine"
    assert {r.rule for r in v.passed} == set(RULE_IDS) - {"blood-counts"}
    assert [r.rule for r in v.rules] == list(RULE_IDS)


def test_hold_then_cannot_evaluate_then_caution() -> None:
    def finding(rule: str, status: Status, severity: Severity = Severity.MODERATE) -> Finding:
        return Finding(rule=rule, code="x", status=status, severity=severity,
                       missing=("a recent body weight",) if status is Status.CANNOT_EVALUATE else (),
                       mappings_version="t")  # type: ignore[arg-type]

    findings = [finding("dose", Status.CAUTION), finding("tpmt", Status.CANNOT_EVALUATE),
                finding("liver", Status.HOLD, Severity.HIGH), finding("kidney", Status.OK)]
    v = build_verdict(findings, None, EXAMPLES_NOW, M)
    assert [a.status for a in v.actions] == [Status.HOLD, Status.CANNOT_EVALUATE, Status.CAUTION]
    assert v.actions[1].summary == "Cannot check TPMT status — needs a recent body weight."
    assert v.basis == "Checked 1 Nov 2026 12:00."


def test_the_basis_says_when_and_on_what_data() -> None:
    v = verdict_of("aza-stable")
    assert v.basis.startswith("Checked 1 Nov 2026 12:00 on 36 results, 1 medication order")
    assert "latest result today 06:00" in v.basis


def test_chart_text_uses_absolute_dates() -> None:
    result = check_resources(load_json_file(EXAMPLES / "aza-febrile-c.json"), mappings=M, now=EXAMPLES_NOW)
    v = build_verdict(result.findings, result.record, EXAMPLES_NOW, M, relative_dates=False)
    assert v.headline == "Hold azathioprine — fever 38.6 °C 1 Nov 2026 06:00; contact the prescriber."


@pytest.mark.parametrize("days_later", [0, 29])
def test_every_clinician_text_over_every_example_keeps_the_wording_rules(days_later: int) -> None:
    """What clinicians read (headline, actions, details, evidence, to-dos, rule lines) on every example."""
    now = EXAMPLES_NOW + timedelta(days=days_later)
    problems = []
    for patient_id in PATIENTS:
        v = verdict_of(patient_id, now)
        texts = [v.headline, v.basis, *(r.summary for r in v.rules)]
        for a in v.actions:
            texts += [a.summary, a.detail, *a.todo, *(f"{e.what} {e.value} {e.date}" for e in a.evidence)]
            if len(a.summary) >= 140 or not a.summary.endswith("."):
                problems.append(f"{patient_id}: summary not one sentence under 140: {a.summary!r}")
        for text in texts:
            for pattern, what in ((RAW_UCUM, "raw UCUM"), (FHIR_ID, "FHIR id"), (ISO_DATE, "ISO date")):
                if pattern.search(text):
                    problems.append(f"{patient_id}: {what} in {text!r}")
            for word in ("clinical-rules", "(moderate)", "(high)", "(critical)", ".md"):
                if word in text:
                    problems.append(f"{patient_id}: {word!r} in {text!r}")
    assert not problems, "\n".join(problems)


def test_demo_prints_a_ready_to_run_check_for_a_patient_with_a_hold() -> None:
    results = [check_resources(load_json_file(EXAMPLES / f"{p}.json"), mappings=M, now=EXAMPLES_NOW)
               for p in ("aza-stable", "aza-no-weight", "aza-mmr-due")]
    text = try_it("http://127.0.0.1:8401/fhir", results)
    assert text.endswith("azaguard check --fhir-url http://127.0.0.1:8401/fhir --patient aza-mmr-due")


def test_verdict_is_pure_and_serialisable() -> None:
    v1, v2 = verdict_of("aza-allopurinol"), verdict_of("aza-allopurinol")
    assert v1 == v2
    assert msgspec.json.decode(msgspec.json.encode(v1), type=Verdict) == v1


@pytest.mark.parametrize("days_later", [0, 29, 100])
def test_every_finding_the_rules_write_keeps_the_wording_rules(days_later: int) -> None:
    """Every finding in words (each rule's line and explanation, as the JSON report carries them) and the facts
    the rules name for people, on every example: no raw UCUM codes, echoes, project files, severities in
    parentheses, cut words, unfilled placeholders or FHIR ids; lines under 140 characters."""
    now = EXAMPLES_NOW + timedelta(days=days_later)
    said = Words(now, M, None, "absolute")
    problems = []
    for patient_id in PATIENTS:
        result = check_resources(load_json_file(EXAMPLES / f"{patient_id}.json"), mappings=M, now=now)
        for f in result.findings:
            line, detail = said.line(f), said.detail(f)
            texts = (("summary", line), ("detail", detail), *(("missing", x) for x in f.missing),
                     *(("fact", x) for x in (f.subject, f.reason, f.advice, *f.checked) if x),
                     *(("evidence", e.description) for e in f.evidence))
            if not line.strip(" .") or not detail.strip(" .") or "{" in line + detail or "None" in line + detail:
                problems.append(f"{patient_id} {f.rule}/{f.code}: unfilled words {line!r} / {detail!r}")
            for field, text in texts:
                if RAW_UCUM.search(text):
                    problems.append(f"{patient_id} {f.rule}/{f.code} {field}: raw UCUM in {text!r}")
                for word in ("clinical-rules", "(moderate)", "(high)", "(critical)", "(= ", "...", ".md"):
                    if word in text:
                        problems.append(f"{patient_id} {f.rule}/{f.code} {field}: {word!r} in {text!r}")
                if FHIR_ID.search(text) or ISO_DATE.search(text):
                    problems.append(f"{patient_id} {f.rule}/{f.code} {field}: FHIR id or ISO date in {text!r}")
            if len(line) >= 140:
                problems.append(f"{patient_id} {f.rule}/{f.code}: summary of {len(line)} characters")
    assert not problems, "\n".join(problems)
