"""Symptom check-ins gathered from the real local FHIR server (sekmet-fhir): only this patient's, in one
counted search, and the Questionnaire they follow fetched by its canonical URL when only the server holds it
(issue 17). Each test loads its own patients with fixed ids (PUT), as test_gather_server does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from azaguard.fhir import FhirClient, gather
from azaguard.mappings import Mappings, load_mappings
from azaguard.service import check_on_server
from tests.fhir.serverdata import loaded
from tests.recordparts import aza_order

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PID, OTHER = "i17-qr-1", "i17-qr-2"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
URL = "https://clinic.example/Questionnaire/i17-symptom-checklist"
MISSING_URL = "https://clinic.example/Questionnaire/i17-not-on-this-server"
Res = dict[str, Any]


def _obs(oid: str, pid: str, code: str, value: float, unit: str, when: str) -> Res:
    return {"resourceType": "Observation", "id": oid, "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
            "subject": {"reference": f"Patient/{pid}"}, "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}


def _checkin(qid: str, pid: str, canonical: str, authored: str) -> Res:
    """Answers by linkId only: what item 1 asks (a sore throat) is coded in the Questionnaire alone."""
    return {"resourceType": "QuestionnaireResponse", "id": qid, "status": "completed",
            "questionnaire": canonical, "subject": {"reference": f"Patient/{pid}"}, "authored": authored,
            "item": [{"linkId": "1", "answer": [{"valueBoolean": True}]},
                     {"linkId": "2", "answer": [{"valueBoolean": False}]}]}


def resources() -> list[Res]:
    out: list[Res] = [
        {"resourceType": "Questionnaire", "id": "i17-checklist", "url": URL, "version": "2", "status": "active",
         "item": [{"linkId": "1", "type": "boolean", "text": "Item 1",
                   "code": [{"system": SNOMED, "code": "162397003", "display": "Pain in throat"}]},
                  {"linkId": "2", "type": "boolean", "text": "Item 2",
                   "code": [{"system": SNOMED, "code": "49727002", "display": "Cough"}]}]},
    ]
    for pid in (PID, OTHER):
        out += [
            {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01"},
            aza_order(f"{pid}-aza", pid, "2026-01-01", dosageInstruction=[{"text": "50 mg twice daily"}]),
            _obs(f"{pid}-temp", pid, "8310-5", 36.8, "Cel", "2026-11-20T06:00:00Z"),
            _obs(f"{pid}-neut", pid, "751-8", 4.0, "10*9/L", "2026-11-18T08:00:00Z"),
        ]
    out += [
        _checkin(f"{PID}-checkin", PID, f"{URL}|2", "2026-11-19T10:00:00Z"),
        # Another patient's check-ins, recent and old: never this patient's data.
        _checkin(f"{OTHER}-checkin", OTHER, URL, "2026-11-19T11:00:00Z"),
        _checkin(f"{OTHER}-old", OTHER, URL, "2026-01-19T11:00:00Z"),
    ]
    return out


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


@pytest.fixture
def client(fhir_server: Any) -> Iterator[FhirClient]:
    with loaded(fhir_server, resources()) as c:
        yield c


def _ids(got: Any, rtype: str) -> set[str]:
    return {r["id"] for r in got.resources.of_type(rtype)}


def test_only_this_patients_checkins_and_no_warning(client: FhirClient, mappings: Mappings) -> None:
    got = gather(client, PID, mappings, NOW)
    assert _ids(got, "QuestionnaireResponse") == {f"{PID}-checkin"}
    assert not [w for w in got.warnings if "check-in" in w or "QuestionnaireResponse" in w], got.warnings


def test_the_questionnaire_held_only_on_the_server_is_fetched_by_its_canonical_url(
    client: FhirClient, mappings: Mappings
) -> None:
    got = gather(client, PID, mappings, NOW)
    assert _ids(got, "Questionnaire") == {"i17-checklist"}
    result = check_on_server(client, PID, mappings=mappings, now=NOW)
    infection = [f for f in result.findings if f.rule == "infection-hold"]
    assert (str(infection[0].status), infection[0].code) == ("caution", "warning-signs")
    described = " ".join(e.description for e in infection[0].evidence)
    assert "SNOMED CT 162397003" in described  # the item's code, from the server's Questionnaire
    assert "49727002" not in described  # the cough item was answered no


def test_a_questionnaire_not_on_the_server_is_said_and_the_items_fall_back_to_their_text(
    client: FhirClient, mappings: Mappings
) -> None:
    client.update(_checkin(f"{PID}-checkin", PID, MISSING_URL, "2026-11-19T10:00:00Z"))
    try:
        got = gather(client, PID, mappings, NOW)
        assert [w for w in got.warnings if MISSING_URL in w and "not on the server" in w]
        assert not list(got.resources.of_type("Questionnaire"))
        assert [(u.reference, u.referenced_by, u.reason) for u in got.unfetched] == [
            (MISSING_URL, f"QuestionnaireResponse/{PID}-checkin", "not-found")]
    finally:
        client.update(_checkin(f"{PID}-checkin", PID, f"{URL}|2", "2026-11-19T10:00:00Z"))


def test_the_sandbox_server_advertises_the_checkin_search_parameters(client: FhirClient) -> None:
    cap = httpx.get(f"{client.base_url}/metadata", trust_env=False).json()
    params = {r["type"]: {p["name"] for p in r.get("searchParam", [])} for r in cap["rest"][0]["resource"]}
    assert {"subject", "patient", "authored"} <= params["QuestionnaireResponse"]
    assert "url" in params["Questionnaire"]
