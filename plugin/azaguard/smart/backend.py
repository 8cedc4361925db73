"""SMART Backend Services: an access token for an unattended client (the nightly scan).

client_credentials with a `private_key_jwt` client assertion (RS384 or ES384; iss = sub = the
client id, aud = the token endpoint, exp ≤ 5 minutes, a fresh jti each time), `system/` scopes in
v2 syntax (`.rs`) when the server's smart-configuration advertises permission-v2, else v1 (`.read`).
The token is cached and renewed before it expires; `renew()` forces a new one (after a 401).
"""

from __future__ import annotations

import json
import math
import secrets
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey, import_key

from azaguard.errors import AuthError
from azaguard.fhir.catalogue import WRITES, scopes
from azaguard.httpbound import Bound, ResponseTooLarge, ResponseTooSlow
from azaguard.httpclient import client as outbound_client
from azaguard.smart.discovery import DiscoveryError, smart_configuration
from azaguard.smart.discovery import endpoint as checked_endpoint

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_LIFETIME = 300  # seconds: the most the SMART specification allows
RENEW_MARGIN = 60  # renew this long before the token expires (a scan must not send an expired one)
# A token is kept at least this long whatever expires_in says (0, 1 s, NaN): never one token per request.
# A token the server really expired sooner is renewed after its 401, as any other.
MIN_TOKEN_SECONDS = 30.0
DEFAULT_TOKEN_SECONDS = 300.0  # when expires_in is absent or not a number
TIMEOUT = 15.0

SigningKey = RSAKey | ECKey


class BackendAuthError(AuthError):
    """No access token: the configuration is unusable or the authorization server refused."""


@dataclass(frozen=True)
class ClientKey:
    key: SigningKey
    alg: str  # RS384 or ES384
    kid: str


def key_file_warning(path: Path) -> str | None:
    """A sentence when the private key file can be read by others than its owner."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return (f"the private key {path} can be read by others than its owner (mode {stat.filemode(mode)}): "
                f"chmod 600 {path}")  # fmt: skip
    return None


def scope_warnings(requested: str, granted: str, *, write: bool) -> list[str]:
    """Sentences when the granted scope is broader than asked, or too narrow for writing the alerts."""
    asked, got = set(requested.split()), set(granted.split())
    out = []
    extra = sorted(got - asked - {s for s in got if _within(s, asked)})
    if extra:
        out.append(f"the authorization server granted more than was asked: {' '.join(extra)[:300]}")
    if write:
        missing = [t for t in WRITES if not any(_allows_write(s, t) for s in got)]
        if missing:
            out.append(f"the granted scope does not allow writing {', '.join(missing)}: --write will fail "
                       f"(granted: {granted[:300]})")  # fmt: skip
    return out


def _within(scope: str, asked: set[str]) -> bool:
    """A granted scope no broader than one asked (v2 permissions a subset of those asked for the type)."""
    rtype, _, perms = scope.partition(".")
    perms = perms.split("?", 1)[0]  # a query narrows a v2 scope, never widens it
    for a in asked:
        a_type, _, a_perms = a.partition(".")
        if a_type == rtype and perms and set(perms) <= set(a_perms) and "*" not in perms + a_perms:
            return True
    return False


def _allows_write(scope: str, rtype: str) -> bool:
    context, _, rest = scope.partition("/")
    stype, _, perms = rest.partition(".")
    if context != "system" or stype not in (rtype, "*"):
        return False
    perms = perms.split("?", 1)[0]
    return perms in ("write", "*") or ("c" in perms and "u" in perms and perms.islower() and "." not in perms)


def load_private_key(path: Path, kid: str | None = None) -> ClientKey:
    """A private key from a PEM file or a JWK (set); the key with `kid` when a set holds several."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BackendAuthError(f"cannot read the private key {path}: {exc.strerror}") from exc
    key: Any
    try:
        if text.lstrip().startswith("{"):
            data = json.loads(text)
            candidates = data.get("keys", [data]) if isinstance(data, dict) else []
            chosen = [k for k in candidates if isinstance(k, dict) and (kid is None or k.get("kid") == kid)]
            private = [k for k in chosen if "d" in k]
            if not private:
                which = f"with kid {kid!r} " if kid else ""
                raise BackendAuthError(f"{path} holds no private key {which}(a JWK with 'd')")
            key = import_key(private[0])
            kid = kid or private[0].get("kid")
        else:
            key = _import_pem(text.encode())
    except (ValueError, JoseError) as exc:
        raise BackendAuthError(f"{path} is not a usable private key ({type(exc).__name__})") from exc
    if not kid:
        raise BackendAuthError("--kid is needed: the key has no 'kid' and the server finds keys by it")
    if isinstance(key, RSAKey):
        return ClientKey(key, "RS384", kid)
    if isinstance(key, ECKey) and key.curve_name == "P-384":
        return ClientKey(key, "ES384", kid)
    raise BackendAuthError("SMART Backend Services needs an RSA key (RS384) or an EC P-384 key (ES384)")


def _import_pem(data: bytes) -> SigningKey:
    if b"PRIVATE KEY" not in data:
        raise BackendAuthError("the PEM file holds no private key")
    for cls in (RSAKey, ECKey):
        try:
            key: SigningKey = cls.import_key(data)
        except (ValueError, JoseError, TypeError):
            continue
        return key
    raise BackendAuthError("the PEM private key is neither RSA nor EC")


def requested_scopes(v2: bool, *, write: bool) -> str:
    """What the scan reads, and what it writes with --write (fhir/catalogue.py: the gatherer's searches)."""
    return " ".join(scopes("v2" if v2 else "v1", context="system", write=write))


class BackendServicesAuth:
    """Access tokens for one client at one FHIR server; thread-safe; pass `.token` to FhirClient."""

    def __init__(
        self,
        fhir_base: str,
        client_id: str,
        client_key: ClientKey,
        *,
        write: bool = False,
        http: httpx.Client | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.fhir_base = fhir_base.rstrip("/")
        self.client_id = client_id
        self.client_key = client_key
        self.write = write
        self._http = http or outbound_client(bound=Bound(), timeout=TIMEOUT)
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_at = 0.0
        self._margin = float(RENEW_MARGIN)
        self.token_endpoint: str | None = None
        self.v2: bool | None = None
        self.granted_scope = ""
        self.tokens_issued = 0
        self.warnings: list[str] = []  # said once each: scope broader or narrower than needed, short tokens

    # -- discovery -------------------------------------------------------------------------

    def discover(self) -> None:
        url = f"{self.fhir_base}/.well-known/smart-configuration"
        try:
            config = smart_configuration(self.fhir_base, self._http)  # the one discovery reader
            endpoint = checked_endpoint(config.get("token_endpoint"), "token_endpoint")
        except DiscoveryError as exc:
            raise BackendAuthError(f"cannot use {url} ({exc})") from exc
        grants = config.get("grant_types_supported")
        if isinstance(grants, list) and "client_credentials" not in grants:
            raise BackendAuthError("the server does not offer the client_credentials grant (SMART Backend Services)")
        algs = config.get("token_endpoint_auth_signing_alg_values_supported")
        if isinstance(algs, list) and self.client_key.alg not in algs:
            raise BackendAuthError(f"the server does not accept {self.client_key.alg} client assertions ({algs})")
        found = config.get("capabilities")
        capabilities: list[Any] = found if isinstance(found, list) else []
        self.token_endpoint = endpoint
        # v2 only when advertised: a server that names neither predates SMART 2 and reads v1 scopes.
        self.v2 = "permission-v2" in capabilities

    # -- tokens ------------------------------------------------------------------------------

    def token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._expires_at - self._margin:
                self._fetch()
            if self._token is None:  # pragma: no cover - _fetch sets it or raises
                raise BackendAuthError("no access token")
            return self._token

    def renew(self, refused: str | None = None) -> None:
        """A new token; given the token a server `refused`, only if it is still the current one (concurrent
        requests refused together renew once)."""
        with self._lock:
            if refused is None or refused == self._token:
                self._fetch()

    def assertion(self, *, lifetime: int = ASSERTION_LIFETIME, audience: str | None = None) -> str:
        """A signed client assertion (public for tests of the authorization server's checks)."""
        if self.token_endpoint is None:
            self.discover()
        now = int(self._clock())
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": audience or self.token_endpoint,
            "exp": now + lifetime,
            "iat": now,
            "jti": secrets.token_urlsafe(24),
        }
        header = {"alg": self.client_key.alg, "kid": self.client_key.kid, "typ": "JWT"}
        return jwt.encode(header, claims, self.client_key.key, algorithms=[self.client_key.alg])

    def _fetch(self) -> None:
        if self.token_endpoint is None:
            self.discover()
        if self.token_endpoint is None or self.v2 is None:  # pragma: no cover - discover sets both or raises
            raise BackendAuthError("no token endpoint")
        form = {
            "grant_type": "client_credentials",
            "scope": requested_scopes(self.v2, write=self.write),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": self.assertion(),
        }
        try:
            response = self._http.post(self.token_endpoint, data=form, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise BackendAuthError(f"the token endpoint did not answer usefully ({_why(exc)})") from exc
        try:
            body = response.json()
        except (ValueError, RecursionError):
            body = None
        if response.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            said = ": ".join(str(x) for x in (error, description) if x) or "no error given"
            raise BackendAuthError(
                f"the authorization server refused a token to client {self.client_id!r} "
                f"(HTTP {response.status_code}): {said}"
            )
        expires_in = body.get("expires_in")
        lifetime = DEFAULT_TOKEN_SECONDS
        if isinstance(expires_in, int | float) and math.isfinite(expires_in):
            lifetime = float(expires_in)
        if lifetime < MIN_TOKEN_SECONDS:
            self._warn(f"the authorization server gives tokens for {lifetime:g} s; each is kept "
                       f"{MIN_TOKEN_SECONDS:g} s (renewed sooner after a 401)")  # fmt: skip
            lifetime = MIN_TOKEN_SECONDS
        self._token = str(body["access_token"])
        # Renewed before it expires: RENEW_MARGIN, or half its life when that is shorter.
        self._expires_at = self._clock() + lifetime
        self._margin = min(RENEW_MARGIN, lifetime / 2)
        self.granted_scope = str(body.get("scope") or form["scope"])
        for warning in scope_warnings(form["scope"], self.granted_scope, write=self.write):
            self._warn(warning)
        self.tokens_issued += 1

    def _warn(self, text: str) -> None:
        if text not in self.warnings:
            self.warnings.append(text)

    def close(self) -> None:
        self._http.close()


def _why(exc: BaseException) -> str:
    """A failed fetch in a few words: the bounded fetch's own sentence (too large, too slow), else its kind."""
    return str(exc) if isinstance(exc, ResponseTooLarge | ResponseTooSlow) else type(exc).__name__
