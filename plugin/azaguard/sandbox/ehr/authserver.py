# mypy: allow-subclassing-any
"""The sandbox EHR's OAuth 2 authorization server, built on Authlib's framework-neutral core.

Authlib ships Flask and Django glue only; this module supplies the Starlette side of it
(`create_oauth2_request`, `handle_response`, `send_signal`, `query_client`, `save_token`) and the
SMART specifics: exact redirect_uri, S256 PKCE required, `aud` must be the FHIR base, single-use
10-minute codes, the launch patient bound to the code, granted scope = requested ∩ supported,
`patient`/`need_patient_banner`/`id_token` in the token response, a refresh token only for online_access or
offline_access (as real servers do), refresh with optional rotation.
Everything lives in memory: the sandbox forgets its tokens when it stops.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped, unused-ignore]
    AuthorizationCodeMixin,
    AuthorizationServer,
    ClientMixin,
    InvalidRequestError,
    OAuth2Error,
    OAuth2Payload,
    OAuth2Request,
    TokenMixin,
)
from authlib.oauth2.rfc6749.grants import (  # type: ignore[import-untyped, unused-ignore]
    AuthorizationCodeGrant,
    RefreshTokenGrant,
)
from authlib.oauth2.rfc7636 import CodeChallenge  # type: ignore[import-untyped, unused-ignore]
from joserfc import jwt
from joserfc.jwk import RSAKey
from starlette.responses import JSONResponse, RedirectResponse, Response

import azaguard.sandbox.ehr.scopes as smart_scopes
from azaguard.config import AppConfig

SANDBOX_PRACTITIONER = "sandbox-clinician"
SANDBOX_PRACTITIONER_NAME = "Dr Alex Morgan"
SANDBOX_ZONEINFO = "Europe/London"
REFRESH_SCOPES = frozenset({"online_access", "offline_access"})
Clock = Callable[[], float]
# "sandbox": fhirUser absolute, with the user's name and zone; "smart-launcher": as smart-launcher-v2 signs it.
UserClaims = Literal["sandbox", "smart-launcher"]


class _NoTokens(logging.Filter):
    """Authlib logs each issued token at DEBUG ("Issue token {...}"): such records never leave."""

    _WORDS = ("access_token", "refresh_token", "id_token", "client_secret", "code_verifier")

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except (TypeError, ValueError):
            text = f"{record.msg} {record.args!r}"
        return not any(word in text for word in self._WORDS)


def _silence_authlib_secrets() -> None:
    # Filters act on the logger a record is created on: put one on every Authlib logger there is.
    names = [n for n in logging.root.manager.loggerDict if n == "authlib" or n.startswith("authlib.")]
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _NoTokens) for f in logger.filters):
            logger.addFilter(_NoTokens())


_silence_authlib_secrets()


@dataclass(frozen=True)
class RegisteredClient:
    """A SMART app registered with the sandbox (public when it has no secret)."""

    client_id: str
    redirect_uris: tuple[str, ...]
    launch_uri: str
    client_secret: str | None = None
    # The scopes the client registered: nothing beyond them is ever granted (None: no bound).
    scopes: tuple[str, ...] | None = None

    @classmethod
    def from_app_config(cls, config: AppConfig) -> RegisteredClient:
        sets = [config.scopes, *([config.patient_scopes] if config.patient_scopes else [])]
        registered = tuple(dict.fromkeys(s for scopes in sets for s in (*scopes.v2.split(), *scopes.v1.split())))
        # A standalone launch asks launch/patient where the EHR launch asks launch.
        if "launch" in registered:
            registered += ("launch/patient",)
        if config.refresh_scope != "none":
            registered += (config.refresh_scope,)
        return cls(
            config.client_id, tuple(config.redirect_uris), config.launch_uri, config.client_secret(), registered
        )


@dataclass(frozen=True)
class SandboxUser:
    """Who is 'logged in' to the sandbox EHR, and the patient in context (if any).

    The clinician by default; a patient signed in at the patient portal is `Patient/{id}` (`user`),
    named `name`: the id_token's fhirUser says which, so the app can tell a patient from a clinician.
    """

    patient: str | None
    practitioner: str = SANDBOX_PRACTITIONER
    nonce: str | None = None  # OpenID Connect nonce from the authorization request, echoed in the id_token
    user: str | None = None  # "Patient/{id}" for a portal patient; None: the sandbox clinician
    name: str | None = None  # the portal patient's name

    def get_user_id(self) -> str:
        return self.user or self.practitioner

    @property
    def fhir_user(self) -> str:
        return self.user or f"Practitioner/{self.practitioner}"


class _Client(ClientMixin):
    def __init__(self, registered: RegisteredClient, narrow: Callable[[str], str] | None) -> None:
        self.registered = registered
        self.client_id = registered.client_id
        self._narrow = narrow

    def get_client_id(self) -> str:
        return self.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # SMART apps must send redirect_uri; no implicit default

    def get_allowed_scope(self, scope: str | None) -> str:
        return smart_scopes.grant(scope, self._narrow, self.registered.scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.registered.redirect_uris  # exact string match, no prefix rules

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.registered.client_secret
        return secret is not None and hmac.compare_digest(secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.registered.client_secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in ("authorization_code", "refresh_token")


@dataclass
class AuthCode(AuthorizationCodeMixin):
    code: str
    client_id: str
    redirect_uri: str
    scope: str
    patient: str | None
    code_challenge: str
    code_challenge_method: str
    expires_at: float
    nonce: str | None = None
    user: str | None = None  # a portal patient's "Patient/{id}" (SandboxUser.user)
    user_name: str | None = None

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope


@dataclass
class IssuedToken:
    """An access token as the FHIR proxy sees it."""

    access_token: str
    client_id: str
    scope: str
    patient: str | None
    expires_at: float
    revoked: bool = False


@dataclass
class RefreshGrant(TokenMixin):
    refresh_token: str
    client_id: str
    scope: str
    patient: str | None
    expires_at: float
    revoked: bool = False
    user: str | None = None  # as SandboxUser.user: a refreshed id_token names the same user
    user_name: str | None = None

    def check_client(self, client: _Client) -> bool:
        return bool(client.client_id == self.client_id)

    def get_scope(self) -> str:
        return self.scope

    def get_expires_in(self) -> int:
        return 0

    def is_expired(self) -> bool:
        return False  # expiry is checked against the injected clock by the store

    def is_revoked(self) -> bool:
        return self.revoked


@dataclass
class AuthStore:
    """Codes, access tokens and refresh tokens, in memory, with expiry by the injected clock."""

    clock: Clock
    codes: dict[str, AuthCode] = field(default_factory=dict)
    used_codes: dict[str, list[str]] = field(default_factory=dict)  # code -> tokens issued from it
    tokens: dict[str, IssuedToken] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshGrant] = field(default_factory=dict)

    def access_token(self, value: str) -> IssuedToken | None:
        """The token if it exists, is not revoked and has not expired."""
        token = self.tokens.get(value)
        if token is None or token.revoked or token.expires_at <= self.clock():
            return None
        return token

    def expire_token(self, value: str) -> None:
        """Test hook: make an access token expire now."""
        if value in self.tokens:
            self.tokens[value].expires_at = self.clock()

    def revoke_issued_from(self, code: str) -> None:
        # RFC 6749 §4.1.2: a replayed code SHOULD revoke what was issued from it.
        for value in self.used_codes.get(code, []):
            if value in self.tokens:
                self.tokens[value].revoked = True
            if value in self.refresh_tokens:
                self.refresh_tokens[value].revoked = True


class _StarletteRequest(OAuth2Request):
    """An OAuth2Request over already-read query and form items (Starlette reads bodies asynchronously)."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        form: Sequence[tuple[str, str]],
    ) -> None:
        super().__init__(method=method, uri=uri, headers=headers)
        self._args = dict(query)
        self._form = dict(form)
        self.payload = _Payload(list(query) + list(form))

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class _Payload(OAuth2Payload):
    def __init__(self, items: list[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for key, value in items:
            self._datalist[key].append(value)
        self._data = {key: values[-1] for key, values in self._datalist.items()}

    @property
    def data(self) -> dict[str, str]:
        return self._data

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class _S256Required(CodeChallenge):
    """PKCE is mandatory and S256 only (SMART 2: `plain` SHALL NOT be supported)."""

    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]  # noqa: RUF012  (Authlib's class attribute)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError("PKCE is required: missing 'code_challenge'")
        if data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)


class _CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012
    server: SandboxAuthServer

    def validate_authorization_request(self) -> str:
        redirect_uri: str = super().validate_authorization_request()
        aud = self.request.payload.data.get("aud")
        if not aud or aud.rstrip("/") != self.server.fhir_base:
            raise InvalidRequestError(
                f"'aud' must be this server's FHIR base, {self.server.fhir_base}",
                redirect_uri=redirect_uri,
                state=self.request.payload.state,
            )
        return redirect_uri

    def save_authorization_code(self, code: str, request: OAuth2Request) -> None:
        data = request.payload.data
        self.server.store.codes[code] = AuthCode(
            code=code,
            client_id=request.client.client_id,
            redirect_uri=data["redirect_uri"],
            scope=request.scope,
            patient=request.user.patient,
            code_challenge=data["code_challenge"],
            code_challenge_method=data["code_challenge_method"],
            expires_at=self.server.clock() + self.server.code_lifetime,
            nonce=data.get("nonce"),
            user=request.user.user,
            user_name=request.user.name,
        )

    def query_authorization_code(self, code: str, client: _Client) -> AuthCode | None:
        store = self.server.store
        if code in store.used_codes:
            store.revoke_issued_from(code)
            return None
        found = store.codes.get(code)
        if found is None or found.client_id != client.client_id or found.expires_at <= self.server.clock():
            return None
        return found

    def delete_authorization_code(self, authorization_code: AuthCode) -> None:
        store = self.server.store
        store.codes.pop(authorization_code.code, None)
        store.used_codes.setdefault(authorization_code.code, [])

    def authenticate_user(self, authorization_code: AuthCode) -> SandboxUser:
        return SandboxUser(
            patient=authorization_code.patient, nonce=authorization_code.nonce,
            user=authorization_code.user, name=authorization_code.user_name,
        )


class _RefreshGrant(RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]  # noqa: RUF012
    server: SandboxAuthServer

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshGrant | None:
        found = self.server.store.refresh_tokens.get(refresh_token)
        if found is None or found.revoked or found.expires_at <= self.server.clock():
            return None
        return found

    def authenticate_user(self, refresh_token: RefreshGrant) -> SandboxUser:
        return SandboxUser(patient=refresh_token.patient, user=refresh_token.user, name=refresh_token.user_name)

    def issue_token(self, user: SandboxUser, refresh_token: RefreshGrant) -> dict[str, Any]:
        scope = self.request.payload.scope or refresh_token.get_scope()
        token: dict[str, Any] = self.generate_token(
            user=user, scope=scope, include_refresh_token=self.server.rotate_refresh_tokens
        )
        return token

    def revoke_old_credential(self, refresh_token: RefreshGrant) -> None:
        if self.server.rotate_refresh_tokens:
            refresh_token.revoked = True


class SandboxAuthServer(AuthorizationServer):
    """Authlib's AuthorizationServer with in-memory storage and Starlette request/response glue."""

    def __init__(
        self,
        *,
        clients: Sequence[RegisteredClient],
        fhir_base: str,
        token_lifetime: int = 3600,
        code_lifetime: int = 600,
        refresh_lifetime: int = 86400,
        granted_scope_filter: Callable[[str], str] | None = None,
        rotate_refresh_tokens: bool = False,
        user_claims: UserClaims = "sandbox",
        clock: Clock = time.time,
    ) -> None:
        super().__init__(scopes_supported=smart_scopes.scopes_supported())
        self.user_claims = user_claims
        self.fhir_base = fhir_base.rstrip("/")
        self.clients = {c.client_id: _Client(c, granted_scope_filter) for c in clients}
        self.token_lifetime = token_lifetime
        self.code_lifetime = code_lifetime
        self.refresh_lifetime = refresh_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.clock = clock
        self.store = AuthStore(clock)
        self.key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
        self.register_token_generator("default", self._generate_token)
        self.register_grant(_CodeGrant, [_S256Required(required=True)])
        self.register_grant(_RefreshGrant)

    # --- Authlib hooks a framework integration must provide ---
    def query_client(self, client_id: str) -> _Client | None:
        return self.clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        now = self.clock()
        client_id = request.client.client_id
        patient = request.user.patient
        self.store.tokens[token["access_token"]] = IssuedToken(
            token["access_token"], client_id, token["scope"], patient, now + token["expires_in"]
        )
        issued = [token["access_token"]]
        if "refresh_token" in token:
            self.store.refresh_tokens[token["refresh_token"]] = RefreshGrant(
                token["refresh_token"], client_id, token["scope"], patient, now + self.refresh_lifetime,
                user=request.user.user, user_name=request.user.name,
            )
            issued.append(token["refresh_token"])
        if request.authorization_code is not None:
            self.store.used_codes[request.authorization_code.code] = issued

    def create_oauth2_request(self, request: OAuth2Request) -> OAuth2Request:
        return request  # the endpoints build a _StarletteRequest before calling in

    def handle_response(self, status: int, body: Any, headers: Sequence[tuple[str, str]]) -> Response:
        header_map = dict(headers)
        if status in (301, 302, 303, 307) and "Location" in header_map:
            return RedirectResponse(header_map.pop("Location"), status_code=302, headers=header_map)
        if isinstance(body, list):  # Authlib error bodies are lists of pairs
            body = dict(body)
        return JSONResponse(body, status_code=status, headers=header_map)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None  # no signal bus in the sandbox

    def validate_requested_scope(self, scope: str | None) -> None:
        return None  # never refuse: unsupported scopes are simply not granted (see _Client.get_allowed_scope)

    # --- token contents ---
    def _generate_token(
        self,
        grant_type: str,
        client: _Client,
        user: SandboxUser | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        granted = scope or ""
        token: dict[str, Any] = {
            "access_token": secrets.token_urlsafe(32),
            "token_type": "Bearer",
            "expires_in": self.token_lifetime,
            "scope": granted,
            "need_patient_banner": True,
        }
        if user is not None and user.patient:
            token["patient"] = user.patient
        words = granted.split()
        # As real servers (and smart-launcher-v2) do: a refresh token only for online_access/offline_access.
        if include_refresh_token and REFRESH_SCOPES & set(words):
            token["refresh_token"] = secrets.token_urlsafe(32)
        if user is not None and "openid" in words and "fhirUser" in words:
            token["id_token"] = self.id_token(client.client_id, user)
        return token

    def id_token(self, client_id: str, user: SandboxUser) -> str:
        now = int(self.clock())
        claims: dict[str, Any] = {
            "iss": self.fhir_base,
            "sub": user.get_user_id(),
            "aud": client_id,
            "iat": now,
            "exp": now + self.token_lifetime,
        }
        if self.user_claims == "smart-launcher":
            # smart-launcher-v2's: fhirUser (and profile) relative to the FHIR base, no name claims.
            claims["fhirUser"] = claims["profile"] = user.fhir_user
        else:
            claims["fhirUser"] = f"{self.fhir_base}/{user.fhir_user}"
            # OpenID Connect standard claims: the app shows who is signed in, and dates in their zone.
            claims.update(name=user.name if user.user else SANDBOX_PRACTITIONER_NAME, zoneinfo=SANDBOX_ZONEINFO)
        if user.nonce:
            claims["nonce"] = user.nonce
        return jwt.encode({"alg": "RS256", "kid": self.key.kid, "typ": "JWT"}, claims, self.key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    # --- helpers for the endpoints ---
    def make_request(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: Sequence[tuple[str, str]],
        form: Sequence[tuple[str, str]] = (),
    ) -> OAuth2Request:
        return _StarletteRequest(method, uri, headers, query, form)

    def consent(self, request: OAuth2Request) -> Any:
        """Validate an authorization request (raises OAuth2Error) and return Authlib's grant."""
        return self.get_consent_grant(request)

    def authorize(self, request: OAuth2Request, grant: Any, user: SandboxUser) -> Response:
        response: Response = self.create_authorization_response(request, grant_user=user, grant=grant)
        return response

    def token_response(self, request: OAuth2Request) -> Response:
        response: Response = self.create_token_response(request)
        return response

    def error_redirect(self, error: OAuth2Error) -> Response:
        response: Response = self.handle_error_response(None, error)
        return response
