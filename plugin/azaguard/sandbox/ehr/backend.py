"""SMART Backend Services in the sandbox EHR: the client_credentials grant and `system/` tokens.

A registered backend client has a JWKS (public keys). Its token request carries a private_key_jwt
assertion that must be signed with RS384/ES384 by a registered key (found by `kid`), with
iss = sub = the client id, aud = this token endpoint, an exp in the future but at most five
minutes away, and a jti never seen before; otherwise `invalid_client` (401) and a reason.
The token it gets has no patient: the FHIR proxy lets it through by its `system/` scopes alone
(see `system_proxy`), including Bulk Data `$export`, its status and its files.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from azaguard.sandbox.ehr.authserver import Clock, IssuedToken, SandboxAuthServer
from azaguard.sandbox.ehr.compartment import params_of, parse_path
from azaguard.sandbox.ehr.relay import (
    FORWARD_REQUEST_HEADERS,
    FORWARD_RESPONSE_HEADERS,
    json_body,
    outcome,
    rewrite_urls,
)
from azaguard.sandbox.ehr.scopes import RESOURCE_TYPES, Permission, ResourceScope, parse_scope, parse_scopes
from azaguard.sandbox.ehr.upstream import Upstream

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ALGORITHMS = ("RS384", "ES384")
MAX_ASSERTION_LIFETIME = 300  # seconds (SMART: exp no more than five minutes in the future)
CLOCK_SKEW = 30
BULK_PATHS = ("bulk-status/", "bulk-files/")


@dataclass(frozen=True)
class BackendClient:
    """A registered backend service: its id, its public keys, the most it may be granted."""

    client_id: str
    jwks: Mapping[str, Any]
    allowed_scope: str = "system/*.cruds"


def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"Cache-Control": "no-store"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer error="invalid_client"'
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


@dataclass
class BackendServices:
    auth: SandboxAuthServer
    token_url: str
    clients: dict[str, BackendClient] = field(default_factory=dict)
    token_lifetime: int = 300
    seen_jti: dict[str, float] = field(default_factory=dict)  # jti -> when it may be forgotten

    @property
    def clock(self) -> Clock:
        return self.auth.clock

    def register(self, client: BackendClient) -> None:
        _key_set(client.jwks)  # refuse a broken JWKS at registration, not at first use
        self.clients[client.client_id] = client

    def token(self, form: Mapping[str, str]) -> Response:
        if form.get("client_assertion_type") != ASSERTION_TYPE or not form.get("client_assertion"):
            return _oauth_error(401, "invalid_client", "a private_key_jwt client assertion is required")
        try:
            client = self._verify(form["client_assertion"])
        except _Refused as refused:
            return _oauth_error(401, "invalid_client", str(refused))
        granted = grant_system(form.get("scope", ""), client.allowed_scope)
        if not granted:
            return _oauth_error(400, "invalid_scope", "none of the requested scopes is a grantable system/ scope")
        value = secrets.token_urlsafe(32)
        now = self.clock()
        self.auth.store.tokens[value] = IssuedToken(value, client.client_id, granted, None, now + self.token_lifetime)
        body = {"access_token": value, "token_type": "bearer", "expires_in": self.token_lifetime, "scope": granted}
        return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    def _verify(self, assertion: str) -> BackendClient:
        try:
            header = jws.extract_compact(assertion.encode()).protected
            unverified = json.loads(jws.extract_compact(assertion.encode()).payload)
        except (JoseError, ValueError) as exc:
            raise _Refused("the client assertion is not a JWT") from exc
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise _Refused(f"the assertion is signed with {alg!r}; RS384 or ES384 is required")
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            raise _Refused("unknown client (iss)")
        keys = _key_set(client.jwks)
        kid = header.get("kid")
        if not kid or not any(k.kid == kid for k in keys.keys):
            raise _Refused(f"no registered key of this client has kid {kid!r}")
        try:
            token = jwt.decode(assertion, keys, algorithms=[alg])
        except JoseError as exc:
            raise _Refused("the assertion's signature does not verify with the client's registered key") from exc
        claims = dict(token.claims)
        now = self.clock()
        if claims.get("sub") != client.client_id:
            raise _Refused("the assertion's sub must be the client id")
        aud = claims.get("aud")
        if self.token_url not in (aud if isinstance(aud, list) else [aud]):
            raise _Refused(f"the assertion's aud must be this token endpoint ({self.token_url})")
        exp = claims.get("exp")
        if not isinstance(exp, int | float):
            raise _Refused("the assertion has no exp")
        if exp <= now - CLOCK_SKEW:
            raise _Refused("the assertion has expired")
        if exp > now + MAX_ASSERTION_LIFETIME + CLOCK_SKEW:
            raise _Refused("the assertion's exp is more than five minutes away")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise _Refused("the assertion has no jti")
        for old in [j for j, until in self.seen_jti.items() if until < now]:
            del self.seen_jti[old]
        if jti in self.seen_jti:
            raise _Refused("the assertion's jti was already used (replay)")
        self.seen_jti[jti] = float(exp) + CLOCK_SKEW
        return client


class _Refused(Exception):
    pass


def _key_set(jwks: Mapping[str, Any]) -> KeySet:
    return KeySet.import_key_set(dict(jwks))  # type: ignore[arg-type]  # a JWKS as JSON


def grant_system(requested: str, allowed: str) -> str:
    """Requested system/ scopes on served types, each within the client's allowance (order kept)."""
    limits = [s for s in parse_scopes(allowed) if s.context == "system"]
    granted: list[str] = []
    for word in requested.split():
        scope = parse_scope(word)
        if scope is None or scope.context != "system" or scope.query or word in granted:
            continue
        if scope.resource_type != "*" and scope.resource_type not in RESOURCE_TYPES:
            continue
        if any(lim.resource_type in (scope.resource_type, "*") and scope.permissions <= lim.permissions
               for lim in limits):  # fmt: skip
            granted.append(word)
    return " ".join(granted)


def system_allows(scopes: Sequence[ResourceScope], resource_type: str, permission: Permission) -> bool:
    return any(s.context == "system" and s.covers(resource_type, permission) and not s.query for s in scopes)


def system_problem(method: str, path: str, params: Sequence[tuple[str, str]], body: object,
                   scopes: Sequence[ResourceScope]) -> str | None:  # fmt: skip
    """None when a system token's scopes allow this request (each entry of a batch), else why not."""
    if path.startswith(BULK_PATHS):
        return None if method == "GET" else f"{method} is not allowed here"
    parts = [p for p in path.strip("/").split("/") if p]
    if parts and parts[-1] == "$export":
        types = next((v for k, v in params if k == "_type"), "")
        wanted = [t for t in types.split(",") if t] or sorted(RESOURCE_TYPES)
        denied = [t for t in wanted if not system_allows(scopes, t, "r")]
        if method != "GET" or (len(parts) not in (1, 3)) or (len(parts) == 3 and parts[0] != "Group"):
            return "only GET [base]/$export and GET [base]/Group/[id]/$export are supported"
        return f"the token's scopes do not allow reading {', '.join(denied)}" if denied else None
    if method == "POST" and not parts:
        if not isinstance(body, dict) or body.get("type") not in ("batch", "transaction"):
            return "POST to the base must be a batch or transaction Bundle"
        for index, entry in enumerate(body.get("entry") or []):
            request = entry.get("request") if isinstance(entry, dict) else None
            if not isinstance(request, dict) or not isinstance(request.get("url"), str):
                return f"entry {index} has no request.url"
            url_path, _, query = request["url"].partition("?")
            problem = system_problem(str(request.get("method", "")).upper(), url_path, params_of(query),
                                     entry.get("resource"), scopes)  # fmt: skip
            if problem:
                return f"entry {index}: {problem}"
        return None
    fhir_path = parse_path(path)
    rtype = fhir_path.resource_type
    if rtype is None or fhir_path.other:
        return "this kind of request is not supported by the sandbox EHR"
    perm: Permission
    if method in ("GET", "HEAD") or fhir_path.search_post:
        perm = "r" if fhir_path.resource_id else "s"
    elif method in ("POST", "PUT"):
        perm = "c" if method == "POST" else "u"
    else:
        return f"{method} is not allowed by the sandbox EHR"
    words = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
    return None if system_allows(scopes, rtype, perm) else f"the token's scopes do not allow {words[perm]} of {rtype}"


async def system_proxy(request: Request, token: IssuedToken, upstream: Upstream, public: str) -> Response:
    """The FHIR proxy for a system token: scopes checked, no patient compartment; bulk files relayed.
    `public` is the EHR's public FHIR base, `upstream` the server behind it."""
    scopes = parse_scopes(token.scope)
    path = request.path_params.get("path", "")
    body, raw, body_problem = await json_body(request)  # the same size and depth limits as patient tokens
    if body_problem:
        return outcome(400, "invalid", body_problem)
    params = params_of(request.url.query)
    problem = system_problem(request.method, path, params, body, scopes)
    if problem:
        return outcome(403, "forbidden", problem)
    base = upstream.base
    # Prefer too: Bulk Data needs `respond-async` (a system token has no compartment to protect).
    forwarded = (*FORWARD_REQUEST_HEADERS, "accept-encoding", "prefer")
    headers = {k: v for k, v in request.headers.items() if k.lower() in forwarded}
    query = request.url.query
    content = json.dumps(rewrite_urls(body, (public,), base)).encode() if body is not None else raw or None
    try:
        answer = await upstream.client().request(
            request.method, f"{base}/{path}" + (f"?{query}" if query else ""), headers=headers, content=content
        )
    except httpx.HTTPError as exc:
        return outcome(502, "transient", f"the upstream FHIR server did not answer ({type(exc).__name__})")
    out_headers = {
        k: rewrite_urls(v, upstream.aliases, public)
        for k, v in answer.headers.items()
        if k.lower() in (*FORWARD_RESPONSE_HEADERS, "retry-after", "x-progress", "content-type")
    }
    if path.startswith("bulk-files/") or not answer.content:
        return Response(answer.content, status_code=answer.status_code, headers=out_headers)
    try:
        data = rewrite_urls(answer.json(), upstream.aliases, public)
    except ValueError:
        return Response(answer.content, status_code=answer.status_code, headers=out_headers)
    if path.startswith("bulk-status/") and isinstance(data, dict) and "output" in data:
        data["requiresAccessToken"] = True  # the files are behind this proxy: they need the token
    out_headers.pop("content-type", None)
    return Response(json.dumps(data), status_code=answer.status_code, headers=out_headers,
                    media_type="application/fhir+json")  # fmt: skip


DEMO_CLIENT_ID = "azaguard-scan"


def demo_client(folder: Path) -> tuple[BackendClient, Path]:
    """The demo's backend client: an ES384 key kept in `folder` (created once, owner-only), registered by its
    public half, so `azaguard scan` can run against the sandbox with real authorization."""
    path = folder / "scan-client.jwks.json"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = ECKey.generate_key("P-384", parameters={"kid": "azaguard-scan-1", "alg": "ES384"})
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"keys": [key.as_dict(private=True)]}, fh)
    private = json.loads(path.read_text(encoding="utf-8"))
    public = {"keys": [{k: v for k, v in jwk.items() if k != "d"} for jwk in private["keys"]]}
    return BackendClient(DEMO_CLIENT_ID, public, allowed_scope="system/*.rs system/DetectedIssue.cruds "
                         "system/Flag.cruds system/Device.cruds"), path
