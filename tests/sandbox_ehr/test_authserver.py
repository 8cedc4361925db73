"""The authorization server's protocol, driven by the test as the app (no FHIR server needed)."""

from __future__ import annotations

import base64

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.sandbox_ehr.helpers import (
    FHIR,
    PUBLIC,
    REDIRECT,
    V2,
    FakeClock,
    app_config,
    authorize,
    ctx,
    ehr_client,
    exchange,
    launch_id,
    launch_token,
    pkce,
    redirect_params,
)


def test_discovery_document() -> None:
    with ehr_client() as client:
        doc = client.get("/ehr/fhir/.well-known/smart-configuration").json()
    assert doc["issuer"] == FHIR
    assert doc["authorization_endpoint"] == f"{PUBLIC}/ehr/auth/authorize"
    assert doc["token_endpoint"] == f"{PUBLIC}/ehr/auth/token"
    assert doc["jwks_uri"] == f"{PUBLIC}/ehr/auth/jwks"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert set(doc["grant_types_supported"]) == {"authorization_code", "refresh_token", "client_credentials"}
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]  # SMART Backend Services
    assert set(doc["token_endpoint_auth_signing_alg_values_supported"]) == {"RS384", "ES384"}
    assert {"client_secret_basic", "none"} <= set(doc["token_endpoint_auth_methods_supported"])
    assert {
        "launch-ehr",
        "launch-standalone",
        "client-public",
        "client-confidential-symmetric",
        "context-ehr-patient",
        "context-standalone-patient",
        "context-banner",
        "permission-v2",
        "permission-v1",
        "permission-patient",
        "sso-openid-connect",
        "permission-offline",
    } <= set(doc["capabilities"])
    assert {"launch", "openid", "fhirUser", "patient/Observation.rs"} <= set(doc["scopes_supported"])


def test_ehr_launch_code_flow_with_pkce() -> None:
    with ehr_client() as client:
        pair = pkce()
        back = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))
        assert back["state"] == "state-123"
        response = exchange(client, back["code"], pair.verifier)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        token = response.json()
        assert token["token_type"] == "Bearer"
        assert token["expires_in"] == 3600
        assert token["patient"] == "p1"
        assert token["need_patient_banner"] is True
        assert token["refresh_token"]
        assert token["scope"].split() == V2.split()
        assert ctx(client).auth.store.access_token(token["access_token"]).patient == "p1"  # type: ignore[union-attr]

        keys = KeySet.import_key_set(client.get("/ehr/auth/jwks").json())
        id_token = jwt.decode(token["id_token"], keys, algorithms=["RS256"])
    assert id_token.header["alg"] == "RS256"
    claims = id_token.claims
    assert claims["iss"] == FHIR
    assert claims["aud"] == "azaguard"
    assert claims["sub"] == "sandbox-clinician"
    assert claims["fhirUser"] == f"{FHIR}/Practitioner/sandbox-clinician"
    assert claims["exp"] > claims["iat"]


def test_a_refresh_token_only_for_online_or_offline_access() -> None:
    """As smart-launcher-v2 and real servers: no online_access/offline_access asked, no refresh token."""
    without = " ".join(s for s in V2.split() if s != "online_access")
    with ehr_client() as client:
        assert "refresh_token" not in launch_token(client, "p1", scope=without)
        assert launch_token(client, "p1", scope=without + " online_access")["refresh_token"]
    plain = app_config()
    offline = plain.model_copy(update={"refresh_scope": "offline_access",
                                       "scopes": plain.scopes.model_copy(update={"v2": without})})
    with ehr_client(config=offline) as client:
        token = launch_token(client, "p1", scope=without + " offline_access")
        assert token["refresh_token"] and "offline_access" in token["scope"].split()
        assert "refresh_token" not in launch_token(client, "p1", scope=without + " online_access")  # not registered


def test_smart_launcher_style_id_token_has_a_relative_fhir_user_and_no_name() -> None:
    with ehr_client(user_claims="smart-launcher") as client:
        token = launch_token(client, "p1")
        keys = KeySet.import_key_set(client.get("/ehr/auth/jwks").json())
    claims = jwt.decode(token["id_token"], keys, algorithms=["RS256"]).claims
    assert claims["fhirUser"] == claims["profile"] == "Practitioner/sandbox-clinician"
    assert "name" not in claims and "zoneinfo" not in claims


def test_no_id_token_without_openid_fhiruser() -> None:
    with ehr_client() as client:
        token = launch_token(client, "p1", scope="launch patient/Patient.rs")
    assert "id_token" not in token
    assert token["scope"] == "launch patient/Patient.rs"


def test_granted_scope_is_requested_intersect_supported_and_narrowed_by_filter() -> None:
    def no_writes(scope: str) -> str:
        return " ".join(s for s in scope.split() if not s.endswith(".cruds")) + " patient/Extra.rs"

    with ehr_client(granted_scope_filter=no_writes) as client:
        token = launch_token(client, "p1", scope="launch patient/Observation.rs patient/Flag.cruds system/*.rs bogus")
    assert token["scope"] == "launch patient/Observation.rs"


def test_wrong_verifier_is_invalid_grant() -> None:
    with ehr_client() as client:
        pair = pkce()
        code = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))["code"]
        response = exchange(client, code, pkce().verifier)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


def test_replayed_code_is_invalid_grant_and_revokes_its_token() -> None:
    with ehr_client() as client:
        pair = pkce()
        code = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))["code"]
        first = exchange(client, code, pair.verifier)
        assert first.status_code == 200
        again = exchange(client, code, pair.verifier)
        assert again.status_code == 400
        assert again.json()["error"] == "invalid_grant"
        assert ctx(client).auth.store.access_token(first.json()["access_token"]) is None


def test_code_expires_after_ten_minutes() -> None:
    clock = FakeClock()
    with ehr_client(clock=clock) as client:
        pair = pkce()
        code = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))["code"]
        clock.advance(601)
        response = exchange(client, code, pair.verifier)
    assert response.json()["error"] == "invalid_grant"


def test_token_redirect_uri_must_match_the_authorize_one() -> None:
    with ehr_client() as client:
        pair = pkce()
        code = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))["code"]
        response = exchange(client, code, pair.verifier, redirect_uri=f"{REDIRECT}/other")
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "overrides",
    [
        {"redirect_uri": "http://127.0.0.1:8477/app/callback/"},  # not an exact match
        {"redirect_uri": "http://evil.example/callback"},
        {"redirect_uri": None},
        {"client_id": "someone-else"},
        {"client_id": None},
    ],
)
def test_unknown_client_or_redirect_uri_gets_an_error_page_never_a_redirect(overrides: dict[str, str | None]) -> None:
    with ehr_client() as client:
        response = authorize(client, pkce(), launch=launch_id(client, "p1"), **overrides)
    assert response.status_code in (400, 401)
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert "Authorization request refused" in response.text


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"aud": None}, "invalid_request"),
        ({"aud": "http://127.0.0.1:9999/fhir"}, "invalid_request"),
        ({"code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"launch": "not-a-launch"}, "invalid_request"),
    ],
)
def test_bad_requests_redirect_back_with_error_and_state(overrides: dict[str, str | None], error: str) -> None:
    with ehr_client() as client:
        params = {"launch": launch_id(client, "p1"), **overrides}
        back = redirect_params(authorize(client, pkce(), **params))
    assert back["error"] == error
    assert back["state"] == "state-123"
    assert "code" not in back


def test_plain_pkce_code_cannot_be_exchanged_with_verifier_as_challenge() -> None:
    with ehr_client() as client:
        pair = pkce()
        back = redirect_params(
            authorize(
                client,
                pair,
                launch=launch_id(client, "p1"),
                code_challenge=pair.verifier,
                code_challenge_method="plain",
            )
        )
    assert back["error"] == "invalid_request"


def test_launch_is_single_use_and_expires() -> None:
    clock = FakeClock()
    with ehr_client(clock=clock) as client:
        launch = launch_id(client, "p1")
        assert "code" in redirect_params(authorize(client, pkce(), launch=launch))
        assert redirect_params(authorize(client, pkce(), launch=launch))["error"] == "invalid_request"
        stale = launch_id(client, "p1")
        clock.advance(1801)
        assert redirect_params(authorize(client, pkce(), launch=stale))["error"] == "invalid_request"


def test_refresh_without_rotation_keeps_the_refresh_token() -> None:
    with ehr_client() as client:
        token = launch_token(client, "p1")
        form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "azaguard"}
        first = client.post("/ehr/auth/token", data=form)
        assert first.status_code == 200, first.text
        refreshed = first.json()
        assert refreshed["access_token"] != token["access_token"]
        assert refreshed["patient"] == "p1"
        assert refreshed["scope"] == token["scope"]
        assert "refresh_token" not in refreshed
        assert client.post("/ehr/auth/token", data=form).status_code == 200  # still valid
        narrower = client.post("/ehr/auth/token", data={**form, "scope": "patient/Patient.rs"}).json()
        assert narrower["scope"] == "patient/Patient.rs"
        wider = client.post("/ehr/auth/token", data={**form, "scope": "patient/*.cruds"})
        assert wider.json()["error"] == "invalid_scope"


def test_refresh_with_rotation_retires_the_old_refresh_token() -> None:
    with ehr_client(rotate_refresh_tokens=True) as client:
        token = launch_token(client, "p1")
        form = {"grant_type": "refresh_token", "refresh_token": token["refresh_token"], "client_id": "azaguard"}
        refreshed = client.post("/ehr/auth/token", data=form).json()
        assert refreshed["refresh_token"] != token["refresh_token"]
        assert client.post("/ehr/auth/token", data=form).json()["error"] == "invalid_grant"
        again = client.post("/ehr/auth/token", data={**form, "refresh_token": refreshed["refresh_token"]})
        assert again.status_code == 200


def test_refresh_token_of_another_client_or_garbage_is_refused() -> None:
    with ehr_client() as client:
        form = {"grant_type": "refresh_token", "refresh_token": "nonsense", "client_id": "azaguard"}
        assert client.post("/ehr/auth/token", data=form).json()["error"] == "invalid_grant"


def test_confidential_client_must_authenticate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("H6_TEST_SECRET", "s3cret-value")
    with ehr_client(config=app_config("confidential-symmetric")) as client:
        pair = pkce()
        code = redirect_params(authorize(client, pair, launch=launch_id(client, "p1")))["code"]
        unauthenticated = exchange(client, code, pair.verifier)
        assert unauthenticated.json()["error"] == "invalid_client"
        basic = base64.b64encode(b"azaguard:wrong").decode()
        wrong = client.post(
            "/ehr/auth/token",
            headers={"Authorization": f"Basic {basic}"},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": pair.verifier,
            },
        )
        assert wrong.json()["error"] == "invalid_client"
        basic = base64.b64encode(b"azaguard:s3cret-value").decode()
        right = client.post(
            "/ehr/auth/token",
            headers={"Authorization": f"Basic {basic}"},
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": pair.verifier,
            },
        )
    assert right.status_code == 200, right.text
    assert right.json()["patient"] == "p1"


def test_launcher_link_targets_the_app_launch_uri_with_iss_and_launch() -> None:
    with ehr_client() as client:
        url = ctx(client).launch_url("p1")
    assert url.startswith(f"{PUBLIC}/app/launch?iss=")
    assert "iss=http%3A%2F%2F127.0.0.1%3A8477%2Fehr%2Ffhir" in url
    assert "&launch=" in url
