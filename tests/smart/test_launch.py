from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import RSAKey
from pytest_httpx import HTTPXMock

from azaguard.config import AppConfig, load_app_config
from azaguard.smart.discovery import SmartConfiguration
from azaguard.smart.jwks import JwksCache
from azaguard.smart.launch import (
    TokenError,
    TokenSet,
    authorize_url,
    can_read_alerts,
    can_write_alerts,
    exchange_code,
    permissions,
    read_identity,
    refresh,
    select_scope,
)

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
REPO_CONFIG = Path(__file__).resolve().parents[2] / "smart_launch.json"
ISS = "https://ehr.example.org/fhir"
TOKEN_URL = "https://ehr.example.org/auth/token"
JWKS_URL = "https://ehr.example.org/auth/jwks"


def _smart(capabilities: frozenset[str] = frozenset({"permission-v2"}), jwks: str | None = None) -> SmartConfiguration:
    return SmartConfiguration(
        iss=ISS,
        authorization_endpoint="https://ehr.example.org/auth/authorize",
        token_endpoint=TOKEN_URL,
        capabilities=capabilities,
        code_challenge_methods=("S256",),
        jwks_uri=jwks,
        issuer=ISS,
        source="well-known",
    )


@pytest.fixture
def config() -> AppConfig:
    return load_app_config(REPO_CONFIG)


def test_scope_v2_when_permission_v2_is_advertised(config: AppConfig) -> None:
    assert select_scope(config, frozenset({"permission-v2", "permission-v1"})) == config.scopes.v2 + " online_access"
    assert select_scope(config, frozenset({"permission-v1"})) == config.scopes.v1 + " online_access"
    assert select_scope(config, frozenset()) == config.scopes.v1 + " online_access"


def test_a_refresh_token_is_asked_for_online_by_default_offline_where_configured(config: AppConfig) -> None:
    """SMART 2: without online_access or offline_access a server gives no refresh token (smart-launcher-v2 does
    not), and the session dies with the first access token."""
    assert config.refresh_scope == "online_access"
    for capabilities in (frozenset({"permission-v2"}), frozenset()):
        words = select_scope(config, capabilities).split()
        assert words.count("online_access") == 1 and "offline_access" not in words
        assert "online_access" in select_scope(config, capabilities, standalone=True).split()
    offline = config.model_copy(update={"refresh_scope": "offline_access"})
    words = select_scope(offline, frozenset({"permission-v2"})).split()
    assert "offline_access" in words and "online_access" not in words
    none = config.model_copy(update={"refresh_scope": "none"})
    assert select_scope(none, frozenset({"permission-v2"})) == config.scopes.v2
    # Scopes that already ask for one are sent as written.
    asked = config.model_copy(update={"scopes": config.scopes.model_copy(update={"v2": "launch offline_access"})})
    assert select_scope(asked, frozenset({"permission-v2"})) == "launch offline_access"


def test_standalone_asks_for_launch_patient(config: AppConfig) -> None:
    scope = select_scope(config, frozenset({"permission-v2"}), standalone=True).split()
    assert "launch/patient" in scope
    assert "launch" not in scope


def test_authorize_url_carries_every_required_parameter(config: AppConfig) -> None:
    url = authorize_url(
        _smart(),
        client_id="azaguard",
        redirect_uri=config.redirect_uri,
        scope="launch openid",
        state="st",
        code_challenge="ch",
        launch="L1",
    )
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://ehr.example.org/auth/authorize"
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert q == {
        "response_type": "code",
        "client_id": "azaguard",
        "redirect_uri": config.redirect_uri,
        "scope": "launch openid",
        "state": "st",
        "aud": ISS,
        "code_challenge": "ch",
        "code_challenge_method": "S256",
        "launch": "L1",
    }


@pytest.mark.parametrize(
    ("granted", "writable"),
    [
        ("patient/DetectedIssue.cruds patient/Flag.cruds", True),
        ("patient/DetectedIssue.cu patient/Flag.cu", True),
        ("patient/DetectedIssue.write patient/Flag.write", True),
        ("patient/*.*", True),
        ("user/*.cruds", True),
        ("patient/DetectedIssue.rs patient/Flag.rs", False),
        ("patient/DetectedIssue.cruds", False),  # no Flag
        ("patient/DetectedIssue.c patient/Flag.c", False),  # cannot close a Flag
        ("patient/DetectedIssue.read patient/Flag.read", False),
        ("patient/DetectedIssue.cruds?category=x patient/Flag.cruds", False),
        ("", False),
    ],
)
def test_granted_scope_decides_whether_alerts_can_be_written(granted: str, writable: bool) -> None:
    assert can_write_alerts(granted) is writable


@pytest.mark.parametrize(
    ("granted", "readable"),
    [
        ("patient/DetectedIssue.rs patient/Flag.rs", True),
        ("patient/DetectedIssue.read patient/Flag.read", True),
        ("patient/*.read", True),
        ("patient/DetectedIssue.rs", False),  # no Flag
        ("patient/DetectedIssue.r patient/Flag.r", False),  # read by id, not search
        ("patient/Observation.rs", False),
    ],
)
def test_granted_scope_decides_whether_existing_alerts_are_asked_for(granted: str, readable: bool) -> None:
    assert can_read_alerts(granted) is readable


def test_permissions_read_v1_and_v2() -> None:
    assert permissions("patient/Observation.rs", "Observation") == {"r", "s"}
    assert permissions("patient/Observation.read", "Observation") == {"r", "s"}
    assert permissions("patient/Observation.read", "Flag") == set()


def _token_body(**extra: object) -> dict[str, object]:
    body: dict[str, object] = {
        "access_token": "AT1",
        "token_type": "Bearer",
        "expires_in": 3600,
        "patient": "p1",
        "scope": "launch patient/Observation.rs",
        "need_patient_banner": True,
        "refresh_token": "RT1",
    }
    body.update(extra)
    return body


def test_public_client_exchanges_code_with_client_id_and_verifier(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    httpx_mock.add_response(url=TOKEN_URL, method="POST", json=_token_body())
    with httpx.Client() as http:
        tokens = exchange_code(
            http,
            config,
            _smart(),
            code="C",
            code_verifier="V",
            redirect_uri=config.redirect_uri,
            requested_scope="launch patient/*.cruds",
            now=NOW,
        )
    form = parse_qs(httpx_mock.get_request().content.decode())
    assert form == {
        "grant_type": ["authorization_code"],
        "code": ["C"],
        "redirect_uri": [config.redirect_uri],
        "code_verifier": ["V"],
        "client_id": ["azaguard"],
    }
    assert "authorization" not in httpx_mock.get_request().headers
    assert tokens.patient == "p1"
    assert tokens.scope == "launch patient/Observation.rs"  # granted, not requested
    assert tokens.expires_at == NOW + timedelta(hours=1)
    assert tokens.need_patient_banner is True
    assert "AT1" not in repr(tokens) and "RT1" not in repr(tokens)


def test_confidential_client_authenticates_with_basic(
    httpx_mock: HTTPXMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(REPO_CONFIG.read_text())
    data.update(client_type="confidential-symmetric", client_secret_env="AZ_SECRET")
    (tmp_path / "c.json").write_text(json.dumps(data))
    monkeypatch.setenv("AZ_SECRET", "p@ss word")
    config = load_app_config(tmp_path / "c.json")
    httpx_mock.add_response(url=TOKEN_URL, method="POST", json=_token_body())
    with httpx.Client() as http:
        exchange_code(
            http,
            config,
            _smart(),
            code="C",
            code_verifier="V",
            redirect_uri=config.redirect_uri,
            requested_scope="x",
            now=NOW,
        )
    request = httpx_mock.get_request()
    assert request.headers["authorization"] == "Basic " + base64.b64encode(b"azaguard:p%40ss%20word").decode()
    assert "client_id" not in parse_qs(request.content.decode())


def test_token_endpoint_error_is_reported_as_said(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    httpx_mock.add_response(
        url=TOKEN_URL,
        method="POST",
        status_code=400,
        json={"error": "invalid_grant", "error_description": "code already used"},
    )
    with httpx.Client() as http, pytest.raises(TokenError) as info:
        exchange_code(
            http,
            config,
            _smart(),
            code="C",
            code_verifier="V",
            redirect_uri=config.redirect_uri,
            requested_scope="x",
            now=NOW,
        )
    assert (info.value.error, info.value.description, info.value.status) == ("invalid_grant", "code already used", 400)


@pytest.mark.parametrize(
    "body", [_token_body(patient=None), _token_body(token_type="mac"), _token_body(access_token="")]
)
def test_unusable_token_responses_are_refused(
    httpx_mock: HTTPXMock, config: AppConfig, body: dict[str, object]
) -> None:
    httpx_mock.add_response(url=TOKEN_URL, method="POST", json={k: v for k, v in body.items() if v is not None})
    with httpx.Client() as http, pytest.raises(TokenError):
        exchange_code(
            http,
            config,
            _smart(),
            code="C",
            code_verifier="V",
            redirect_uri=config.redirect_uri,
            requested_scope="x",
            now=NOW,
        )


def _held() -> TokenSet:
    return TokenSet(
        access_token="AT1",
        scope="launch patient/Flag.cruds",
        patient="p1",
        need_patient_banner=False,
        expires_at=NOW,
        refresh_token="RT1",
        id_token="ID1",
    )


def test_refresh_keeps_the_old_refresh_token_and_context(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    httpx_mock.add_response(
        url=TOKEN_URL, method="POST", json={"access_token": "AT2", "token_type": "bearer", "expires_in": 60}
    )
    with httpx.Client() as http:
        tokens = refresh(http, config, _smart(), _held(), NOW)
    assert parse_qs(httpx_mock.get_request().content.decode())["refresh_token"] == ["RT1"]
    assert (tokens.access_token, tokens.refresh_token, tokens.patient) == ("AT2", "RT1", "p1")
    assert tokens.need_patient_banner is False
    assert tokens.scope == "launch patient/Flag.cruds"
    assert tokens.expires_at == NOW + timedelta(seconds=60)


def test_refresh_takes_a_rotated_refresh_token(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    httpx_mock.add_response(url=TOKEN_URL, method="POST", json=_token_body(access_token="AT2", refresh_token="RT2"))
    with httpx.Client() as http:
        assert refresh(http, config, _smart(), _held(), NOW).refresh_token == "RT2"


def test_needs_refresh_before_expiry() -> None:
    held = _held()
    assert held.needs_refresh(NOW - timedelta(seconds=30))
    assert not held.needs_refresh(NOW - timedelta(minutes=5))


def _signed_id_token(key: RSAKey, **claims: object) -> str:
    base: dict[str, object] = {
        "iss": ISS,
        "aud": "azaguard",
        "sub": "u1",
        "iat": int(NOW.timestamp()),
        "exp": int((NOW + timedelta(minutes=5)).timestamp()),
        "fhirUser": f"{ISS}/Practitioner/sandbox-clinician",
    }
    base.update(claims)
    return jwt.encode({"alg": "RS256", "kid": "k1"}, base, key)


def test_id_token_signature_is_verified_against_the_jwks(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    httpx_mock.add_response(url=JWKS_URL, json={"keys": [key.as_dict(private=False)]}, is_reusable=True)
    with httpx.Client() as http:
        good = read_identity(http, config, _smart(jwks=JWKS_URL), _signed_id_token(key), NOW)
        wrong_aud = read_identity(http, config, _smart(jwks=JWKS_URL), _signed_id_token(key, aud="other"), NOW)
        other_key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
        forged = read_identity(http, config, _smart(jwks=JWKS_URL), _signed_id_token(other_key), NOW)
    assert good.verified and good.fhir_user == f"{ISS}/Practitioner/sandbox-clinician"
    assert not wrong_aud.verified and wrong_aud.fhir_user is None and wrong_aud.problem
    assert not forged.verified and forged.fhir_user is None


def test_logins_share_one_jwks_cache(httpx_mock: HTTPXMock, config: AppConfig) -> None:
    """The id_token's keys come from the process's one JWK Set cache: two logins, one fetch."""
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    httpx_mock.add_response(url=JWKS_URL, json={"keys": [key.as_dict(private=False)]}, is_reusable=True)
    with httpx.Client() as http:
        keys = JwksCache(http=http)
        try:
            first = read_identity(http, config, _smart(jwks=JWKS_URL), _signed_id_token(key), NOW, keys)
            second = read_identity(http, config, _smart(jwks=JWKS_URL), _signed_id_token(key), NOW, keys)
        finally:
            keys.close()
    assert first.verified and second.verified
    assert len(httpx_mock.get_requests(url=JWKS_URL)) == 1


def test_id_token_is_read_unverified_without_jwks(config: AppConfig) -> None:
    key = RSAKey.generate_key(2048, parameters={"kid": "k1"})
    with httpx.Client() as http:
        identity = read_identity(http, config, _smart(jwks=None), _signed_id_token(key), NOW)
    assert identity.fhir_user == f"{ISS}/Practitioner/sandbox-clinician"
    assert not identity.verified


def test_a_patient_launch_asks_the_patient_scopes_in_the_servers_syntax() -> None:
    from azaguard.config import load_app_config
    from azaguard.smart.launch import select_scope

    config = load_app_config()
    assert config.patient_scopes is not None
    v2 = select_scope(config, frozenset({"permission-v2"}), standalone=True, scopes=config.patient_scopes)
    v1 = select_scope(config, frozenset(), standalone=True, scopes=config.patient_scopes)
    assert {"launch/patient", "openid", "fhirUser", "patient/Observation.crus"} <= set(v2.split())
    assert {"launch/patient", "openid", "fhirUser", "patient/Observation.read"} <= set(v1.split())


@pytest.mark.parametrize(
    ("fhir_user", "patient"),
    [
        ("https://ehr.example.org/fhir/Patient/123", True),
        ("Patient/123", True),  # relative fhirUser
        ("https://ehr.example.org/fhir/RelatedPerson/9", True),
        ("https://ehr.example.org/fhir/Practitioner/7", False),
        (None, False),
    ],
)
def test_a_patient_user_is_told_by_fhir_user(fhir_user: str | None, patient: bool) -> None:
    from azaguard.smart.launch import Identity, is_patient_user

    assert is_patient_user(Identity(fhir_user, "sub", verified=True)) is patient
