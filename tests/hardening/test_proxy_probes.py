"""Probes of the sandbox EHR proxy with a token for one patient trying to reach another: each is
refused (403) with no data, and no variant (conditional header, HEAD, Prefer, reverse chain) tells
more than the plain read does. Against the real local FHIR server."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from azaguard.fhir.client import FhirClient
from tests.hardening.common import load_patient
from tests.sandbox_ehr.helpers import V2, bearer, ehr_client, launch_token

pytestmark = pytest.mark.integration
ALICE, BOB = "i8-alice", "i8-bob"
SYSTEM = "urn:azaguard:test:i8"


@pytest.fixture(scope="module")
def upstream(fhir_server: Any) -> str:
    load_patient(fhir_server.base_url, ALICE)
    load_patient(fhir_server.base_url, BOB)
    with FhirClient(fhir_server.base_url) as client:
        client.update({"resourceType": "Device", "id": "i8-bob-pump", "patient": {"reference": f"Patient/{BOB}"}})
        client.update(_issue(BOB, "i8-bob-issue"))
    return str(fhir_server.base_url)


@pytest.fixture
def client(upstream: str) -> Iterator[TestClient]:
    with ehr_client(upstream) as c:
        yield c


def _issue(pid: str, rid: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "resourceType": "DetectedIssue", "status": "final", "patient": {"reference": f"Patient/{pid}"},
        "identifier": [{"system": SYSTEM, "value": f"{pid}-secret"}],
    }
    if rid:
        issue["id"] = rid
    return issue


def _refused(response: httpx.Response) -> None:
    assert response.status_code == 403, (response.status_code, response.text[:300])
    if response.request.method != "HEAD":  # a HEAD answer has no body at all
        assert response.json()["resourceType"] == "OperationOutcome"  # an explanation, never a resource
    assert "i8-bob-pump" not in response.text and f"{BOB}-secret" not in response.text


@pytest.mark.parametrize(
    "query",
    [
        f"Medication?_has:MedicationRequest:medication:patient=Patient/{BOB}",
        f"Practitioner?_has:Observation:performer:subject={BOB}",
        f"Device?patient=Patient/{BOB}",
        f"Device?patient={BOB}",
        "Device?patient.name=Bob",
        "Medication?_revinclude=MedicationRequest:medication",
        f"Observation?patient={ALICE}&_has:DetectedIssue:implicated:patient={BOB}",
        f"Observation?patient={ALICE}&subject:Patient.name=Bob",
    ],
)
def test_searches_reaching_into_another_compartment_are_refused(client: TestClient, query: str) -> None:
    token = launch_token(client, ALICE)
    _refused(client.get(f"/ehr/fhir/{query}", headers=bearer(token)))


def test_conditional_create_cannot_tell_whether_another_patient_has_a_match(client: TestClient) -> None:
    token = launch_token(client, ALICE)
    headers = {**bearer(token), "Content-Type": "application/fhir+json"}
    # Criteria matching Bob's DetectedIssue: confined to Alice's compartment, they match nothing,
    # exactly as criteria matching nobody: 201 both times, never Bob's resource.
    for value in (f"{BOB}-secret", "nobody-has-this"):
        answer = client.post("/ehr/fhir/DetectedIssue", json=_issue(ALICE) | {"identifier": [
            {"system": SYSTEM, "value": f"alice-{value}"}]},
            headers={**headers, "If-None-Exist": f"identifier={SYSTEM}|{value}"})
        assert answer.status_code == 201, answer.text[:300]
        assert f"Patient/{BOB}" not in answer.text and answer.json()["patient"]["reference"] == f"Patient/{ALICE}"
    named = client.post("/ehr/fhir/DetectedIssue", json=_issue(ALICE),
                        headers={**headers, "If-None-Exist": f"patient=Patient/{BOB}&identifier={SYSTEM}|x"})
    _refused(named)
    batch = {"resourceType": "Bundle", "type": "batch", "entry": [{
        "resource": _issue(ALICE), "request": {"method": "POST", "url": "DetectedIssue",
                                               "ifNoneExist": f"_has:Flag:subject:patient={BOB}"}}]}
    _refused(client.post("/ehr/fhir", json=batch, headers=headers))


def test_head_if_none_match_and_prefer_minimal_are_checked_like_reads(client: TestClient, upstream: str) -> None:
    token = launch_token(client, ALICE)
    with FhirClient(upstream) as direct:
        bobs = direct.read("DetectedIssue", "i8-bob-issue")
    etag = f'W/"{bobs["meta"]["versionId"]}"'
    url = "/ehr/fhir/DetectedIssue/i8-bob-issue"
    _refused(client.get(url, headers=bearer(token)))
    _refused(client.head(url, headers=bearer(token)))
    _refused(client.get(url, headers={**bearer(token), "If-None-Match": etag}))
    minimal = {**bearer(token), "Content-Type": "application/fhir+json", "Prefer": "return=minimal"}
    _refused(client.put(url, json=_issue(ALICE, "i8-bob-issue"), headers=minimal))
    # The same variants on Alice's own resource work, shaped as asked.
    mine = client.post("/ehr/fhir/DetectedIssue", json=_issue(ALICE), headers=minimal)
    assert mine.status_code == 201 and not mine.content
    location = mine.headers["location"].split("/ehr/fhir/")[1].split("/_history")[0]
    head = client.head(f"/ehr/fhir/{location}", headers=bearer(token))
    assert head.status_code == 200 and not head.content
    tag = client.get(f"/ehr/fhir/{location}", headers=bearer(token)).headers["etag"]
    assert client.get(f"/ehr/fhir/{location}", headers={**bearer(token), "If-None-Match": tag}).status_code == 304


def test_a_patient_token_cannot_write_the_shared_author_device(client: TestClient) -> None:
    token = launch_token(client, ALICE)
    headers = {**bearer(token), "Content-Type": "application/fhir+json"}
    device = {"resourceType": "Device", "status": "active"}
    assert client.post("/ehr/fhir/Device", json=device, headers=headers).status_code == 403
    assert client.put("/ehr/fhir/Device/i8-x", json={**device, "id": "i8-x"}, headers=headers).status_code == 403
    assert client.put("/ehr/fhir/Device/i8-bob-pump", json={**device, "id": "i8-bob-pump"},
                      headers=headers).status_code == 403


def test_granted_scopes_never_exceed_the_registration(client: TestClient) -> None:
    asked = V2 + " patient/*.cruds user/Patient.cruds patient/Encounter.cruds patient/Encounter.rs system/*.rs"
    token = launch_token(client, ALICE, scope=asked)
    granted = set(token["scope"].split())
    assert {"patient/*.cruds", "user/Patient.cruds", "patient/Encounter.cruds", "system/*.rs"}.isdisjoint(granted)
    assert "patient/Encounter.rs" in granted  # within the registered patient/*.read
    assert "patient/DetectedIssue.crus" in granted


def test_no_token_or_code_is_ever_logged(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = launch_token(client, ALICE)
    client.get(f"/ehr/fhir/Observation?patient={ALICE}", headers=bearer(token))
    client.get("/ehr/fhir/DetectedIssue/i8-bob-issue", headers=bearer(token))
    refreshed = client.post("/ehr/auth/token", data={"grant_type": "refresh_token", "client_id": "azaguard",
                                                     "refresh_token": token["refresh_token"]})
    assert refreshed.status_code == 200
    secrets = [token["access_token"], token["refresh_token"], refreshed.json()["access_token"]]
    logged = "\n".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records)
    assert caplog.records  # the loggers were listening
    assert not [s for s in secrets if s in logged]


@pytest.mark.parametrize(
    "body",
    ['{"resourceType": "DetectedIssue", "x": ' + "[" * 5000 + "]" * 5000 + "}",
     '{"resourceType": "DetectedIssue", "x": ' + "9" * 5000 + "}",
     '{"resourceType": "DetectedIssue", "x": NaN}'],
    ids=["deep", "huge-number", "nan"],
)
def test_hostile_request_bodies_get_a_400_not_a_500(body: str) -> None:
    with ehr_client() as c:  # nothing reaches an upstream
        token = launch_token(c, ALICE)
        answer = c.post("/ehr/fhir/DetectedIssue", content=body,
                        headers={**bearer(token), "Content-Type": "application/fhir+json"})
    assert answer.status_code == 400 and answer.json()["resourceType"] == "OperationOutcome"
