"""Builders for issue 17's scenarios: records as EHRs and labs send them (warning signs, lab results, shapes).

Written from the leaflets and guidelines (clinical-rules.md §9) and from how real systems code data, not from
azaguard's mappings: a code here is what a lab or an EHR would send, whether or not azaguard knows it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from azaguard.findings import Finding
from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet, resource_set_from_json
from azaguard.rules import evaluate
from tests.clinical.builders import (
    LOINC,
    NOW,
    PATIENT_REF,
    SNOMED,
    UCUM,
    Resource,
    _id,
    azathioprine,
    for_rule,
    observation,
    when,
)

ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
WHO = "http://hl7.org/fhir/sid/icd-10"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

DETECTED = (SNOMED, "260373001", "Detected")
NOT_DETECTED = (SNOMED, "260415000", "Not detected")
POSITIVE = (SNOMED, "10828004", "Positive")
NEGATIVE = (SNOMED, "260385009", "Negative")
NO_GROWTH = (SNOMED, "264868006", "No growth")
PRESENT = (SNOMED, "52101004", "Present")


def infection(*resources: Resource, now: datetime = NOW) -> list[Finding]:
    """infection-hold's findings for the issue-17 baseline patient plus `resources`: azathioprine 50 mg twice
    daily, temperature 36.8 °C six hours ago, neutrophils 4.0 ×10⁹/L two days ago."""
    return for_rule(
        "infection-hold", azathioprine(), observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6),
        observation("751-8", 4.0, "10*9/L", days_ago=2), *resources, now=now,
    )


def headline(*resources: Resource, now: datetime = NOW) -> tuple[str, str]:
    """The infection rule's first finding (what a clinician sees first): (status, code)."""
    first = infection(*resources, now=now)[0]
    return str(first.status), first.code


def cc(system: str | None, code: str | None, display: str | None = None, text: str | None = None) -> Resource:
    out: Resource = {}
    if code is not None:
        coding: Resource = {"code": code}
        if system:
            coding["system"] = system
        if display:
            coding["display"] = display
        out["coding"] = [coding]
    if text:
        out["text"] = text
    return out


def encounter_diagnosis(
    system: str, code: str, display: str, *, days_ago: float = 1, clinical: str | None = None,
    verification: str | None = None, abated_days_ago: float | None = None,
) -> Resource:
    """A Condition as an encounter diagnosis or a problem-list entry (clinicalStatus optional)."""
    r: Resource = {
        "resourceType": "Condition", "id": _id("sx"),
        "category": [cc(CONDITION_CATEGORY, "encounter-diagnosis" if clinical is None else "problem-list-item")],
        "code": cc(system, code, display), "subject": {"reference": PATIENT_REF},
        "recordedDate": when(days_ago),
    }
    if clinical is not None:
        r["clinicalStatus"] = cc(CLINICAL, clinical)
        r["onsetDateTime"] = when(days_ago)
    if verification is not None:
        r["verificationStatus"] = cc(VERIFICATION, verification)
    if abated_days_ago is not None:
        r["abatementDateTime"] = when(abated_days_ago)
    return r


def symptom_observation(
    code: Resource, *, value: Any = None, days_ago: float = 1, category: str = "exam",
) -> Resource:
    """A nursing/symptom assessment Observation: `value` a CodeableConcept dict, a bool or a string."""
    r: Resource = {
        "resourceType": "Observation", "id": _id("sxo"), "status": "final",
        "category": [cc(OBS_CATEGORY, category)], "code": code,
        "subject": {"reference": PATIENT_REF}, "effectiveDateTime": when(days_ago),
    }
    if isinstance(value, bool):
        r["valueBoolean"] = value
    elif isinstance(value, str):
        r["valueString"] = value
    elif isinstance(value, dict):
        r["valueCodeableConcept"] = value
    return r


def questionnaire_response(
    items: list[Resource], *, days_ago: float = 1, questionnaire: str | None = None,
    contained: list[Resource] | None = None, status: str = "completed",
) -> Resource:
    r: Resource = {
        "resourceType": "QuestionnaireResponse", "id": _id("qr"), "status": status,
        "subject": {"reference": PATIENT_REF}, "authored": when(days_ago), "item": items,
    }
    if questionnaire:
        r["questionnaire"] = questionnaire
    if contained:
        r["contained"] = contained
    return r


def yes_no(link_id: str, text: str | None, answer: bool) -> Resource:
    item: Resource = {"linkId": link_id, "answer": [{"valueBoolean": answer}]}
    if text:
        item["text"] = text
    return item


def lab(
    code: Resource, *, value: Any = None, unit: str | None = None, comparator: str | None = None,
    days_ago: float = 1, interpretation: str | None = None, low: float | None = None, high: float | None = None,
    range_text: str | None = None, status: str = "final", rid: str | None = None, specimen_time: str | None = None,
) -> Resource:
    """A laboratory Observation: numeric (value + unit), coded (value a (system, code, display) tuple) or text."""
    r: Resource = {
        "resourceType": "Observation", "id": rid or _id("lab"), "status": status,
        "category": [cc(OBS_CATEGORY, "laboratory")], "code": code,
        "subject": {"reference": PATIENT_REF}, "effectiveDateTime": specimen_time or when(days_ago),
    }
    if isinstance(value, tuple):
        r["valueCodeableConcept"] = cc(*value)
    elif isinstance(value, str):
        r["valueString"] = value
    elif value is not None:
        q: Resource = {"value": value}
        if unit:
            q.update({"unit": unit, "system": UCUM, "code": unit})
        if comparator:
            q["comparator"] = comparator
        r["valueQuantity"] = q
    if interpretation:
        r["interpretation"] = [cc(INTERPRETATION, interpretation)]
    if low is not None or high is not None or range_text:
        rr: Resource = {}
        if low is not None:
            rr["low"] = {"value": low, **({"unit": unit, "system": UCUM, "code": unit} if unit else {})}
        if high is not None:
            rr["high"] = {"value": high, **({"unit": unit, "system": UCUM, "code": unit} if unit else {})}
        if range_text:
            rr["text"] = range_text
        r["referenceRange"] = [rr]
    return r


def loinc(code: str, display: str | None = None) -> Resource:
    return cc(LOINC, code, display)


def local(code: str, display: str) -> Resource:
    """A lab-local code: the analyte only in its display."""
    return cc("http://acme-lab.example.org/codes", code, display)


def bundle_findings(bundle: Resource, now: datetime = NOW) -> list[Finding]:
    m = load_mappings()
    return evaluate(build_record(resource_set_from_json(bundle), m), m, now)


def findings_with(patient: Resource, *resources: Resource, now: datetime = NOW) -> list[Finding]:
    m = load_mappings()
    return evaluate(build_record(ResourceSet.from_resources([patient, *resources]), m), m, now)
