"""SMART Backend Services end to end: the scan gets a system/ token from the sandbox EHR and scans
through its token-checking proxy; the authorization server refuses bad assertions with a reason."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey, RSAKey

from azaguard.config import load_app_config
from azaguard.mappings import load_mappings
from azaguard.sandbox.ehr.backend import BackendClient
from azaguard.sandbox.site import create_site
from azaguard.smart.backend import ASSERTION_TYPE, BackendAuthError, BackendServicesAuth, load_private_key
from tests.scan.conftest import Loaded, scan

pytestmark = pytest.mark.integration
CLIENT = "azaguard-scan"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sandbox:
    fhir: str
    rsa_pem: Path
    ec_jwks: Path
    other_pem: Path


@pytest.fixture(scope="module")
def sandbox(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    keys = tmp_path_factory.mktemp("keys")
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})
    ec = ECKey.generate_key("P-384", parameters={"kid": "ec-1"})
    impostor = RSAKey.generate_key(2048, parameters={"kid": "rsa-1"})  # same kid, not the registered key
    (keys / "rsa.pem").write_bytes(rsa.as_pem(private=True))
    (keys / "other.pem").write_bytes(impostor.as_pem(private=True))
    (keys / "ec.jwks.json").write_text(json.dumps({"keys": [ec.as_dict(private=True)]}))
    port = _free_port()
    public = f"http://127.0.0.1:{port}"
    site = create_site(fhir_upstream=loaded.base_url, public_base=public,
                       app_config=load_app_config(public_base=public), mappings=load_mappings())
    jwks = {"keys": [rsa.as_dict(private=False), ec.as_dict(private=False)]}
    site.state.ehr.backend.register(BackendClient(CLIENT, jwks, allowed_scope="system/*.rs system/*.cruds"))
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        try:
            httpx.get(f"{public}/ehr/fhir/.well-known/smart-configuration", timeout=1.0)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield Sandbox(f"{public}/ehr/fhir", keys / "rsa.pem", keys / "ec.jwks.json", keys / "other.pem")
    server.should_exit = True
    thread.join(timeout=10)


def test_scan_through_the_sandbox_with_a_backend_services_token(
    sandbox: Sandbox, loaded: Loaded, tmp_path: Path
) -> None:
    result = scan(["--fhir-url", sandbox.fhir, "--client-id", CLIENT, "--private-key", str(sandbox.rsa_pem),
                   "--kid", "rsa-1"], tmp_path)
    assert result.code == 0, result.stderr
    assert set(result.by_patient) == loaded.on_azathioprine
    assert all(line["outcome"] == "evaluated" for line in result.lines)
    auth = json.loads((tmp_path / "run.json").read_text())["parameters"]["authorization"]
    assert "RS384" in auth and "system/Patient.rs" in auth


def test_es384_key_from_a_jwk_set_gets_v2_system_scopes(sandbox: Sandbox) -> None:
    auth = BackendServicesAuth(sandbox.fhir, CLIENT, load_private_key(sandbox.ec_jwks))
    first = auth.token()
    assert auth.client_key.alg == "ES384" and auth.v2
    assert "system/Observation.rs" in auth.granted_scope.split()
    assert auth.token() == first and auth.tokens_issued == 1  # cached until shortly before it expires
    response = httpx.get(f"{sandbox.fhir}/Observation", params={"code": "http://loinc.org|6690-2", "_count": "1"},
                         headers={"Authorization": f"Bearer {first}"})
    assert response.status_code == 200
    # Read-only scopes: a write is refused.
    response = httpx.post(f"{sandbox.fhir}/Flag", json={"resourceType": "Flag"},
                          headers={"Authorization": f"Bearer {first}", "Content-Type": "application/fhir+json"})
    assert response.status_code == 403


def test_wrong_key_is_refused_with_a_clear_error(sandbox: Sandbox, tmp_path: Path) -> None:
    result = scan(["--fhir-url", sandbox.fhir, "--client-id", CLIENT, "--private-key", str(sandbox.other_pem),
                   "--kid", "rsa-1"], tmp_path)
    assert result.code == 3
    assert "invalid_client" in result.stderr and "signature" in result.stderr
    with pytest.raises(BackendAuthError, match="unknown client"):
        BackendServicesAuth(sandbox.fhir, "nobody", load_private_key(sandbox.rsa_pem, "rsa-1")).token()


def _token_request(auth: BackendServicesAuth, assertion: str) -> httpx.Response:
    assert auth.token_endpoint is not None
    return httpx.post(auth.token_endpoint, data={
        "grant_type": "client_credentials", "scope": "system/Patient.rs",
        "client_assertion_type": ASSERTION_TYPE, "client_assertion": assertion,
    })


@pytest.mark.parametrize(("case", "reason"), [
    ("expired", "expired"),
    ("too-long", "five minutes"),
    ("wrong-audience", "aud"),
    ("replayed", "already used"),
    ("not-a-jwt", "not a JWT"),
    ("hmac", "RS384 or ES384"),
    ("wrong-sub", "sub"),
])
def test_bad_assertions_are_refused(sandbox: Sandbox, case: str, reason: str) -> None:
    auth = BackendServicesAuth(sandbox.fhir, CLIENT, load_private_key(sandbox.rsa_pem, "rsa-1"))
    auth.discover()
    if case == "expired":
        assertion = auth.assertion(lifetime=-120)
    elif case == "too-long":
        assertion = auth.assertion(lifetime=3600)
    elif case == "wrong-audience":
        assertion = auth.assertion(audience=sandbox.fhir)  # the FHIR base, not the token endpoint
    elif case == "not-a-jwt":
        assertion = "not.a.jwt"
    elif case == "hmac":  # a shared-secret signature must never pass for a key-based client
        assertion = jwt.encode({"alg": "HS256", "kid": "rsa-1"}, {"iss": CLIENT, "sub": CLIENT},
                               OctKey.import_key("x" * 32), algorithms=["HS256"])
    elif case == "wrong-sub":
        key = auth.client_key
        now = int(time.time())
        assertion = jwt.encode({"alg": key.alg, "kid": key.kid}, {"iss": CLIENT, "sub": "someone-else",
                               "aud": auth.token_endpoint, "exp": now + 60, "jti": f"j{now}"}, key.key,
                               algorithms=[key.alg])
    else:
        assertion = auth.assertion()
        assert _token_request(auth, assertion).status_code == 200
    response = _token_request(auth, assertion)
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_client" and reason in body["error_description"]


def test_group_export_through_the_sandbox_needs_and_sends_the_token(
    sandbox: Sandbox, loaded: Loaded, tmp_path: Path
) -> None:
    group = {"resourceType": "Group", "id": "scan-bulk", "type": "person", "actual": True,
             "member": [{"entity": {"reference": "Patient/aza-febrile-c"}},
                        {"entity": {"reference": "Patient/aza-not-on"}},
                        {"entity": {"reference": "Patient/aza-medication-reference"}}]}
    assert httpx.put(f"{loaded.base_url}/Group/scan-bulk", json=group,
                     headers={"Content-Type": "application/fhir+json"}).status_code in (200, 201)
    result = scan(["--fhir-url", sandbox.fhir, "--bulk", "--group", "scan-bulk", "--client-id", CLIENT,
                   "--private-key", str(sandbox.ec_jwks)], tmp_path)
    assert result.code == 0, result.stderr
    assert set(result.by_patient) == {"aza-febrile-c", "aza-medication-reference"}  # aza-not-on: not on it
    assert result.by_patient["aza-febrile-c"]["statuses"]["infection-hold"] == "hold"
    # A Group export holds no Medication resources: the order is kept as one that may be azathioprine
    # (its Medication is not in the export); its reference's display names it, so the rules still apply.
    run_info = json.loads((tmp_path / "run.json").read_text())
    assert "0 Medications in the export" in " ".join(run_info["discovery"]["steps"])
    assert set(result.by_patient["aza-medication-reference"]["statuses"].values()) == {"ok"}
    # Without a token the proxy refuses the kick-off.
    assert httpx.get(f"{sandbox.fhir}/$export", headers={"Prefer": "respond-async"}).status_code == 401


def test_report_link_target_launches_the_app_for_the_patient(sandbox: Sandbox) -> None:
    ehr = sandbox.fhir.removesuffix("/fhir")
    response = httpx.get(f"{ehr}/launch/aza-febrile-c")
    assert response.status_code == 302 and "launch=" in response.headers["location"]
    assert httpx.get(f"{ehr}/launch/bad%20id").status_code == 400


def test_write_through_the_sandbox_is_idempotent_and_tokens_are_renewed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("aza-febrile-c\naza-stable\n")
    argv = ["--fhir-url", sandbox.fhir, "--client-id", CLIENT, "--private-key", str(sandbox.rsa_pem),
            "--kid", "rsa-1", "--patients", str(ids), "--write"]
    first = scan(argv, tmp_path / "one")
    assert first.code == 0, first.stderr
    assert first.by_patient["aza-febrile-c"]["writes"].get("created", 0) >= 1
    again = scan(argv, tmp_path / "two")
    assert again.code == 0, again.stderr
    assert "created" not in again.by_patient["aza-febrile-c"]["writes"]  # nothing written twice
    assert again.by_patient["aza-febrile-c"]["writes"].get("exists", 0) >= 1


def test_token_is_renewed_before_it_expires(sandbox: Sandbox) -> None:
    auth = BackendServicesAuth(sandbox.fhir, CLIENT, load_private_key(sandbox.rsa_pem, "rsa-1"))
    first = auth.token()
    assert auth.token() == first and auth.tokens_issued == 1  # cached
    auth._expires_at = time.time() + 30
    second = auth.token()
    assert second != first and auth.tokens_issued == 2
    assert httpx.get(f"{sandbox.fhir}/Patient/aza-stable", headers={"Authorization": f"Bearer {second}"}).is_success
