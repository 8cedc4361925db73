"""The reading pass's own reads on the real local FHIR server (sekmet-fhir, `fhir_server` fixture): a relative's
family history and a red-cell transfusion are fetched in the one batch and reach the TPMT rule as context."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.fhir import FhirClient
from azaguard.mappings import load_mappings
from azaguard.service import check_on_server
from tests.fhir.serverdata import loaded
from tests.recordparts import aza_order

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
PID = "i24-meaning-1"
SCT = "http://snomed.info/sct"


def resources() -> list[dict[str, Any]]:
    me = {"reference": f"Patient/{PID}"}
    return [
        {"resourceType": "Patient", "id": PID, "birthDate": "1970-01-01", "gender": "male"},
        aza_order("i24-aza", PID, "2026-05-01"),
        {"resourceType": "Observation", "id": "i24-tpmt", "status": "final", "subject": me,
         "code": {"coding": [{"system": "http://loinc.org", "code": "79713-4"}]},
         "effectiveDateTime": "2026-10-21T08:00:00Z",
         "valueCodeableConcept": {"coding": [{"system": "http://loinc.org", "code": "LA25391-6",
                                              "display": "Normal metabolizer"}]}},
        {"resourceType": "Procedure", "id": "i24-transfusion", "status": "completed", "subject": me,
         "code": {"coding": [{"system": SCT, "code": "116863004", "display": "Transfusion of red blood cells"}]},
         "performedDateTime": "2026-09-30T10:00:00Z"},
        {"resourceType": "FamilyMemberHistory", "id": "i24-fmh", "status": "completed", "patient": me,
         "relationship": {"text": "mother"}, "condition": [{"code": {"text": "TPMT deficiency"}}]},
    ]


@pytest.fixture
def client(fhir_server: Any) -> Iterator[FhirClient]:
    with loaded(fhir_server, resources()) as c:
        yield c


def test_family_history_and_transfusion_come_in_the_one_batch(client: FhirClient) -> None:
    result = check_on_server(client, PID, mappings=load_mappings(), now=NOW)
    assert result.requests == 1
    assert [r.ref for r in result.record.related] == ["FamilyMemberHistory/i24-fmh"]
    assert [e.ref for e in result.record.events] == ["Procedure/i24-transfusion"]
    # The patient's own TPMT is on file, so the family history is context; the phenotype 21 days after a
    # transfusion may be the donor's.
    codes = {f.code for f in result.findings if f.rule == "tpmt"}
    assert "tpmt-after-transfusion" in codes and "tpmt-family-history" not in codes
