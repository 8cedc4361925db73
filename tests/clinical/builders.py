"""Small builders for readable clinical scenarios: FHIR R4 resource dicts in a few words.

Every scenario evaluates at NOW unless it says otherwise; dates are given as
offsets from it ("days_ago=3") so the windows read plainly.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from azaguard.findings import Finding
from azaguard.mappings import load_mappings
from azaguard.record import PatientRecord, build_record
from azaguard.resources import ResourceSet
from azaguard.rules import evaluate

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CVX = "http://hl7.org/fhir/sid/cvx"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
PATIENT_REF = "Patient/p1"

_ids = itertools.count(1)
Resource = dict[str, Any]


def when(days_ago: float = 0, hours_ago: float = 0) -> str:
    return (NOW - timedelta(days=days_ago, hours=hours_ago)).isoformat()


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


def patient(pid: str = "p1", birth_date: str = "1980-05-01") -> Resource:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": ["Test"], "family": "Patient"}],
        "gender": "female",
        "birthDate": birth_date,
    }


def medication_request(
    code: str | None = "197388",
    *,
    system: str = RXNORM,
    display: str | None = "azathioprine 50 MG Oral Tablet",
    text: str | None = None,
    status: str = "active",
    started_days_ago: float | None = 200,
    ended_days_ago: float | None = None,
    dose_mg: float | None = 50,
    dose_unit: str = "mg",
    per_day: int | None = 2,
    rid: str | None = None,
    medication_reference: str | None = None,
) -> Resource:
    """A MedicationRequest; azathioprine 50 mg twice daily by default."""
    r: Resource = {
        "resourceType": "MedicationRequest",
        "id": rid or _id("mr"),
        "status": status,
        "intent": "order",
        "subject": {"reference": PATIENT_REF},
    }
    if medication_reference:
        r["medicationReference"] = {"reference": medication_reference}
    else:
        cc: Resource = {}
        if code:
            coding: Resource = {"system": system, "code": code}
            if display:
                coding["display"] = display
            cc["coding"] = [coding]
        if text:
            cc["text"] = text
        r["medicationCodeableConcept"] = cc
    if started_days_ago is not None:
        r["authoredOn"] = when(started_days_ago)
    if ended_days_ago is not None:
        r["dispenseRequest"] = {"validityPeriod": {"start": when(started_days_ago or 400), "end": when(ended_days_ago)}}
    if dose_mg is not None:
        dosage: Resource = {
            "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": dose_unit, "system": UCUM, "code": dose_unit}}]
        }
        if per_day is not None:
            dosage["timing"] = {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d"}}
        r["dosageInstruction"] = [dosage]
    return r


def azathioprine(**kw: Any) -> Resource:
    return medication_request(**kw)


def drug(code: str, display: str, **kw: Any) -> Resource:
    """Another drug order (antibiotic, allopurinol, ...), no dose by default."""
    kw.setdefault("dose_mg", None)
    kw.setdefault("started_days_ago", 2)
    return medication_request(code, display=display, **kw)


def medication(
    code: str = "197388", display: str = "azathioprine 50 MG Oral Tablet", mid: str | None = None
) -> Resource:
    return {
        "resourceType": "Medication",
        "id": mid or _id("med"),
        "code": {"coding": [{"system": RXNORM, "code": code, "display": display}]},
    }


def observation(
    loinc: str,
    value: float | None,
    unit: str | None = None,
    *,
    days_ago: float = 1,
    hours_ago: float = 0,
    status: str = "final",
    comparator: str | None = None,
    unit_text: str | None = None,
    system: str | None = UCUM,
    rid: str | None = None,
) -> Resource:
    r: Resource = {
        "resourceType": "Observation",
        "id": rid or _id("obs"),
        "status": status,
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(days_ago, hours_ago),
    }
    if value is not None:
        q: Resource = {"value": value}
        if unit is not None:
            q["code"] = unit
            if system:
                q["system"] = system
        if unit_text is not None:
            q["unit"] = unit_text
        elif unit is not None:
            q["unit"] = unit
        if comparator:
            q["comparator"] = comparator
        r["valueQuantity"] = q
    return r


def coded_observation(loinc: str, answer_code: str, answer_display: str, *, days_ago: float = 30) -> Resource:
    return {
        "resourceType": "Observation",
        "id": _id("obs"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(days_ago),
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": answer_code, "display": answer_display}]},
    }


def immunization(cvx: str, *, days_ago: float = 10, status: str = "completed", text: str | None = None) -> Resource:
    return {
        "resourceType": "Immunization",
        "id": _id("imm"),
        "status": status,
        "vaccineCode": {"coding": [{"system": CVX, "code": cvx}], **({"text": text} if text else {})},
        "patient": {"reference": PATIENT_REF},
        "occurrenceDateTime": when(days_ago),
    }


def recommendation(
    cvx: str | None, *, forecast: str = "due", text: str | None = None, due_in_days: float = 7
) -> Resource:
    vaccine: Resource = {}
    if cvx:
        vaccine["coding"] = [{"system": CVX, "code": cvx}]
    if text:
        vaccine["text"] = text
    return {
        "resourceType": "ImmunizationRecommendation",
        "id": _id("rec"),
        "patient": {"reference": PATIENT_REF},
        "date": when(0),
        "recommendation": [
            {
                "vaccineCode": [vaccine],
                "forecastStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
                            "code": forecast,
                        }
                    ]
                },
                "dateCriterion": [
                    {"code": {"coding": [{"system": LOINC, "code": "30980-7"}]}, "value": when(-due_in_days)}
                ],
            }
        ],
    }


def vaccine_order(cvx: str, *, resource: str = "MedicationRequest", status: str = "active") -> Resource:
    cc = {"coding": [{"system": CVX, "code": cvx}]}
    if resource == "ServiceRequest":
        return {
            "resourceType": "ServiceRequest",
            "id": _id("sr"),
            "status": status,
            "intent": "order",
            "code": cc,
            "subject": {"reference": PATIENT_REF},
            "authoredOn": when(0),
        }
    return {
        "resourceType": "MedicationRequest",
        "id": _id("mr"),
        "status": status,
        "intent": "order",
        "medicationCodeableConcept": cc,
        "subject": {"reference": PATIENT_REF},
        "authoredOn": when(0),
    }


def condition(
    code: str,
    display: str = "",
    *,
    system: str = SNOMED,
    clinical: str = "active",
    verification: str | None = "confirmed",
    days_ago: float = 2,
) -> Resource:
    r: Resource = {
        "resourceType": "Condition",
        "id": _id("cond"),
        "clinicalStatus": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]
        },
        "code": {"coding": [{"system": system, "code": code, "display": display}], "text": display or None},
        "subject": {"reference": PATIENT_REF},
        "onsetDateTime": when(days_ago),
    }
    if not display:
        del r["code"]["text"]
    if verification:
        r["verificationStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": verification}]
        }
    return r


def record_of(*resources: Resource, ordering_context: bool = False) -> PatientRecord:
    rs = ResourceSet.from_resources([patient(), *resources])
    return build_record(rs, load_mappings(), ordering_context=ordering_context)


def findings(*resources: Resource, now: datetime = NOW, ordering_context: bool = False) -> list[Finding]:
    return evaluate(record_of(*resources, ordering_context=ordering_context), load_mappings(), now)


def for_rule(rule_id: str, *resources: Resource, now: datetime = NOW) -> list[Finding]:
    return [f for f in findings(*resources, now=now) if f.rule == rule_id]


def status_of(rule_id: str, *resources: Resource, now: datetime = NOW) -> str:
    """The rule's headline status: its most urgent finding (findings are sorted)."""
    return str(for_rule(rule_id, *resources, now=now)[0].status)


# --- added for issue 7 (trust, infections as coded, pharmacogenomics) -------------------------------

WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10CM_OID = "urn:oid:2.16.840.1.113883.6.90"


def diagnosis(
    code: str,
    display: str = "",
    *,
    system: str = ICD10,
    clinical: str | None = "active",
    recorded_days_ago: float | None = 2,
    onset_days_ago: float | None = None,
    text: str | None = None,
    subject: str = PATIENT_REF,
) -> Resource:
    """A Condition as EHRs send it: ICD coded, with or without clinicalStatus (an encounter diagnosis)."""
    cc: Resource = {"coding": [{"system": system, "code": code, **({"display": display} if display else {})}]}
    if text:
        cc["text"] = text
    r: Resource = {"resourceType": "Condition", "id": _id("dx"), "code": cc, "subject": {"reference": subject}}
    if clinical is not None:
        r["clinicalStatus"] = {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": clinical}]
        }
    if recorded_days_ago is not None:
        r["recordedDate"] = when(recorded_days_ago)
    if onset_days_ago is not None:
        r["onsetDateTime"] = when(onset_days_ago)
    return r


def named_condition(text: str, *, clinical: str = "active") -> Resource:
    """A Condition known only by its text (no code)."""
    r = diagnosis("x", clinical=clinical)
    r["code"] = {"text": text}
    return r


def person(pid: str = "p1", *, gender: str | None = "female", birth_date: str | None = "1980-05-01") -> Resource:
    r: Resource = {"resourceType": "Patient", "id": pid}
    if gender:
        r["gender"] = gender
    if birth_date:
        r["birthDate"] = birth_date
    return r


def findings_for(patient_resource: Resource | None, *resources: Resource, now: datetime = NOW) -> list[Finding]:
    """Every rule's findings for a record with this Patient (or none)."""
    head = [patient_resource] if patient_resource else []
    m = load_mappings()
    return evaluate(build_record(ResourceSet.from_resources([*head, *resources]), m), m, now)


def pgx_result(
    loinc: str,
    *,
    gene: str | None = None,
    answer: tuple[str, str] | None = None,
    text: str | None = None,
    code_text: str | None = None,
    days_ago: float = 30,
) -> Resource:
    """A pharmacogenomic Observation: the gene in a gene-studied component (48018-6, HGNC), answer or text."""
    hgnc = {"TPMT": "HGNC:12014", "NUDT15": "HGNC:23063"}
    r: Resource = {
        "resourceType": "Observation",
        "id": _id("pgx"),
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}], **({"text": code_text} if code_text else {})},
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(days_ago),
    }
    if answer:
        r["valueCodeableConcept"] = {"coding": [{"system": LOINC, "code": answer[0], "display": answer[1]}]}
    if text:
        r["valueString"] = text
    if gene:
        r["component"] = [{
            "code": {"coding": [{"system": LOINC, "code": "48018-6", "display": "Gene studied [ID]"}]},
            "valueCodeableConcept": {"coding": [{"system": "http://www.genenames.org/geneId", "code": hgnc[gene],
                                                 "display": gene}]},
        }]
    return r


# --- issue 7: other medication resources, vaccines however coded ---------------------------

ATC = "http://www.whocc.no/atc"
NDC = "http://hl7.org/fhir/sid/ndc"
CPT = "http://www.ama-assn.org/go/cpt"
DMD = "https://dmd.nhs.uk"
CVX_OID = "urn:oid:2.16.840.1.113883.12.292"


def _med_cc(code: str | None, system: str, display: str | None, text: str | None) -> Resource:
    cc: Resource = {}
    if code:
        coding: Resource = {"system": system, "code": code}
        if display:
            coding["display"] = display
        cc["coding"] = [coding]
    if text:
        cc["text"] = text
    return cc


def medication_statement(
    code: str | None = "197388",
    *,
    system: str = RXNORM,
    display: str | None = "azathioprine 50 MG Oral Tablet",
    text: str | None = None,
    status: str = "active",
    started_days_ago: float | None = 200,
    ended_days_ago: float | None = None,
) -> Resource:
    """A MedicationStatement (the patient says / the chart records that they take it)."""
    r: Resource = {
        "resourceType": "MedicationStatement",
        "id": _id("ms"),
        "status": status,
        "medicationCodeableConcept": _med_cc(code, system, display, text),
        "subject": {"reference": PATIENT_REF},
    }
    if started_days_ago is not None:
        period: Resource = {"start": when(started_days_ago)}
        if ended_days_ago is not None:
            period["end"] = when(ended_days_ago)
        r["effectivePeriod"] = period
    return r


def medication_dispense(
    code: str | None = "197388",
    *,
    system: str = RXNORM,
    display: str | None = "azathioprine 50 MG Oral Tablet",
    text: str | None = None,
    status: str = "completed",
    handed_over_days_ago: float = 10,
    days_supply: float | None = 30,
) -> Resource:
    """A MedicationDispense (the pharmacy handed it over)."""
    r: Resource = {
        "resourceType": "MedicationDispense",
        "id": _id("md"),
        "status": status,
        "medicationCodeableConcept": _med_cc(code, system, display, text),
        "subject": {"reference": PATIENT_REF},
        "whenHandedOver": when(handed_over_days_ago),
    }
    if days_supply is not None:
        r["daysSupply"] = {"value": days_supply, "unit": "day", "system": UCUM, "code": "d"}
    return r


def medication_administration(
    code: str | None = "197388",
    *,
    system: str = RXNORM,
    display: str | None = "azathioprine 50 MG Oral Tablet",
    text: str | None = None,
    status: str = "completed",
    days_ago: float = 0.5,
) -> Resource:
    """A MedicationAdministration (a nurse gave it, e.g. on the ward)."""
    return {
        "resourceType": "MedicationAdministration",
        "id": _id("ma"),
        "status": status,
        "medicationCodeableConcept": _med_cc(code, system, display, text),
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(days_ago),
    }


def coded_vaccine_order(
    code: str | None,
    *,
    system: str = CVX,
    display: str | None = None,
    text: str | None = None,
    resource: str = "MedicationRequest",
    status: str = "active",
) -> Resource:
    """A vaccine order coded in any system (or text only)."""
    r = vaccine_order("00", resource=resource, status=status)
    cc = _med_cc(code, system, display, text)
    if resource == "ServiceRequest":
        r["code"] = cc
    else:
        r["medicationCodeableConcept"] = cc
    return r


def coded_immunization(
    code: str | None, *, system: str = CVX, text: str | None = None, days_ago: float = 10, status: str = "completed"
) -> Resource:
    r = immunization("00", days_ago=days_ago, status=status)
    r["vaccineCode"] = _med_cc(code, system, None, text)
    return r
