"""SMART App Launch, app side: the authorize request, the code exchange, refresh, identity.

Pure protocol steps over httpx; where state lives (the server-side session)
is session.py's job and what the browser sees is web/app.py's.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
from joserfc import jws, jwt  # Authlib's JOSE implementation (authlib.jose is deprecated in its favour)
from joserfc.errors import JoseError

from azaguard.config import AppConfig, Scopes
from azaguard.errors import AuthError
from azaguard.httpbound import SMALL_BYTES, within
from azaguard.smart.discovery import SmartConfiguration
from azaguard.smart.jwks import JwksCache, Untrusted

TOKEN_TIMEOUT = 15.0
REFRESH_MARGIN = timedelta(seconds=60)  # refresh this long before expiry: a request in flight must not expire
_ID_TOKEN_ALGS = ["RS256", "RS384", "ES256", "ES384"]  # asymmetric only: never 'none' or HMAC
REFRESH_SCOPES = frozenset({"online_access", "offline_access"})


class TokenError(AuthError):
    """The authorization server refused (error, description as it said) or answered nonsense."""

    def __init__(self, error: str, description: str | None = None, status: int | None = None) -> None:
        self.error = error
        self.description = description
        self.status = status
        super().__init__(f"{error}: {description}" if description else error)


# --- state and the authorize request ------------------------------------------------


def new_state() -> str:
    """256 random bits (≥ 122 required), URL-safe."""
    return secrets.token_urlsafe(32)


def authorize_url(
    smart: SmartConfiguration,
    *,
    client_id: str,
    redirect_uri: str,
    scope: str,
    state: str,
    code_challenge: str,
    launch: str | None,
) -> str:
    """The authorization request URL (response_type=code, aud=iss, PKCE S256 always)."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": state,
        "aud": smart.iss,
        "code_challenge": code_challenge,
        "code_challenge_method": "S256",
    }
    if launch is not None:
        params["launch"] = launch
    sep = "&" if "?" in smart.authorization_endpoint else "?"
    return smart.authorization_endpoint + sep + urlencode(params)


# --- scopes ----------------------------------------------------------------------------

_SCOPE = re.compile(r"^(patient|user|system)/([A-Za-z]+|\*)\.(read|write|\*|c?r?u?d?s?)(\?.*)?$")
_V1_LETTERS = {"read": "rs", "write": "cud", "*": "cruds"}


def select_scope(
    config: AppConfig, capabilities: frozenset[str], *, standalone: bool = False, scopes: Scopes | None = None
) -> str:
    """v2 scopes when the server advertises permission-v2, v1 otherwise.

    A standalone launch has no EHR `launch` parameter: it asks for `launch/patient`
    so the authorization server lets the user pick the patient. `scopes`: another set than the
    clinician's (the patient launch's `patient_scopes`). A refresh token is asked for as configured
    (`refresh_scope`: online_access by default, SMART 2), unless the scopes already ask.
    """
    chosen = scopes or config.scopes
    scope = chosen.v2 if "permission-v2" in capabilities else chosen.v1
    if standalone:
        scope = " ".join("launch/patient" if s == "launch" else s for s in scope.split())
    words = scope.split()
    if config.refresh_scope != "none" and not REFRESH_SCOPES & set(words):
        scope = " ".join([*words, config.refresh_scope])
    return scope


def permissions(granted: str, resource_type: str) -> set[str]:
    """The interactions (letters of 'cruds') a granted scope string allows on a resource type.

    Scopes narrowed by a query (`?category=...`) cover only part of a type and are
    not counted: the app cannot know its writes would fall inside them.
    """
    allowed: set[str] = set()
    for scope in granted.split():
        m = _SCOPE.match(scope)
        if m is None or m.group(4) or m.group(2) not in (resource_type, "*"):
            continue
        allowed |= set(_V1_LETTERS.get(m.group(3), m.group(3)))
    return allowed


def can_write_alerts(granted: str) -> bool:
    """Alerts need create and update (closing a Flag) on both DetectedIssue and Flag."""
    return all({"c", "u"} <= permissions(granted, t) for t in ("DetectedIssue", "Flag"))


def can_read_alerts(granted: str) -> bool:
    """Showing the alerts already in the chart needs search on both DetectedIssue and Flag."""
    return all("s" in permissions(granted, t) for t in ("DetectedIssue", "Flag"))


# --- tokens ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenSet:
    """A token response, kept server-side only. Secrets are left out of repr (logs, tracebacks)."""

    access_token: str = field(repr=False)
    scope: str  # granted (may be narrower than requested)
    patient: str | None
    need_patient_banner: bool
    expires_at: datetime | None
    refresh_token: str | None = field(default=None, repr=False)
    id_token: str | None = field(default=None, repr=False)
    encounter: str | None = None

    def needs_refresh(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at - REFRESH_MARGIN

    def expired(self, now: datetime) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def exchange_code(
    http: httpx.Client,
    config: AppConfig,
    smart: SmartConfiguration,
    *,
    code: str,
    code_verifier: str,
    redirect_uri: str,
    requested_scope: str,
    now: datetime,
) -> TokenSet:
    """Trade the authorization code for tokens (authorization_code grant with the PKCE verifier)."""
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "code_verifier": code_verifier,
    }
    body = _token_request(http, config, smart.token_endpoint, form)
    tokens = _parse_tokens(body, now, requested_scope=requested_scope, previous=None)
    if not tokens.patient:
        raise TokenError("no_patient", "the token response carries no patient context")
    return tokens


def refresh(
    http: httpx.Client, config: AppConfig, smart: SmartConfiguration, tokens: TokenSet, now: datetime
) -> TokenSet:
    """A new access token from the refresh token; keeps the old refresh token when none comes back."""
    if not tokens.refresh_token:
        raise TokenError("no_refresh_token", "the authorization server gave no refresh token")
    form = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
    body = _token_request(http, config, smart.token_endpoint, form)
    return _parse_tokens(body, now, requested_scope=tokens.scope, previous=tokens)


def _token_request(
    http: httpx.Client, config: AppConfig, endpoint: str, form: dict[str, str]
) -> dict[str, Any]:
    headers = {"Accept": "application/json"}
    secret = config.client_secret()
    if secret is None:
        form = {**form, "client_id": config.client_id}
    else:
        # RFC 6749 §2.3.1: id and secret are form-encoded before Basic.
        pair = f"{quote(config.client_id, safe='')}:{quote(secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
    try:
        response = http.post(endpoint, data=form, headers=headers, extensions=within(SMALL_BYTES, TOKEN_TIMEOUT))
    except httpx.HTTPError as exc:
        raise TokenError("unreachable", f"token endpoint unreachable ({type(exc).__name__})") from exc
    try:
        body = response.json()
    except (ValueError, RecursionError):
        body = None
    if response.status_code != 200:
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            desc = body.get("error_description")
            raise TokenError(body["error"], desc if isinstance(desc, str) else None, response.status_code)
        raise TokenError(
            "server_error", f"token endpoint answered HTTP {response.status_code}", response.status_code
        )
    if not isinstance(body, dict):
        raise TokenError("invalid_response", "the token response is not a JSON object", response.status_code)
    return body


def _parse_tokens(
    body: dict[str, Any], now: datetime, *, requested_scope: str, previous: TokenSet | None
) -> TokenSet:
    access = body.get("access_token")
    if not isinstance(access, str) or not access:
        raise TokenError("invalid_response", "no access_token in the token response")
    if str(body.get("token_type", "")).lower() != "bearer":
        raise TokenError("invalid_response", "token_type is not Bearer")
    expires_in = body.get("expires_in")
    expires_at = (
        now + timedelta(seconds=expires_in)
        if isinstance(expires_in, int | float) and expires_in >= 0
        else None
    )
    scope = body.get("scope")
    # RFC 6749 §5.1: an omitted scope means the one requested (or, on refresh, the one held).
    granted = scope if isinstance(scope, str) else requested_scope
    patient = _opt_str(body.get("patient"))
    banner = body.get("need_patient_banner")
    if previous is not None:
        return replace(
            previous,
            access_token=access,
            scope=granted,
            expires_at=expires_at,
            refresh_token=_opt_str(body.get("refresh_token")) or previous.refresh_token,
            id_token=_opt_str(body.get("id_token")) or previous.id_token,
        )
    return TokenSet(
        access_token=access,
        scope=granted,
        patient=patient,
        # Unknown: show the banner (showing who the page is about is the safe default).
        need_patient_banner=banner if isinstance(banner, bool) else True,
        expires_at=expires_at,
        refresh_token=_opt_str(body.get("refresh_token")),
        id_token=_opt_str(body.get("id_token")),
        encounter=_opt_str(body.get("encounter")),
    )


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


# --- identity (id_token / fhirUser) -------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    fhir_user: str | None
    subject: str | None
    verified: bool  # signature checked against the server's JWKS
    problem: str | None = None
    name: str | None = None  # OpenID Connect `name` (else given + family name): shown as "Signed in as …"
    zoneinfo: str | None = None  # OpenID Connect `zoneinfo` (IANA time zone): dates are shown in it


def read_identity(
    http: httpx.Client, config: AppConfig, smart: SmartConfiguration, id_token: str, now: datetime,
    keys: JwksCache | None = None,
) -> Identity:
    """fhirUser from the id_token; the signature is verified when the server advertises jwks_uri, with the
    key set from `keys` (the process's one JWK Set cache; fetched on `http` when none is given)."""
    if smart.jwks_uri is None:
        try:
            claims = _unverified_payload(id_token)
        except ValueError as exc:
            return Identity(None, None, verified=False, problem=f"unreadable id_token ({exc})")
        return Identity(
            _opt_str(claims.get("fhirUser")), _opt_str(claims.get("sub")), verified=False, **_person(claims)
        )
    cache = keys or JwksCache(http=http)  # without the process's cache: one for this login only
    try:
        kid = jws.extract_compact(id_token.encode("ascii")).headers().get("kid")
        key_set = cache.get_waiting(smart.jwks_uri, kid if isinstance(kid, str) else None)
        token = jwt.decode(id_token, key_set, algorithms=_ID_TOKEN_ALGS)
        jwt.JWTClaimsRegistry(
            now=int(now.timestamp()),
            leeway=60,
            iss={"essential": True, "value": smart.issuer or smart.iss},
            aud={"essential": True, "value": config.client_id},
            exp={"essential": True},
        ).validate(token.claims)
        claims = token.claims
    except (Untrusted, ValueError, UnicodeError, RecursionError, JoseError) as exc:
        return Identity(
            None, None, verified=False, problem=f"id_token not verified ({type(exc).__name__}: {exc})"
        )
    finally:
        if keys is None:
            cache.close()
    return Identity(_opt_str(claims.get("fhirUser")), _opt_str(claims.get("sub")), verified=True, **_person(claims))


def user_type(identity: Identity | None) -> str | None:
    """The FHIR resource type of the signed-in user from fhirUser (absolute or relative): "Patient",
    "Practitioner", "RelatedPerson"…; None when the launch carried no identity."""
    if identity is None or not identity.fhir_user:
        return None
    parts = [p for p in identity.fhir_user.split("?", 1)[0].split("/") if p]
    return parts[-2] if len(parts) >= 2 and parts[-2][:1].isupper() else None


def is_patient_user(identity: Identity | None) -> bool:
    """A patient (or someone acting for one: RelatedPerson) is signed in: the patient view, never the clinician's."""
    return user_type(identity) in ("Patient", "RelatedPerson")


def _person(claims: dict[str, Any]) -> dict[str, str | None]:
    name = _opt_str(claims.get("name"))
    if name is None:
        parts = [_opt_str(claims.get("given_name")), _opt_str(claims.get("family_name"))]
        name = " ".join(p for p in parts if p) or None
    return {"name": name, "zoneinfo": _opt_str(claims.get("zoneinfo"))}


def _unverified_payload(token: str) -> dict[str, Any]:
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    payload = json.loads(base64.urlsafe_b64decode(padded))
    if not isinstance(payload, dict):
        raise ValueError("payload is not an object")
    return payload
