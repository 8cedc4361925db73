"""The sandbox FHIR server (sekmet-fhir): starts, loads the patients idempotently, and searches
DetectedIssue/Flag by the parameters the launcher adds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxError, SandboxServer

pytestmark = pytest.mark.integration

STRICT = {"Content-Type": "application/fhir+json", "Prefer": "handling=strict"}
AZA_SYSTEM = "https://azaguard.example/finding"


@pytest.fixture
def fhir(fhir_server: SandboxServer) -> Iterator[httpx.Client]:
    """An empty server and a client that refuses unknown search parameters (400, not ignored)."""
    fhir_server.reset()
    with httpx.Client(base_url=fhir_server.base_url, headers=STRICT, timeout=60, trust_env=False) as client:
        yield client


def _total(client: httpx.Client, query: str) -> int:
    r = client.get(query, params={"_summary": "count"} if "?" not in query else None)
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


def _ids(client: httpx.Client, query: str) -> set[str]:
    r = client.get(query)
    assert r.status_code == 200, r.text
    return {
        e["resource"]["id"] for e in r.json().get("entry", []) if e.get("search", {}).get("mode") != "outcome"
    }


def _issue(patient: str, key: str, implicated: str) -> dict[str, Any]:
    return {
        "resourceType": "DetectedIssue",
        "status": "final",
        "code": {"coding": [{"system": AZA_SYSTEM, "code": "vaccination-hold"}]},
        "patient": {"reference": f"Patient/{patient}"},
        "identifiedDateTime": "2026-11-01T12:00:00Z",
        "author": {"reference": "Device/azaguard"},
        "implicated": [{"reference": implicated}],
        "identifier": [{"system": AZA_SYSTEM, "value": key}],
    }


def _flag(patient: str, status: str) -> dict[str, Any]:
    return {
        "resourceType": "Flag",
        "status": status,
        "category": [
            {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/flag-category", "code": "drug"}]}
        ],
        "code": {"coding": [{"system": AZA_SYSTEM, "code": "azathioprine-hold"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "author": {"reference": "Device/azaguard"},
    }


def test_metadata_answers_with_the_added_search_parameters(
    fhir_server: SandboxServer, fhir: httpx.Client
) -> None:
    r = fhir.get("/metadata")
    assert r.status_code == 200
    cap = r.json()
    assert cap["resourceType"] == "CapabilityStatement" and cap["fhirVersion"].startswith("4.0")
    params = {
        res["type"]: {p["name"] for p in res.get("searchParam", [])} for res in cap["rest"][0]["resource"]
    }
    assert {"identifier", "code", "patient", "implicated", "identified", "author"} <= params["DetectedIssue"]
    assert {"patient", "status", "author", "category", "code"} <= params["Flag"]
    assert fhir_server.base_url.startswith("http://127.0.0.1:") and fhir_server.base_url.endswith("/fhir")
    assert httpx.get(fhir_server.console_url, trust_env=False, follow_redirects=True).status_code == 200


def test_loading_the_patients_twice_keeps_one_copy_of_each(fhir: httpx.Client) -> None:
    patients = build_patients(datetime.now(UTC))
    bundle = transaction_bundle(patients)
    for _ in range(2):
        r = fhir.post("", json=bundle)
        assert r.status_code == 200, r.text[:2000]
        assert all(e["response"]["status"].startswith(("200", "201")) for e in r.json()["entry"])
    assert _total(fhir, "/Patient") == len(patients)
    assert _total(fhir, "/Observation") == sum(
        1 for p in patients for res in p.resources if res["resourceType"] == "Observation"
    )
    assert _total(fhir, "/Medication") == 1
    for p in patients:
        mrn = p.resources[0]["identifier"][0]
        assert _ids(fhir, f"/Patient?identifier={mrn['system']}|{mrn['value']}") == {p.id}
    febrile = _ids(fhir, "/Observation?patient=Patient/aza-febrile-c&code=http://loinc.org|8310-5")
    assert febrile == {"aza-febrile-c-temp"}


def test_detected_issue_search_filters_by_patient_identifier_and_more(fhir: httpx.Client) -> None:
    for pid, key, mr in (("p1", "k1", "MedicationRequest/m1"), ("p2", "k2", "MedicationRequest/m2")):
        assert fhir.put(f"/Patient/{pid}", json={"resourceType": "Patient", "id": pid}).status_code in (
            200,
            201,
        )
        assert fhir.post("/DetectedIssue", json=_issue(pid, key, mr)).status_code == 201
    by_patient = _ids(fhir, "/DetectedIssue?patient=Patient/p1")
    assert len(by_patient) == 1
    assert _ids(fhir, "/DetectedIssue?patient=p1") == by_patient
    assert _ids(fhir, f"/DetectedIssue?identifier={AZA_SYSTEM}|k1") == by_patient
    assert _ids(fhir, "/DetectedIssue?implicated=MedicationRequest/m1") == by_patient
    assert len(_ids(fhir, f"/DetectedIssue?code={AZA_SYSTEM}|vaccination-hold")) == 2
    assert len(_ids(fhir, "/DetectedIssue?author=Device/azaguard&identified=ge2026-11-01")) == 2
    assert _ids(fhir, "/DetectedIssue?patient=Patient/nobody") == set()


def test_conditional_create_of_a_detected_issue_by_identifier(fhir: httpx.Client) -> None:
    condition = {"If-None-Exist": f"identifier={AZA_SYSTEM}|once"}
    first = fhir.post("/DetectedIssue", json=_issue("p1", "once", "MedicationRequest/m1"), headers=condition)
    again = fhir.post("/DetectedIssue", json=_issue("p1", "once", "MedicationRequest/m1"), headers=condition)
    assert first.status_code == 201, first.text
    assert again.status_code == 200, again.text  # matched the existing one: nothing created
    assert again.json()["id"] == first.json()["id"]
    assert _total(fhir, "/DetectedIssue") == 1


def test_flag_search_by_patient_status_category_code_author(fhir: httpx.Client) -> None:
    for pid, status in (("p1", "active"), ("p1", "inactive"), ("p2", "active")):
        assert fhir.post("/Flag", json=_flag(pid, status)).status_code == 201
    assert len(_ids(fhir, "/Flag?patient=Patient/p1&status=active")) == 1
    assert len(_ids(fhir, "/Flag?patient=p1")) == 2
    assert len(_ids(fhir, "/Flag?category=drug&status=active")) == 2
    assert len(_ids(fhir, f"/Flag?code={AZA_SYSTEM}|azathioprine-hold&author=Device/azaguard")) == 3
    assert _ids(fhir, "/Flag?author=Device/someone-else") == set()


def test_unknown_search_parameters_are_refused_in_strict_mode(fhir: httpx.Client) -> None:
    assert fhir.get("/DetectedIssue?no-such-param=1").status_code == 400


def test_reset_empties_the_server(fhir_server: SandboxServer, fhir: httpx.Client) -> None:
    fhir.post("", json=transaction_bundle(build_patients(datetime.now(UTC))[:2])).raise_for_status()
    assert _total(fhir, "/Patient") == 2
    fhir_server.reset()
    assert _total(fhir, "/Patient") == 0
    assert _total(fhir, "/Observation") == 0


def test_lifecycle_of_a_second_server(fhir_server: SandboxServer, tmp_path: Path) -> None:
    server = SandboxServer(home=fhir_server.home, data_dir=tmp_path / "data")
    with pytest.raises(SandboxError):
        _ = server.base_url  # no port before start
    with server:
        assert server.running and server.port != fhir_server.port
        assert httpx.get(f"{server.base_url}/metadata", trust_env=False).status_code == 200
        assert (tmp_path / "data" / "settings.yaml").is_file()
    assert not server.running
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{server.base_url}/metadata", trust_env=False, timeout=2)


def test_a_requested_port_in_use_is_refused(fhir_server: SandboxServer, tmp_path: Path) -> None:
    taken = SandboxServer(home=fhir_server.home, port=fhir_server.port, data_dir=tmp_path / "data")
    with pytest.raises(SandboxError, match="already in use"):
        taken.start()
    assert not taken.running
