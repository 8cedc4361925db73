"""Resources several test modules build alike: a Patient (joined to others by Patient.link), an azathioprine order
and a WBC result. The server tests (tests/fhir) load them into sekmet; the scan tests write them as NDJSON."""

from __future__ import annotations

from typing import Any

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def patient(pid: str, *links: tuple[str, str], active: bool = True) -> dict[str, Any]:
    """A Patient; each link (type, other id) names another Patient record of the same person."""
    r: dict[str, Any] = {"resourceType": "Patient", "id": pid, "active": active, "birthDate": "1970-01-01",
                         "gender": "female"}
    if links:
        r["link"] = [{"other": {"reference": f"Patient/{other}"}, "type": kind} for kind, other in links]
    return r


def aza_order(rid: str, pid: str, authored: str, **more: Any) -> dict[str, Any]:
    """An active azathioprine 50 mg tablet order (RxNorm 197388); `more` adds elements (a dosageInstruction)."""
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{pid}"}, "authoredOn": authored,
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197388",
                                                      "display": "azathioprine 50 MG Oral Tablet"}]}, **more}


def wbc(rid: str, pid: str, value: float, when: str) -> dict[str, Any]:
    """A laboratory WBC count (LOINC 6690-2) in 10*3/uL."""
    return {"resourceType": "Observation", "id": rid, "status": "final", "subject": {"reference": f"Patient/{pid}"},
            "category": [{"coding": [{"system": CATEGORY, "code": "laboratory"}]}],
            "code": {"coding": [{"system": LOINC, "code": "6690-2"}]}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}}
