"""Drive the sandbox EHR's SMART flow by hand (the test is the app): PKCE, authorize, token, proxy."""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from azaguard.config import AppConfig, Scopes
from azaguard.fhir.catalogue import launch_scopes
from azaguard.sandbox.ehr import create_ehr_app
from azaguard.sandbox.ehr.context import EhrContext

PUBLIC = "http://127.0.0.1:8477"
FHIR = f"{PUBLIC}/ehr/fhir"
REDIRECT = f"{PUBLIC}/app/callback"
UNREACHABLE = "http://127.0.0.1:9/fhir"  # for tests that never touch the upstream
# What azaguard asks for (fhir/catalogue.py), and a refresh token (online_access) as the app may add.
V2 = launch_scopes("v2") + " online_access"


class FakeClock:
    """Seconds since the epoch that only move when a test says so."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def app_config(client_type: str = "public") -> AppConfig:
    return AppConfig(
        client_id="azaguard",
        client_type=client_type,  # type: ignore[arg-type]
        client_secret_env="H6_TEST_SECRET" if client_type != "public" else None,
        redirect_uris=(REDIRECT,),
        launch_uri=f"{PUBLIC}/app/launch",
        scopes=Scopes(v2=V2, v1="launch patient/*.read"),
        allowed_iss=(FHIR,),
    )


def ehr_client(upstream: str = UNREACHABLE, config: AppConfig | None = None, **options: Any) -> TestClient:
    """A TestClient on a site with the simulator mounted at /ehr (as create_site mounts it)."""
    ehr_app = create_ehr_app(fhir_upstream=upstream, public_base=PUBLIC, app_config=config or app_config(), **options)
    site = Starlette(routes=[Mount("/ehr", app=ehr_app)])
    site.state.ehr = ehr_app.state.ehr
    return TestClient(site, base_url=PUBLIC, follow_redirects=False)


def ctx(client: TestClient) -> EhrContext:
    context: EhrContext = client.app.state.ehr  # type: ignore[attr-defined]
    return context


@dataclass
class Pkce:
    verifier: str
    challenge: str


def pkce() -> Pkce:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return Pkce(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


def launch_id(client: TestClient, patient_id: str) -> str:
    url = ctx(client).launch_url(patient_id)
    return parse_qs(urlsplit(url).query)["launch"][0]


def authorize(client: TestClient, pair: Pkce, **overrides: str | None) -> httpx.Response:
    params: dict[str, str | None] = {
        "response_type": "code",
        "client_id": "azaguard",
        "redirect_uri": REDIRECT,
        "scope": V2,
        "state": "state-123",
        "aud": FHIR,
        "code_challenge": pair.challenge,
        "code_challenge_method": "S256",
    }
    params.update(overrides)
    return client.get("/ehr/auth/authorize", params={k: v for k, v in params.items() if v is not None})


def redirect_params(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(f"{REDIRECT}?"), location
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def exchange(client: TestClient, code: str, verifier: str, **overrides: str) -> httpx.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": "azaguard",
        "code_verifier": verifier,
    }
    form.update(overrides)
    return client.post("/ehr/auth/token", data=form)


def launch_token(client: TestClient, patient_id: str, scope: str = V2) -> dict[str, Any]:
    """A full EHR launch for `patient_id`: the token response."""
    pair = pkce()
    code = redirect_params(authorize(client, pair, launch=launch_id(client, patient_id), scope=scope))["code"]
    response = exchange(client, code, pair.verifier)
    assert response.status_code == 200, response.text
    token: dict[str, Any] = response.json()
    return token


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/fhir+json"}
