"""A minimal in-memory SMART EHR behind an httpx.MockTransport, for app tests that need no server.

It checks what a real authorization server checks (PKCE S256, single-use
codes, redirect_uri, aud, client_id) so that the app's side of each step is
exercised; the protocol against the real simulator is in test_smart_protocol.py.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from azaguard.smart.pkce import s256_challenge

ORIGIN = "http://127.0.0.1:8400"
ISS = f"{ORIGIN}/ehr/fhir"
AUTHORIZE = f"{ORIGIN}/ehr/auth/authorize"
TOKEN = f"{ORIGIN}/ehr/auth/token"


@dataclass
class FakeEhr:
    capabilities: list[str] = field(
        default_factory=lambda: ["launch-ehr", "launch-standalone", "permission-v2", "context-banner"]
    )
    patient: str = "p1"
    need_patient_banner: bool = True
    grant: str | None = None  # granted scope; None = as requested
    refresh_fails: bool = False
    offers_refresh: bool = True  # False: no refresh token at all (online_access not granted)
    requests: list[httpx.Request] = field(default_factory=list)
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    live_tokens: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=set)
    grants: list[str] = field(default_factory=list)  # grant_type of every token request

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    # -- the browser's leg: what the authorization endpoint would do --
    def authorize(self, location: str) -> str:
        """Approve the authorization request at `location`; return the code."""
        q = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        assert q["response_type"] == "code"
        assert q["aud"] == ISS
        assert q["code_challenge_method"] == "S256"
        code = secrets.token_urlsafe(8)
        self.codes[code] = q
        return code

    # -- the app's leg --
    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        url = str(request.url).split("?")[0]
        if url == f"{ISS}/.well-known/smart-configuration":
            return httpx.Response(
                200,
                json={
                    "authorization_endpoint": AUTHORIZE,
                    "token_endpoint": TOKEN,
                    "capabilities": self.capabilities,
                    "code_challenge_methods_supported": ["S256"],
                },
            )
        if url == TOKEN:
            return self._token(parse_qs(request.content.decode()))
        if url.startswith(ISS + "/"):
            auth = request.headers.get("authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in self.live_tokens:
                return httpx.Response(401, headers={"WWW-Authenticate": "Bearer"})
            if url == f"{ISS}/Patient/{self.patient}":
                return httpx.Response(200, json=patient_resource(self.patient))
            return httpx.Response(404)
        return httpx.Response(404)

    def _token(self, form: dict[str, list[str]]) -> httpx.Response:
        f = {k: v[0] for k, v in form.items()}
        self.grants.append(f.get("grant_type", ""))
        if f.get("grant_type") == "refresh_token":
            if self.refresh_fails or f.get("refresh_token") not in self.refresh_tokens:
                return httpx.Response(400, json={"error": "invalid_grant", "error_description": "refresh refused"})
            return httpx.Response(200, json=self._issue(scope=None, with_refresh=False))
        request = self.codes.pop(f.get("code", ""), None)
        if request is None:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "unknown or used code"})
        if s256_challenge(f.get("code_verifier", "")) != request["code_challenge"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "PKCE verification failed"})
        if f.get("redirect_uri") != request["redirect_uri"] or f.get("client_id") != request["client_id"]:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "client mismatch"})
        issued = self._issue(scope=self.grant or request["scope"], with_refresh=self.offers_refresh)
        return httpx.Response(200, json=issued)

    def _issue(self, *, scope: str | None, with_refresh: bool) -> dict[str, Any]:
        token = secrets.token_urlsafe(16)
        self.live_tokens.add(token)
        body: dict[str, Any] = {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
        if scope is not None:
            body.update(scope=scope, patient=self.patient, need_patient_banner=self.need_patient_banner)
        if with_refresh:
            rt = secrets.token_urlsafe(16)
            self.refresh_tokens.add(rt)
            body["refresh_token"] = rt
        return body

    def expire_all_access_tokens(self) -> None:
        self.live_tokens.clear()


def patient_resource(pid: str) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"given": ["Ada"], "family": "Lovelace"}],
        "gender": "female",
        "birthDate": "1970-03-04",
    }
