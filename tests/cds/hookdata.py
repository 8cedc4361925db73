"""Hook request bodies built from clinical scenario resources (tests/clinical/builders)."""

from __future__ import annotations

import uuid
from typing import Any

from azaguard.cds.discovery import prefetch_templates
from azaguard.mappings import load_mappings

Resource = dict[str, Any]
_KEY_TYPES = {
    "medicationOrders": ("MedicationRequest", "Medication"),
    "observations": ("Observation",),
    "conditions": ("Condition",),
    "immunizations": ("Immunization",),
    "immunizationRecommendations": ("ImmunizationRecommendation",),
    "serviceRequests": ("ServiceRequest",),
    "medicationStatements": ("MedicationStatement",),
    "medicationDispenses": ("MedicationDispense",),
    "medicationAdministrations": ("MedicationAdministration",),
}


def searchset(resources: list[Resource]) -> Resource:
    return {"resourceType": "Bundle", "type": "searchset", "total": len(resources),
            "entry": [{"fullUrl": f"http://ehr.example.org/fhir/{r['resourceType']}/{r.get('id')}", "resource": r}
                      for r in resources]}


def full_prefetch(resources: list[Resource], *, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """Every prefetch key filled from `resources` (null when a search would find nothing)."""
    keys = prefetch_templates(load_mappings())
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    out: dict[str, Any] = {"patient": patient}
    for key in keys:
        if key == "patient":
            continue
        types = _KEY_TYPES.get(key, ("Observation",))
        found = [r for r in resources if r["resourceType"] in types and _fits(r, keys[key])]
        out[key] = searchset(found) if found else None
    for key in leave_out:
        out.pop(key, None)
    return out


def _fits(resource: Resource, template: str) -> bool:
    """An Observation goes to the key whose template names its LOINC code."""
    if resource["resourceType"] != "Observation":
        return True
    codes = [c.get("code") for c in resource.get("code", {}).get("coding", [])]
    return any(f"|{c}," in template + "," or f"|{c}&" in template for c in codes)


def body(hook: str, resources: list[Resource], *, drafts: list[Resource] | None = None,
         selections: list[str] | None = None, prefetch: dict[str, Any] | None = None,
         patient_id: str = "p1", **extra: Any) -> dict[str, Any]:
    context: dict[str, Any] = {"userId": "Practitioner/example", "patientId": patient_id}
    if drafts is not None:
        context["draftOrders"] = {"resourceType": "Bundle", "type": "collection",
                                  "entry": [{"resource": d} for d in drafts]}
    if selections is not None:
        context["selections"] = selections
    out = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context,
           "prefetch": full_prefetch(resources) if prefetch is None else prefetch}
    out.update(extra)
    return out


def draft_vaccine(cvx: str | None, display: str, *, rid: str = "draft-vax", resource: str = "MedicationRequest",
                  system: str = "http://hl7.org/fhir/sid/cvx") -> Resource:
    cc: Resource = {"text": display}
    if cvx is not None:
        cc["coding"] = [{"system": system, "code": cvx, "display": display}]
    base: Resource = {"resourceType": resource, "id": rid, "subject": {"reference": "Patient/p1"}}
    if resource == "MedicationRequest":
        return {**base, "status": "draft", "intent": "order", "medicationCodeableConcept": cc}
    if resource == "ServiceRequest":
        return {**base, "status": "draft", "intent": "order", "code": cc}
    return {"resourceType": "Immunization", "id": rid, "status": "completed", "vaccineCode": cc,
            "patient": {"reference": "Patient/p1"}, "occurrenceDateTime": "2026-11-01"}


def draft_azathioprine(rid: str = "draft-aza", dose_mg: float = 50) -> Resource:
    return {
        "resourceType": "MedicationRequest", "id": rid, "status": "draft", "intent": "order",
        "subject": {"reference": "Patient/p1"},
        "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                  "code": "197388", "display": "azathioprine 50 MG Oral Tablet"}]},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": dose_mg, "unit": "mg",
                                                                 "system": "http://unitsofmeasure.org",
                                                                 "code": "mg"}}]}],
    }


def retarget(resource: Resource, patient_id: str) -> Resource:
    """A builders resource (Patient/p1) moved to another patient."""
    import json

    return dict(json.loads(json.dumps(resource).replace('"Patient/p1"', f'"Patient/{patient_id}"')))


def sandbox_chart(patient_id: str, *, without_azathioprine: bool = False) -> list[Resource]:
    """A synthetic sandbox patient's resources (as of builders.NOW)."""
    from azaguard.sandbox.patients import build_patients
    from tests.clinical.builders import NOW

    patient = next(p for p in build_patients(NOW) if p.id == patient_id)
    resources = [dict(r) for r in patient.resources]
    if without_azathioprine:
        resources = [r for r in resources if not (r["resourceType"] == "MedicationRequest"
                                                  and "azathioprine" in str(r.get("medicationCodeableConcept")))]
    return resources
