"""A CDS Hooks call for a merged patient (Patient.link) against the real local FHIR server (sekmet-fhir): the prefetch
is templated on the launched id only, so the data filed under the linked id is fetched with fhirAuthorization; without
a way to fetch it no check can clear (the note says why) — never "not on azathioprine"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from azaguard.fhir.client import FhirClient
from tests.cds.conftest import Caller
from tests.cds.hookdata import body, full_prefetch
from tests.clinical.builders import NOW

pytestmark = pytest.mark.integration

NEW, OLD = "cdslink-new", "cdslink-old"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def _patient(pid: str, kind: str, other: str, *, active: bool = True) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": pid, "active": active, "gender": "female", "birthDate": "1970-01-01",
            "link": [{"other": {"reference": f"Patient/{other}"}, "type": kind}]}


def _chart() -> list[dict[str, Any]]:
    """The surviving record with a low WBC; the azathioprine order is filed under the merged (old) id."""
    return [_patient(NEW, "replaces", OLD),
            {"resourceType": "Observation", "id": "cdslink-wbc", "status": "final",
             "subject": {"reference": f"Patient/{NEW}"},
             "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]},
             "effectiveDateTime": (NOW - timedelta(days=1)).isoformat(),
             "valueQuantity": {"value": 1.9, "unit": "10*3/uL", "system": "http://unitsofmeasure.org",
                               "code": "10*3/uL"}}]


@pytest.fixture(scope="module")
def fhir_base(fhir_server: Any) -> Iterator[str]:
    old = [_patient(OLD, "replaced-by", NEW, active=False),
           {"resourceType": "MedicationRequest", "id": "cdslink-aza", "status": "active", "intent": "order",
            "subject": {"reference": f"Patient/{OLD}"}, "authoredOn": (NOW - timedelta(days=200)).isoformat(),
            "medicationCodeableConcept": {"coding": [{"system": RX, "code": "197388",
                                                      "display": "azathioprine 50 MG Oral Tablet"}]}}]
    with FhirClient(fhir_server.base_url) as client:
        client.transaction([{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                            for r in [*_chart(), *old]])
    yield fhir_server.base_url


def _auth(base: str) -> dict[str, Any]:
    return {"fhirServer": base, "fhirAuthorization": {
        "access_token": "opaque-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "azaguard"}}


def test_a_full_prefetch_of_a_merged_patient_fetches_the_linked_record(call: Caller, fhir_base: str) -> None:
    chart = _chart()
    response = call("azaguard-patient-view", body("patient-view", chart, patient_id=NEW,
                                                  prefetch=full_prefetch(chart), **_auth(fhir_base)))
    assert response.status_code == 200, response.text
    cards = response.json()["cards"]
    assert any(c["indicator"] == "critical" and "WBC" in c["summary"] for c in cards), cards


def test_without_fhir_server_no_check_clears_and_the_card_says_why(call: Caller, fhir_base: str) -> None:
    chart = _chart()
    response = call("azaguard-patient-view", body("patient-view", chart, patient_id=NEW,
                                                  prefetch=full_prefetch(chart)))
    assert response.status_code == 200, response.text
    text = str(response.json()["cards"])
    assert "Patient.link" in text and OLD in text
