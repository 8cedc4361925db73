"""Transfusions and dialysis fetched from the real local FHIR server (sekmet-fhir): a transfusion Procedure known only
by its name, and dialysis shown by a Procedure or an Encounter (class/type), not only by a Condition.

The searches (fhir/gather.py): transfusions by code at any date; every Procedure over the results' lookback (read by
name or code); every Encounter of the dialysis window (its class, type or service type, by name or code)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.fhir import FhirClient
from azaguard.mappings import load_mappings
from azaguard.service import check_on_server
from tests.fhir.serverdata import loaded, put
from tests.recordparts import aza_order

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
SCT = "http://snomed.info/sct"


def base(pid: str) -> list[dict[str, Any]]:
    return [
        {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01", "gender": "male"},
        aza_order(f"{pid}-aza", pid, "2026-05-01"),
    ]


def egfr(pid: str) -> dict[str, Any]:
    return {"resourceType": "Observation", "id": f"{pid}-egfr", "status": "final",
            "subject": {"reference": f"Patient/{pid}"},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                      "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "33914-3"}]},
            "effectiveDateTime": "2026-11-18T08:00:00Z",
            "valueQuantity": {"value": 8, "unit": "mL/min/{1.73_m2}", "system": "http://unitsofmeasure.org",
                              "code": "mL/min/{1.73_m2}"}}


@pytest.fixture
def client(fhir_server: Any) -> Iterator[FhirClient]:
    with loaded(fhir_server) as c:
        yield c


def kidney(result: Any) -> tuple[str, str]:
    found = [f for f in result.findings if f.rule == "kidney"]
    return str(found[0].status), found[0].code


def test_a_transfusion_known_only_by_name_is_fetched(client: FhirClient) -> None:
    pid = "ctx-transfusion"
    put(client, [*base(pid),
                 {"resourceType": "Observation", "id": f"{pid}-tpmt", "status": "final",
                  "subject": {"reference": f"Patient/{pid}"},
                  "code": {"coding": [{"system": "http://loinc.org", "code": "79713-4"}]},
                  "effectiveDateTime": "2026-10-21T08:00:00Z",
                  "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA25391-6",
                                                       "display": "Normal metabolizer"}]}},
                 {"resourceType": "Procedure", "id": f"{pid}-proc", "status": "completed",
                  "subject": {"reference": f"Patient/{pid}"}, "code": {"text": "Blood transfusion, 2 units"},
                  "performedDateTime": "2026-09-30T10:00:00Z"}])
    result = check_on_server(client, pid, mappings=load_mappings(), now=NOW)
    assert [e.ref for e in result.record.events] == [f"Procedure/{pid}-proc"]
    assert "tpmt-after-transfusion" in {f.code for f in result.findings if f.rule == "tpmt"}


def test_dialysis_from_a_procedure(client: FhirClient) -> None:
    pid = "ctx-dial-proc"
    put(client, [*base(pid), egfr(pid),
                 {"resourceType": "Procedure", "id": f"{pid}-hd", "status": "completed",
                  "subject": {"reference": f"Patient/{pid}"},
                  "code": {"coding": [{"system": SCT, "code": "302497006", "display": "Hemodialysis"}]},
                  "performedDateTime": "2026-11-18T07:00:00Z"}])
    assert kidney(check_on_server(client, pid, mappings=load_mappings(), now=NOW)) == ("not-applicable", "on-dialysis")


def test_dialysis_from_an_encounter_type_and_not_from_an_old_one(client: FhirClient) -> None:
    pid, old = "ctx-dial-enc", "ctx-dial-old"
    for who, start in ((pid, "2026-11-17T07:00:00Z"), (old, "2026-09-01T07:00:00Z")):
        put(client, [*base(who), egfr(who),
                     {"resourceType": "Encounter", "id": f"{who}-enc", "status": "finished",
                      "subject": {"reference": f"Patient/{who}"},
                      "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                      "type": [{"coding": [{"system": SCT, "code": "265764009", "display": "Renal dialysis"}]}],
                      "period": {"start": start}}])
    assert kidney(check_on_server(client, pid, mappings=load_mappings(), now=NOW)) == ("not-applicable", "on-dialysis")
    assert kidney(check_on_server(client, old, mappings=load_mappings(), now=NOW))[0] != "not-applicable"
