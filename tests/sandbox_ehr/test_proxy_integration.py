"""The simulator in front of the real sekmet server: launcher, metadata, the token-checking proxy, standalone."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from starlette.testclient import TestClient

from azaguard.sandbox.patients import SyntheticPatient, build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxServer
from azaguard.sandbox.site import create_site
from tests.sandbox_ehr.helpers import (
    FHIR,
    PUBLIC,
    FakeClock,
    app_config,
    authorize,
    bearer,
    ehr_client,
    exchange,
    launch_token,
    pkce,
    redirect_params,
)

pytestmark = pytest.mark.integration
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
IDENTIFIER_SYSTEM = "urn:azaguard:test:h6"


@pytest.fixture(scope="module")
def loaded(fhir_server: SandboxServer) -> tuple[str, list[SyntheticPatient]]:
    """The synthetic patients on the upstream (PUTs: loading again is harmless)."""
    patients = build_patients(NOW)
    response = httpx.post(
        fhir_server.base_url,
        json=transaction_bundle(patients),
        timeout=120,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text[:500]
    return fhir_server.base_url, patients


@pytest.fixture
def upstream(loaded: tuple[str, list[SyntheticPatient]]) -> str:
    return loaded[0]


@pytest.fixture
def alice(loaded: tuple[str, list[SyntheticPatient]]) -> SyntheticPatient:
    return loaded[1][0]


@pytest.fixture
def bob(loaded: tuple[str, list[SyntheticPatient]]) -> SyntheticPatient:
    return loaded[1][1]


@pytest.fixture
def client(upstream: str) -> Iterator[TestClient]:
    with ehr_client(upstream) as c:
        yield c


def _an_observation(patient: SyntheticPatient) -> str:
    return next(r["id"] for r in patient.resources if r["resourceType"] == "Observation")


def _issue(patient_id: str) -> dict[str, Any]:
    return {
        "resourceType": "DetectedIssue",
        "status": "final",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": secrets.token_hex(8)}],
        "patient": {"reference": f"Patient/{patient_id}"},
        "detail": "sandbox EHR test",
    }


def _json_headers(token: dict[str, Any], **extra: str) -> dict[str, str]:
    return {**bearer(token), "Content-Type": "application/fhir+json", **extra}


def test_launcher_page_lists_patients_and_its_links_launch(client: TestClient, alice: SyntheticPatient) -> None:
    page = client.get("/ehr/")
    assert page.status_code == 200
    assert "Sandbox EHR — synthetic patients" in page.text
    links = {p: unescape(h) for h, p in re.findall(r'href="([^"]+)" data-patient="([^"]+)"', page.text)}
    assert alice.id in links
    link = links[alice.id]
    assert link.startswith(f"{PUBLIC}/app/launch?")
    query = parse_qs(urlsplit(link).query)
    assert query["iss"] == [FHIR]
    pair = pkce()
    code = redirect_params(authorize(client, pair, launch=query["launch"][0]))["code"]
    assert exchange(client, code, pair.verifier).json()["patient"] == alice.id


def test_metadata_is_public_with_oauth_uris_and_public_urls(client: TestClient, upstream: str) -> None:
    response = client.get("/ehr/fhir/metadata")
    assert response.status_code == 200
    capability = response.json()
    assert capability["resourceType"] == "CapabilityStatement"
    ext = capability["rest"][0]["security"]["extension"][0]
    assert ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    assert {e["url"] for e in ext["extension"]} == {"authorize", "token"}
    assert upstream not in response.text


def test_proxy_requires_a_live_token(upstream: str, alice: SyntheticPatient) -> None:
    clock = FakeClock()
    with ehr_client(upstream, clock=clock) as client:
        missing = client.get(f"/ehr/fhir/Patient/{alice.id}")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        garbage = client.get(f"/ehr/fhir/Patient/{alice.id}", headers={"Authorization": "Bearer nope"})
        assert garbage.status_code == 401
        assert 'error="invalid_token"' in garbage.headers["www-authenticate"]
        token = launch_token(client, alice.id)
        assert client.get(f"/ehr/fhir/Patient/{alice.id}", headers=bearer(token)).status_code == 200
        clock.advance(3601)
        expired = client.get(f"/ehr/fhir/Patient/{alice.id}", headers=bearer(token))
        assert expired.status_code == 401
        assert expired.headers["www-authenticate"].startswith("Bearer")


def test_proxy_keeps_the_token_in_its_patient(
    client: TestClient, alice: SyntheticPatient, bob: SyntheticPatient
) -> None:
    token = launch_token(client, alice.id)
    headers = bearer(token)
    assert client.get(f"/ehr/fhir/Patient/{alice.id}", headers=headers).json()["id"] == alice.id
    assert client.get("/ehr/fhir/Patient", params={"_id": alice.id}, headers=headers).status_code == 200
    assert client.get(f"/ehr/fhir/Observation/{_an_observation(alice)}", headers=headers).status_code == 200

    assert client.get(f"/ehr/fhir/Patient/{bob.id}", headers=headers).status_code == 403
    assert client.get("/ehr/fhir/Patient", params={"_id": bob.id}, headers=headers).status_code == 403
    assert client.get("/ehr/fhir/Observation", params={"patient": bob.id}, headers=headers).status_code == 403
    assert client.get("/ehr/fhir/Observation", params={"code": "6690-2"}, headers=headers).status_code == 403
    other = client.get(f"/ehr/fhir/Observation/{_an_observation(bob)}", headers=headers)
    assert other.status_code == 403  # allowed path, refused once the upstream showed whose it is
    assert other.json()["resourceType"] == "OperationOutcome"


def test_search_results_never_include_other_patients(client: TestClient, alice: SyntheticPatient) -> None:
    # sekmet has no `patient` parameter for ImmunizationRecommendation and answers with everyone's.
    token = launch_token(client, alice.id)
    for rtype in ("ImmunizationRecommendation", "Observation", "Condition", "MedicationRequest"):
        response = client.get(f"/ehr/fhir/{rtype}", params={"patient": alice.id}, headers=bearer(token))
        assert response.status_code == 200, (rtype, response.text[:300])
        for entry in response.json().get("entry", []):
            resource = entry["resource"]
            if resource["resourceType"] != "OperationOutcome":
                ref = (resource.get("subject") or resource.get("patient"))["reference"]
                assert ref.endswith(f"Patient/{alice.id}"), (rtype, ref)


def test_search_next_links_are_rewritten_and_followable(
    client: TestClient, alice: SyntheticPatient, upstream: str
) -> None:
    token = launch_token(client, alice.id)
    page = client.get("/ehr/fhir/Observation", params={"patient": alice.id, "_count": "2"}, headers=bearer(token))
    assert page.status_code == 200
    assert upstream not in page.text
    links = {link["relation"]: link["url"] for link in page.json()["link"]}
    assert links["next"].startswith(f"{FHIR}/Observation?")
    assert all(e["fullUrl"].startswith(f"{FHIR}/Observation/") for e in page.json()["entry"])
    second = client.get(links["next"].removeprefix(PUBLIC), headers=bearer(token))
    assert second.status_code == 200
    first_ids = {e["resource"]["id"] for e in page.json()["entry"]}
    second_ids = {e["resource"]["id"] for e in second.json()["entry"]}
    assert second_ids and not first_ids & second_ids


def test_batch_of_the_patients_searches(client: TestClient, alice: SyntheticPatient, bob: SyntheticPatient) -> None:
    token = launch_token(client, alice.id)
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Patient/{alice.id}"}},
            {"request": {"method": "GET", "url": f"Observation?patient={alice.id}&_count=100"}},
            {"request": {"method": "GET", "url": f"MedicationRequest?subject=Patient/{alice.id}"}},
            {"request": {"method": "GET", "url": f"Condition?patient={alice.id}"}},
        ],
    }
    response = client.post("/ehr/fhir", json=batch, headers=_json_headers(token))
    assert response.status_code == 200, response.text[:500]
    body = response.json()
    assert body["type"] == "batch-response"
    assert [e["response"]["status"][:3] for e in body["entry"]] == ["200"] * 4
    assert body["entry"][1]["resource"]["total"] >= 2

    batch["entry"].append({"request": {"method": "GET", "url": f"Condition?patient={bob.id}"}})
    assert client.post("/ehr/fhir", json=batch, headers=_json_headers(token)).status_code == 403


def test_conditional_create_of_a_detected_issue(
    client: TestClient, alice: SyntheticPatient, bob: SyntheticPatient
) -> None:
    token = launch_token(client, alice.id)
    issue = _issue(alice.id)
    condition = f"identifier={IDENTIFIER_SYSTEM}|{issue['identifier'][0]['value']}"
    headers = _json_headers(token, **{"If-None-Exist": condition})
    created = client.post("/ehr/fhir/DetectedIssue", json=issue, headers=headers)
    assert created.status_code == 201, created.text[:500]
    assert created.headers["location"].startswith(f"{FHIR}/DetectedIssue/")
    again = client.post("/ehr/fhir/DetectedIssue", json=issue, headers=headers)
    assert again.status_code == 200  # already there: not created twice

    for_bob = _issue(bob.id)
    refused = client.post(
        "/ehr/fhir/DetectedIssue",
        json=for_bob,
        headers=_json_headers(
            token, **{"If-None-Exist": f"identifier={IDENTIFIER_SYSTEM}|{for_bob['identifier'][0]['value']}"}
        ),
    )
    assert refused.status_code == 403
    bob_token = launch_token(client, bob.id)
    search = client.get("/ehr/fhir/DetectedIssue", params={"patient": bob.id}, headers=bearer(bob_token))
    assert for_bob["identifier"][0]["value"] not in search.text  # nothing reached the upstream


def test_update_with_if_match_and_no_takeover(
    client: TestClient, alice: SyntheticPatient, bob: SyntheticPatient
) -> None:
    token = launch_token(client, alice.id)
    created = client.post("/ehr/fhir/DetectedIssue", json=_issue(alice.id), headers=_json_headers(token))
    assert created.status_code == 201
    resource = created.json()
    resource["status"] = "cancelled"
    etag = created.headers.get("etag", 'W/"1"')
    updated = client.put(
        f"/ehr/fhir/DetectedIssue/{resource['id']}", json=resource, headers=_json_headers(token, **{"If-Match": etag})
    )
    assert updated.status_code == 200, updated.text[:500]
    assert updated.json()["status"] == "cancelled"

    bob_token = launch_token(client, bob.id)
    takeover = {**resource, "patient": {"reference": f"Patient/{bob.id}"}}
    refused = client.put(f"/ehr/fhir/DetectedIssue/{resource['id']}", json=takeover, headers=_json_headers(bob_token))
    assert refused.status_code == 403
    assert client.get(f"/ehr/fhir/DetectedIssue/{resource['id']}", headers=bearer(token)).json()["patient"] == {
        "reference": f"Patient/{alice.id}"
    }


def test_writes_need_a_write_scope(upstream: str, alice: SyntheticPatient) -> None:
    def read_only(scope: str) -> str:
        return " ".join(s.replace(".crus", ".rs") for s in scope.split())

    with ehr_client(upstream, granted_scope_filter=read_only) as client:
        token = launch_token(client, alice.id)
        assert "patient/DetectedIssue.crus" not in token["scope"].split()
        response = client.post("/ehr/fhir/DetectedIssue", json=_issue(alice.id), headers=_json_headers(token))
    assert response.status_code == 403


def test_standalone_launch_picks_a_patient(client: TestClient, bob: SyntheticPatient) -> None:
    pair = pkce()
    picker = authorize(client, pair, scope="launch/patient openid fhirUser patient/Patient.rs")
    assert picker.status_code == 200
    assert bob.id in picker.text
    pending = re.search(r'name="pending" value="([^"]+)"', picker.text)
    assert pending is not None
    chosen = client.post("/ehr/auth/authorize/select", data={"pending": pending.group(1), "patient": bob.id})
    back = redirect_params(chosen)
    assert back["state"] == "state-123"
    token = exchange(client, back["code"], pair.verifier).json()
    assert token["patient"] == bob.id
    assert client.get(f"/ehr/fhir/Patient/{bob.id}", headers=bearer(token)).status_code == 200
    replay = client.post("/ehr/auth/authorize/select", data={"pending": pending.group(1), "patient": bob.id})
    assert replay.status_code == 400


def test_create_site_mounts_ehr_and_app(upstream: str) -> None:
    site = create_site(fhir_upstream=upstream, public_base=PUBLIC, app_config=app_config())
    with TestClient(site, base_url=PUBLIC, follow_redirects=False) as client:
        home = client.get("/")
        assert home.status_code in (302, 307)
        assert home.headers["location"] == "/ehr/"
        assert client.get("/ehr/").status_code == 200
        assert client.get("/ehr/fhir/.well-known/smart-configuration").json()["issuer"] == FHIR
        assert client.get("/app/launch").status_code != 404  # the web app, or the placeholder saying why not
