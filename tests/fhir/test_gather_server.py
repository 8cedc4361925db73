"""FhirClient and gather() against the real local FHIR server (sekmet-fhir, `fhir_server` fixture).

Each test loads its own small patients (PUT with fixed ids, so loading again changes nothing)
and never resets the server, so it does not disturb other tests sharing the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.fhir import FhirClient, FhirConflict, FhirNotFound, FhirRejected, gather
from azaguard.fhir.memory import ServerMemory
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.service import check_on_server
from tests.fhir.serverdata import loaded

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PID = "h3-gather-1"
OTHER = "h3-gather-2"
Res = dict[str, Any]
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"


def lab(oid: str, code: str, value: float, unit: str, day: str, pid: str = PID) -> Res:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "laboratory",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": f"{day}T08:00:00Z",
        "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
    }


def record_resources() -> list[Res]:
    """One patient on azathioprine (Medication by reference), labs, TPMT, a condition, vaccines; and a
    second patient whose data must never appear in the first one's record."""
    return [
        {"resourceType": "Patient", "id": PID, "birthDate": "1968-04-02", "gender": "female"},
        {"resourceType": "Patient", "id": OTHER, "birthDate": "1980-01-01"},
        {
            "resourceType": "Medication",
            "id": "h3-aza-50",
            "code": {"coding": [{"system": RXNORM, "code": "197388", "display": "azathioprine 50 MG Oral Tablet"}]},
        },
        {
            "resourceType": "MedicationRequest",
            "id": "h3-mr-aza",
            "status": "active",
            "intent": "order",
            "subject": {"reference": f"Patient/{PID}"},
            "medicationReference": {"reference": "Medication/h3-aza-50"},
            "authoredOn": "2026-05-01",
            "dosageInstruction": [{"text": "100 mg daily"}],
        },
        *(lab(f"h3-wbc-{i}", "6690-2", 5.0 + i / 10, "10*9/L", f"2026-{6 + i:02d}-01") for i in range(5)),
        {
            "resourceType": "Observation",
            "id": "h3-tpmt",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "79713-4"}]},
            "subject": {"reference": f"Patient/{PID}"},
            "effectiveDateTime": "2019-03-01",
            "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA25391-6"}]},
        },
        {
            "resourceType": "Observation",
            "id": "h3-old-wbc",  # outside the lookback window: not fetched
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]},
            "subject": {"reference": f"Patient/{PID}"},
            "effectiveDateTime": "2020-01-01",
            "valueQuantity": {"value": 6.0, "unit": "10*9/L", "system": UCUM, "code": "10*9/L"},
        },
        {
            "resourceType": "Condition",
            "id": "h3-cond",
            "clinicalStatus": {
                "coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]
            },
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "69896004"}]},
            "subject": {"reference": f"Patient/{PID}"},
        },
        {
            "resourceType": "Immunization",
            "id": "h3-imm",
            "status": "completed",
            "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "140"}]},
            "patient": {"reference": f"Patient/{PID}"},
            "occurrenceDateTime": "2025-10-01",
        },
        *(
            {
                "resourceType": "ImmunizationRecommendation",
                "id": f"h3-rec-{pid}",
                "patient": {"reference": f"Patient/{pid}"},
                "date": "2026-11-01",
                "recommendation": [
                    {
                        "vaccineCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]}],
                        "forecastStatus": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status",
                                    "code": "due",
                                }
                            ]
                        },
                    }
                ],
            }
            for pid in (PID, OTHER)
        ),
        lab("h3-other-wbc", "6690-2", 1.0, "10*9/L", "2026-11-01", pid=OTHER),
    ]


MINE = {
    f"Patient/{PID}",
    "Medication/h3-aza-50",
    "MedicationRequest/h3-mr-aza",
    *(f"Observation/h3-wbc-{i}" for i in range(5)),
    "Observation/h3-tpmt",
    "Condition/h3-cond",
    "Immunization/h3-imm",
    f"ImmunizationRecommendation/h3-rec-{PID}",
}


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


@pytest.fixture
def client(fhir_server: Any) -> Iterator[FhirClient]:
    with loaded(fhir_server, record_resources()) as c:
        yield c


def refs(gathered: Any) -> list[str]:
    return [f"{r['resourceType']}/{r['id']}" for r in gathered.resources.resources]


def test_server_advertises_batch(client: FhirClient) -> None:
    assert client.supports_batch() is True


def test_record_comes_in_one_batch_request_with_medication_included(client: FhirClient, mappings: Mappings) -> None:
    before = client.request_count
    got = gather(client, PID, mappings, NOW)
    assert got.method == "batch"
    assert got.requests == 1
    assert client.request_count - before == 1  # no follow-up read: the Medication came by _include
    found = refs(got)
    assert set(found) == MINE
    assert len(found) == len(set(found))


def test_a_fresh_client_reads_record_and_alerts_in_one_request_without_metadata(
    fhir_server: Any, client: FhirClient, mappings: Mappings
) -> None:
    with FhirClient(fhir_server.base_url) as fresh:
        got = gather(fresh, PID, mappings, NOW, memory=ServerMemory())
        assert fresh.request_count == 1
    assert got.method == "batch" and got.requests == 1
    assert got.alert_issues is not None and got.alert_flags is not None
    assert got.alerts_problem is None


def test_check_on_server_finds_its_written_alerts_in_the_one_read(
    fhir_server: Any, client: FhirClient, mappings: Mappings
) -> None:
    written = check_on_server(client, PID, mappings=mappings, now=NOW, write=True)
    assert written.writes and not written.failed_writes
    with FhirClient(fhir_server.base_url) as fresh:
        result = check_on_server(fresh, PID, mappings=mappings, now=NOW, memory=ServerMemory())
        assert fresh.request_count == 1
    assert result.requests == 1
    wanted = {w.reference for w in written.writes if w.reference}
    assert wanted <= {a.reference for a in result.existing_alerts}


def test_other_patients_data_never_enters_the_record(client: FhirClient, mappings: Mappings) -> None:
    found = set(refs(gather(client, PID, mappings, NOW)))
    assert not any(OTHER in r or r == "Observation/h3-other-wbc" for r in found)


def test_small_page_size_pages_through_every_search(client: FhirClient, mappings: Mappings) -> None:
    got = gather(client, PID, mappings, NOW, page_size=2, observation_page_size=2)
    assert got.method == "batch"
    # 5 WBC results in pages of 2: the batch carries page 1, two more GETs fetch pages 2 and 3.
    assert got.requests >= 3
    found = refs(got)
    assert set(found) == MINE
    assert len(found) == len(set(found))


def test_gathered_record_parses_and_resolves_the_medication(client: FhirClient, mappings: Mappings) -> None:
    record = build_record(gather(client, PID, mappings, NOW).resources, mappings)
    assert record.problems == ()
    assert [o.medication_problem for o in record.medicine_uses] == [None]
    assert len(record.measurements_of("wbc")) == 5
    assert len(record.measurements_of("tpmt")) == 1


def test_missing_patient_is_not_found(client: FhirClient, mappings: Mappings) -> None:
    with pytest.raises(FhirNotFound):
        gather(client, "h3-nobody", mappings, NOW)


def test_conditional_create_creates_once(client: FhirClient) -> None:
    value = uuid.uuid4().hex
    patient = {"resourceType": "Patient", "identifier": [{"system": "urn:azaguard:test:h3", "value": value}]}
    first = client.create(patient, if_none_exist=f"identifier=urn:azaguard:test:h3|{value}")
    second = client.create(patient, if_none_exist=f"identifier=urn:azaguard:test:h3|{value}")
    assert (first.status, first.created) == (201, True)
    assert (second.status, second.created) == (200, False)
    assert first.resource is not None and second.resource is not None
    assert first.resource["id"] == second.resource["id"]
    assert first.etag


def test_update_with_a_stale_version_is_a_conflict(client: FhirClient) -> None:
    current = client.read("Patient", PID)
    client.update(current)  # now the version the caller holds is one behind
    with pytest.raises(FhirConflict) as info:
        client.update(current, if_match=f'W/"{current["meta"]["versionId"]}"')
    assert info.value.status == 412
    assert info.value.outcome


def test_unknown_search_parameter_is_rejected_in_strict_mode(client: FhirClient) -> None:
    with pytest.raises(FhirRejected) as info:
        client.search("Observation", {"no-such-parameter": "1"})
    assert info.value.status == 400
    assert info.value.outcome is not None and "no-such-parameter" in info.value.outcome


def test_invalid_resource_is_rejected_with_the_servers_reason(client: FhirClient) -> None:
    with pytest.raises(FhirRejected) as info:
        client.create({"resourceType": "Patient", "birthDate": "not a date"})
    assert info.value.status == 400
    assert info.value.outcome


# --- issue 7: therapy from statements, dispenses and administrations ---------------------------------

MEDS_PID = "i7-meds-1"


def _meds_record() -> list[Res]:
    subject = {"reference": f"Patient/{MEDS_PID}"}
    return [
        {"resourceType": "Patient", "id": MEDS_PID, "birthDate": "1975-01-01", "gender": "male"},
        {"resourceType": "Medication", "id": "i7-imurek",
         "code": {"text": "Imurek 50 mg Filmtabletten"}},
        {"resourceType": "MedicationStatement", "id": "i7-ms", "status": "active", "subject": subject,
         "medicationReference": {"reference": "Medication/i7-imurek"},
         "effectivePeriod": {"start": "2025-01-01"}},
        {"resourceType": "MedicationDispense", "id": "i7-md", "status": "completed", "subject": subject,
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197320",
                                                   "display": "allopurinol 300 MG Oral Tablet"}]},
         "whenHandedOver": "2026-11-15T10:00:00Z", "daysSupply": {"value": 30, "system": UCUM, "code": "d"}},
        {"resourceType": "MedicationDispense", "id": "i7-md-old", "status": "completed", "subject": subject,
         "medicationCodeableConcept": {"text": "amoxicillin 500 mg"}, "whenHandedOver": "2023-01-01T10:00:00Z"},
        {"resourceType": "MedicationAdministration", "id": "i7-ma", "status": "completed", "subject": subject,
         "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "29561", "display": "meropenem"}]},
         "effectiveDateTime": "2026-11-20T06:00:00Z"},
    ]  # fmt: skip


def test_statements_dispenses_and_administrations_come_in_the_same_batch(
    client: FhirClient, mappings: Mappings
) -> None:
    client.batch([{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                  for r in _meds_record()])  # fmt: skip
    client.capabilities()
    before = client.request_count
    got = gather(client, MEDS_PID, mappings, NOW)
    assert client.request_count - before == 1  # the statement's Medication came by _include
    found = set(refs(got))
    assert {"MedicationStatement/i7-ms", "Medication/i7-imurek", "MedicationDispense/i7-md",
            "MedicationAdministration/i7-ma"} <= found  # fmt: skip
    assert "MedicationDispense/i7-md-old" not in found  # older than any dispense that can still matter
    record = build_record(got.resources, mappings)
    by_ref = {o.ref: o for o in record.medicine_uses}
    assert by_ref["MedicationStatement/i7-ms"].drugs.azathioprine == "name"
    assert by_ref["MedicationDispense/i7-md"].drugs.interaction("allopurinol") is not None
    assert [h.key for h in by_ref["MedicationAdministration/i7-ma"].drugs.anti_infectives] == ["meropenem"]


def test_a_medication_the_server_does_not_have_is_worded_for_people_and_its_ids_are_in_the_json(
    client: FhirClient, mappings: Mappings
) -> None:
    from azaguard.report import to_json

    pid = "i22-unfetched"
    subject = {"reference": f"Patient/{pid}"}
    resources = [
        {"resourceType": "Patient", "id": pid, "birthDate": "1975-01-01"},
        {"resourceType": "MedicationRequest", "id": "i22-mr", "status": "active", "intent": "order",
         "subject": subject, "medicationReference": {"reference": "Medication/i22-not-there"},
         "authoredOn": "2026-11-03"},
    ]  # fmt: skip
    results = client.batch([{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                            for r in resources])  # fmt: skip
    assert all(r.ok for r in results), [(r.status, r.outcome) for r in results]
    result = check_on_server(client, pid, mappings=mappings, now=NOW)
    said = [w for w in result.warnings if w.startswith("The medication of")]
    assert said == ["The medication of a medication order of 3 Nov 2026 could not be read from the server: it is "
                    "not there."]
    assert not any("i22-" in w for w in result.warnings)
    assert to_json(result)["unfetched"] == [{"reference": "Medication/i22-not-there",
                                             "referenced_by": "MedicationRequest/i22-mr", "reason": "not-found"}]
