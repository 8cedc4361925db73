"""Trusting CDS Clients: only a fresh JWT signed (RS384/ES384) by a registered client's key, for this
endpoint, passes; everything else is 401 and nothing is evaluated."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from joserfc import jwt
from joserfc.jwk import ECKey, OctKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.trust import JwksCache
from azaguard.config import AppConfig, CdsClient
from tests.cds.conftest import BASE, EHR_ISS, Ehr
from tests.cds.hookdata import body, sandbox_chart
from tests.cds.sandbox_build import SANDBOX_ISS, SANDBOX_JKU, sandbox_jwks, sandbox_private_key

PATH = "/cds-services/azaguard-patient-view"

AUD = BASE + PATH


def _post(client: TestClient, token: str | None) -> httpx.Response:
    b = json.dumps(body("patient-view", sandbox_chart("aza-mmr-due"), patient_id="aza-mmr-due"))
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    return client.post(PATH, content=b, headers=headers)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_good_jwt_es384_and_rs384(client: TestClient, ehr: Ehr) -> None:
    assert _post(client, ehr.token(AUD)).status_code == 200
    assert _post(client, ehr.token(AUD, alg="RS384")).status_code == 200
    assert _post(client, ehr.token([AUD, "https://other.example"])).status_code == 200  # type: ignore[arg-type]


def test_refused_jwts(client: TestClient, ehr: Ehr) -> None:
    stranger = ECKey.generate_key("P-384", parameters={"kid": "ehr-ec"})  # same kid, other key
    stranger_kid = ECKey.generate_key("P-384", parameters={"kid": "not-registered"})
    now = time.time()
    cases = {
        "no token": None,
        "not a jwt": "abc.def",
        "wrong key": ehr.token(AUD, key=stranger),
        "wrong aud": ehr.token(BASE + "/cds-services/azaguard-order-sign"),
        "expired": ehr.token(AUD, now=now - 600, lifetime=300),
        "issued in the future": ehr.token(AUD, now=now + 600),
        "too long-lived": ehr.token(AUD, lifetime=86400),
        "unknown iss": ehr.token(AUD, iss="https://evil.example"),
        "own key, unlisted jku": ehr.token(AUD, key=stranger_kid, header={"jku": "https://evil.example/jwks"}),
        "alg none": _b64({"alg": "none", "typ": "JWT"}) + "." + _b64(
            {"iss": EHR_ISS, "aud": AUD, "iat": int(now), "exp": int(now) + 60, "jti": "n1"}) + ".",
        "HS384": jwt.encode({"alg": "HS384", "kid": "ehr-ec"},
                            {"iss": EHR_ISS, "aud": AUD, "iat": int(now), "exp": int(now) + 60, "jti": "h1"},
                            OctKey.import_key(b"a-shared-secret-of-enough-length-000000000000"), algorithms=["HS384"]),
    }
    for name, token in cases.items():
        r = _post(client, token)
        assert r.status_code == 401, (name, r.text)
        assert "cards" not in r.json()


def test_a_replayed_jti_is_refused_even_by_another_replica(
    client: TestClient, ehr: Ehr, make_service: Callable[..., CdsService]
) -> None:
    token = ehr.token(AUD, jti="once-only")
    assert _post(client, token).status_code == 200
    assert _post(client, token).status_code == 401
    # A second process on the same database knows the id too.
    with TestClient(Starlette(routes=cds_routes(make_service()))) as replica:
        assert _post(replica, token).status_code == 401


def _jwks_transport(jwks: dict[str, Any], hits: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        return httpx.Response(200, json=jwks)

    return httpx.MockTransport(handler)


def test_jwks_url_and_an_allow_listed_jku(
    config: AppConfig, ehr: Ehr, make_service: Callable[..., CdsService]
) -> None:
    hits: list[str] = []
    rotated = ECKey.generate_key("P-384", parameters={"kid": "ehr-ec-2"})
    jwks = {"keys": [*ehr.jwks["keys"], rotated.as_dict(private=False)]}
    clients = (CdsClient(iss=EHR_ISS, jwks_url="https://ehr.example.org/jwks",
                         jku=("https://ehr.example.org/keys-2",)),)
    service = make_service(config=config.model_copy(update={"cds_clients": clients}),
                           jwks=JwksCache(_jwks_transport(jwks, hits)))
    with TestClient(Starlette(routes=cds_routes(service))) as c:
        assert _post(c, ehr.token(AUD)).status_code == 200
        assert _post(c, ehr.token(AUD)).status_code == 200
        assert hits == ["https://ehr.example.org/jwks"]  # cached
        # A registered key verifies: whatever the jku says (listed or not), it is never fetched.
        assert _post(c, ehr.token(AUD, header={"jku": "https://ehr.example.org/keys-2"})).status_code == 200
        assert _post(c, ehr.token(AUD, header={"jku": "https://ehr.example.org/keys-3"})).status_code == 200
        assert hits == ["https://ehr.example.org/jwks"]
    # A kid the registered set lacks: the allow-listed jku is fetched (after the jwks_url is re-read once).
    hits.clear()
    clients = (CdsClient(iss=EHR_ISS, jwks=ehr.jwks, jku=("https://ehr.example.org/keys-2",)),)
    service = make_service(config=config.model_copy(update={"cds_clients": clients}),
                           jwks=JwksCache(_jwks_transport(jwks, hits)))
    with TestClient(Starlette(routes=cds_routes(service))) as c:
        listed = {"jku": "https://ehr.example.org/keys-2"}
        assert _post(c, ehr.token(AUD, key=rotated, header=listed)).status_code == 200
        assert hits == ["https://ehr.example.org/keys-2"]
        # ... but an unlisted one is not, and neither is a listed one for a kid it does not hold.
        r = _post(c, ehr.token(AUD, key=rotated, header={"jku": "https://ehr.example.org/keys-3"}))
        assert r.status_code == 401 and "allow-list" in r.json()["message"]
        stray = ECKey.generate_key("P-384", parameters={"kid": "stray"})
        r = _post(c, ehr.token(AUD, key=stray, header={"jku": "https://ehr.example.org/keys-2"}))
        assert r.status_code == 401 and "jku" in r.json()["message"]
        # Fetched a moment ago: not fetched again for a kid it lacks (smart/jwks.py: re-fetches rate-limited).
        assert hits == ["https://ehr.example.org/keys-2"]


def _unreachable(hits: list[str]) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        hits.append(str(request.url))
        raise httpx.ConnectError("offline", request=request)

    return httpx.MockTransport(handler)


def test_an_unreachable_jku_is_no_refusal_when_the_inline_key_verifies(
    config: AppConfig, make_service: Callable[..., CdsService]
) -> None:
    """The official CDS Hooks sandbox: ES384, its kid, and a jku naming its public site (offline here).
    Its published key registered inline, as the README says: every call is trusted, nothing fetched."""
    sandbox, jku = sandbox_jwks(), SANDBOX_JKU
    for listed in ((), (jku,)):
        hits: list[str] = []
        clients = (CdsClient(iss=SANDBOX_ISS, jwks=sandbox, jku=listed),)
        service = make_service(config=config.model_copy(update={"cds_clients": clients}),
                               jwks=JwksCache(_unreachable(hits)))
        with TestClient(Starlette(routes=cds_routes(service))) as c:
            assert _post(c, _sandbox_token(AUD)).status_code == 200, listed
        assert hits == []
    # The same key not registered: refused, and an allow-listed jku that cannot be reached says so.
    hits = []
    other = ECKey.generate_key("P-384", parameters={"kid": "other"})
    clients = (CdsClient(iss=SANDBOX_ISS, jwks={"keys": [other.as_dict(private=False)]},
                         jku=(jku,)),)
    service = make_service(config=config.model_copy(update={"cds_clients": clients}),
                           jwks=JwksCache(_unreachable(hits)))
    with TestClient(Starlette(routes=cds_routes(service))) as c:
        r = _post(c, _sandbox_token(AUD))
    assert r.status_code == 401 and "could not be read" in r.json()["message"]
    assert hits == [jku]


def test_an_unreachable_jwks_url_falls_back_to_nothing_but_an_allow_listed_jku(
    config: AppConfig, ehr: Ehr, make_service: Callable[..., CdsService]
) -> None:
    hits: list[str] = []
    clients = (CdsClient(iss=EHR_ISS, jwks_url="https://ehr.example.org/jwks"),)
    service = make_service(config=config.model_copy(update={"cds_clients": clients}),
                           jwks=JwksCache(_unreachable(hits)))
    with TestClient(Starlette(routes=cds_routes(service))) as c:
        r = _post(c, ehr.token(AUD, header={"jku": "https://elsewhere.example/jwks"}))
    assert r.status_code == 401 and "allow-list" in r.json()["message"]
    assert hits == ["https://ehr.example.org/jwks"]


def _sandbox_token(aud: str) -> str:
    """A token as the sandbox build signs it (its key pair is public: tests/data/cds-hooks-sandbox)."""
    key = ECKey.import_key(sandbox_private_key())
    now = int(time.time())
    header = {"alg": "ES384", "typ": "JWT", "kid": "44823f3d-0b01-4a6c-a80e-b9d3e8a7226f",
              "jku": SANDBOX_JKU}
    claims = {"iss": SANDBOX_ISS, "aud": aud, "exp": now + 300, "iat": now,
              "jti": str(uuid.uuid4())}
    return jwt.encode(header, claims, key, algorithms=["ES384"])


def test_insecure_sandbox_mode_accepts_unsigned_calls_and_says_so(make_service: Callable[..., CdsService]) -> None:
    with TestClient(Starlette(routes=cds_routes(make_service(insecure=True)))) as c:
        r = _post(c, None)
    assert r.status_code == 200 and r.json()["cards"]
    assert "sandbox" in r.headers["X-Azaguard-Insecure"]
    # ... but an unauthenticated call cannot make it fetch from another host.
    b = body("patient-view", sandbox_chart("aza-mmr-due"), patient_id="aza-mmr-due", prefetch={},
             fhirServer="https://internal.example/fhir",
             fhirAuthorization={"access_token": "x", "token_type": "Bearer"})
    with TestClient(Starlette(routes=cds_routes(make_service(insecure=True)))) as c:
        assert c.post(PATH, content=json.dumps(b)).status_code == 412


def test_config_requires_one_key_source() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        CdsClient(iss=EHR_ISS)
    with pytest.raises(ValidationError):
        CdsClient(iss=EHR_ISS, jwks={"keys": []}, jwks_url="https://x.example/jwks")
