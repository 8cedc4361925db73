"""A hook's fhirServer is chosen by the caller: only servers allowed for that client are fetched from
(https on public addresses by default, loopback/link-local/private only when listed); every refusal or
failure to connect reads the same; the fetches of one call end at a configurable deadline named in the
answer. Prefetch resources that cannot be tied to the patient are left out and named."""

from __future__ import annotations

import copy
import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.discovery import SERVICES
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.prefetch import Templates, assemble, default_client_factory
from azaguard.cds.request import parse_request
from azaguard.cds.store import CdsStore
from azaguard.config import CdsClient, load_app_config
from azaguard.mappings import load_mappings
from tests.cds.conftest import BASE, EHR_ISS, Ehr
from tests.cds.hookdata import body, full_prefetch, sandbox_chart
from tests.clinical.builders import NOW
from tests.hardening.hostile import Reply, Request, Scripted

HOOK = "/cds-services/azaguard-patient-view"
PID = "aza-mmr-due"
MAPPINGS = load_mappings()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(tmp_path: Path, fhir_server: str, *, listed: tuple[str, ...] = (), seconds: float = 4.0) -> Any:
    """One signed patient-view call with an empty prefetch (everything to fetch from `fhir_server`)."""
    ehr = Ehr()
    store = CdsStore(f"sqlite:///{tmp_path / f'{uuid.uuid4()}.sqlite'}")
    config = load_app_config(public_base=BASE).model_copy(update={
        "cds_clients": (CdsClient(iss=EHR_ISS, jwks=ehr.jwks, fhir_servers=listed),), "cds_fetch_seconds": seconds})
    service = CdsService(config, mappings=MAPPINGS, store=store)
    payload = body("patient-view", sandbox_chart(PID), patient_id=PID, prefetch={}, fhirServer=fhir_server,
                   fhirAuthorization={"access_token": "t", "token_type": "Bearer", "expires_in": 300})
    now = int(time.time())
    claims = {"iss": EHR_ISS, "aud": BASE + HOOK, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
    token = jwt.encode({"alg": "ES384", "typ": "JWT", "kid": ehr.ec.kid}, claims, ehr.ec, algorithms=["ES384"])
    try:
        with TestClient(Starlette(routes=cds_routes(service)), raise_server_exceptions=False) as client:
            return client.post(HOOK, content=json.dumps(payload),
                               headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    finally:
        store.close()


@pytest.fixture
def fhir() -> Iterator[Scripted]:
    """A FHIR server on loopback that answers everything 404 (enough to see whether it was asked)."""
    with Scripted(lambda _: Reply(404, b"{}", {"Content-Type": "application/fhir+json"})) as server:
        yield server


def test_an_unlisted_loopback_server_is_never_contacted(tmp_path: Path, fhir: Scripted) -> None:
    for url in (fhir.origin, fhir.origin.replace("http://", "https://")):
        r = _call(tmp_path, url + "/fhir")
        assert r.status_code == 412, r.text
        assert "not allowed for this client" in r.json()["message"]
    assert fhir.requests == []


def test_a_listed_loopback_server_is_fetched_from(tmp_path: Path, fhir: Scripted) -> None:
    r = _call(tmp_path, fhir.origin + "/fhir", listed=("http://127.0.0.1",))
    assert r.status_code == 412  # its 404s: but it was asked
    assert fhir.requests
    assert _call(tmp_path, "http://127.0.0.1:1/other", listed=(fhir.origin + "/fhir",)).status_code == 412


@pytest.mark.parametrize(("url", "addresses", "allowed"), [
    ("https://ehr.example.org/fhir", ["93.184.216.34"], True),
    ("http://ehr.example.org/fhir", ["93.184.216.34"], False),  # https only by default
    ("https://ehr.example.org/fhir", ["10.1.2.3"], False),
    ("https://ehr.example.org/fhir", ["93.184.216.34", "192.168.0.9"], False),  # every address checked
    ("https://ehr.example.org/fhir", ["2606:2800:220:1::1", "fd00::5"], False),
    ("https://ehr.example.org/fhir", ["::ffff:127.0.0.1"], False),
    ("https://ehr.example.org/fhir", ["100.64.0.1"], False),
    ("https://169.254.169.254/latest", None, False),  # a literal IP: checked directly, never resolved
    ("https://[::1]:8443/fhir", None, False),
    ("https://[fe80::1]/fhir", None, False),
    ("https://172.16.0.1/fhir", None, False),
    ("https://8.8.8.8/fhir", None, True),
    ("https://user:pw@ehr.example.org/fhir", ["93.184.216.34"], False),
])
def test_default_policy_refuses_private_ranges(url: str, addresses: list[str] | None, allowed: bool) -> None:
    def resolver(host: str, port: int) -> list[str]:
        assert addresses is not None, "a literal IP was resolved"
        return addresses

    assert FetchPolicy(resolver=resolver).allows(url) is allowed


def test_a_dns_failure_is_a_refusal() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror("no such host")

    assert not FetchPolicy(resolver=resolver).allows("https://no-such-host.example/fhir")


def test_listed_entries_match_scheme_host_port_and_path() -> None:
    policy = FetchPolicy(("https://ehr.example.org:8443/fhir", "http://127.0.0.1"))
    assert policy.allows("https://ehr.example.org:8443/fhir")
    assert policy.allows("https://ehr.example.org:8443/fhir/r4")
    assert not policy.allows("https://ehr.example.org:8443/fhirx")
    assert not policy.allows("http://ehr.example.org:8443/fhir")
    assert not policy.allows("https://ehr.example.org:444/fhir")  # a listed port is the only port
    assert policy.allows("http://127.0.0.1:9999/anything")
    assert not policy.allows("https://other.example.org/fhir")  # listed: only what is listed


def test_one_text_for_refused_closed_timeout_and_unknown_host(tmp_path: Path) -> None:
    """No port-scanning oracle: the caller learns nothing about why, and the real limit is named."""

    def slow(_: Request) -> Reply:
        return Reply(200, iter([b"{", b"}"] * 20), {"Content-Type": "application/fhir+json"}, drip=0.5)

    with Scripted(slow) as dripping:
        messages = {
            "refused": _call(tmp_path, "http://10.0.0.1:8080/fhir", seconds=1),
            "closed": _call(tmp_path, f"http://127.0.0.1:{_closed_port()}/fhir", listed=("http://127.0.0.1",),
                            seconds=1),
            "timeout": _call(tmp_path, dripping.origin + "/fhir", listed=("http://127.0.0.1",), seconds=1),
            "unknown host": _call(tmp_path, "https://no-such-host.invalid/fhir", seconds=1),
        }
    for why, r in messages.items():
        assert r.status_code == 412, (why, r.text)
    texts = {why: r.json()["message"] for why, r in messages.items()}
    assert len(set(texts.values())) == 1, texts
    assert "within 1 s" in texts["timeout"]


def _untied(original: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for rid, subject in [
        ("by-identifier", {"identifier": {"system": "urn:mrn", "value": PID}}),
        ("by-display", {"display": "The patient"}),
        ("other-server", {"reference": f"https://elsewhere.example/fhir/Patient/{PID}"}),
        ("dangling", {"reference": "urn:uuid:6f1c4e2a-0000-4000-8000-000000000000"}),
        ("no-subject", None),
    ]:
        copied = copy.deepcopy(original)
        copied["id"] = rid
        copied.pop("subject", None)
        if subject is not None:
            copied["subject"] = subject
        out.append(copied)
    return out


def test_prefetch_resources_not_tied_to_the_patient_are_left_out_and_named() -> None:
    prefetch = full_prefetch(sandbox_chart(PID))
    key, bundle = next((k, v) for k, v in prefetch.items()
                       if isinstance(v, dict) and v.get("resourceType") == "Bundle"
                       and any(e["resource"]["resourceType"] == "Observation" for e in v["entry"]))
    original = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    bundle["entry"] += [{"resource": r} for r in _untied(original)]
    request = parse_request(json.dumps(body("patient-view", [], patient_id=PID, prefetch=prefetch,
                                            fhirServer="https://ehr.example.org/fhir")).encode(),
                            SERVICES["azaguard-patient-view"])
    got = assemble(request, Templates(MAPPINGS), MAPPINGS, NOW, default_client_factory())
    index = set(got.resources.index)
    assert f"Observation/{original['id']}" in index
    untied = [f"Observation/{r['id']}" for r in _untied(original)]
    assert not index & set(untied)
    note = next(n for n in got.notes if key in n and "left out" in n)
    assert all(name in note for name in untied), note


def test_the_prefetch_servers_own_absolute_reference_is_this_patient() -> None:
    prefetch = full_prefetch(sandbox_chart(PID))
    bundle = next(v for v in prefetch.values()
                  if isinstance(v, dict) and v.get("resourceType") == "Bundle"
                  and any(e["resource"]["resourceType"] == "Observation" for e in v["entry"]))
    original = next(e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")
    original["subject"] = {"reference": f"https://ehr.example.org/fhir/Patient/{PID}"}
    request = parse_request(json.dumps(body("patient-view", [], patient_id=PID, prefetch=prefetch,
                                            fhirServer="https://ehr.example.org/fhir")).encode(),
                            SERVICES["azaguard-patient-view"])
    got = assemble(request, Templates(MAPPINGS), MAPPINGS, NOW, default_client_factory())
    assert f"Observation/{original['id']}" in set(got.resources.index)
