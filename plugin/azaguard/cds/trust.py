"""Trusting CDS Clients (CDS Hooks 2.0): every call carries a JWT signed by a registered client.

Checked, in this order, before anything is evaluated: `alg` is RS384 or ES384 (never none, never a
shared-secret HMAC); `iss` is a registered client; the signature; `aud` is this endpoint's URL;
`exp` in the future and `iat` not in the future (small skew), lifetime bounded; `jti` never seen
before (the replay cache lives in the shared database). Any failure: Untrusted (401).

Which key: the keys registered for the issuer (its inline `jwks`, or the set at its `jwks_url`) come
first. A token one of them verifies is trusted whatever its `jku` header names: the header is a hint
for finding a key (RFC 7515 §4.1.2), and the registration is what the service trusts (CDS Hooks 2.0:
the JWK Set may be conveyed out of band). Only when no registered key matches the token's `kid` (or,
without a kid, its algorithm) is the `jku` fetched, and only when it is on the issuer's allow-list.
So a client that names an unreachable `jku` (the CDS Hooks sandbox names its public site) works
offline once its key is registered, and a token cannot bring its own key by naming a URL.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet

from azaguard.cds.store import CdsStore
from azaguard.config import CdsClient
from azaguard.smart.jwks import JwksCache as JwksCache  # fetching and caching key sets (re-exported)
from azaguard.smart.jwks import KeysPending as KeysPending
from azaguard.smart.jwks import Untrusted as Untrusted

log = logging.getLogger("azaguard.cds.trust")

ALGORITHMS = ("RS384", "ES384")
SKEW_SECONDS = 60
MAX_LIFETIME_SECONDS = 3600  # a client's JWT is for one call: refuse long-lived ones


@dataclass(frozen=True)
class Caller:
    iss: str
    jti: str
    tenant: str | None


class Verifier:
    def __init__(
        self,
        clients: tuple[CdsClient, ...],
        store: CdsStore,
        *,
        jwks: JwksCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.clients = {c.iss: c for c in clients}
        self.store = store
        self.jwks = jwks or JwksCache()
        self.clock = clock
        self._inline: dict[str, KeySet] = {}
        for c in clients:
            if c.jwks is not None:
                try:
                    self._inline[c.iss] = KeySet.import_key_set(c.jwks)  # type: ignore[arg-type]
                except (JoseError, ValueError, TypeError) as exc:
                    raise ValueError(f"CDS client {c.iss!r}: its jwks cannot be read ({exc})") from exc

    def verify(self, authorization: str | None, audience: str) -> Caller:
        token = _bearer(authorization)
        header, claims = _unverified(token)
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise Untrusted(f"JWT alg {alg!r} is refused (RS384 or ES384 only)")
        iss = claims.get("iss")
        client = self.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise Untrusted("the JWT issuer is not a registered CDS client")
        verified = self._verified(token, client, header, str(alg))
        return self._check_claims(verified, audience, client.iss)

    def _verified(self, token: str, client: CdsClient, header: dict[str, Any], alg: str) -> dict[str, Any]:
        """The claims, once a key this issuer is trusted with verifies the signature (see the module doc)."""
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        registered, problem = self._registered(client, kid, alg)
        if registered:
            return _decode(token, registered, alg)  # its jku is never fetched: the registered key decides
        jku = header.get("jku")
        if not isinstance(jku, str) or jku == client.jwks_url:
            raise Untrusted(problem or _no_key(kid, "registered for its issuer"))
        if jku not in client.jku:
            raise Untrusted(f"{_no_key(kid, 'registered for its issuer')}, and its jku is not on its allow-list")
        fetched = _matching(self.jwks.get(jku, kid), kid, alg)
        if not fetched:
            raise Untrusted(_no_key(kid, "in the JWK Set at its jku"))
        return _decode(token, fetched, alg)

    def _registered(self, client: CdsClient, kid: str | None, alg: str) -> tuple[list[Key], str | None]:
        """The issuer's registered keys that fit this token, and why there are none when it cannot be read."""
        if client.jwks_url is None:
            return _matching(self._inline[client.iss], kid, alg), None
        try:
            return _matching(self.jwks.get(client.jwks_url, kid), kid, alg), None
        except KeysPending:
            raise  # verified again once the set has arrived
        except Untrusted as exc:
            return [], str(exc)

    def _check_claims(self, claims: dict[str, Any], audience: str, iss: str) -> Caller:
        now = self.clock()
        aud = claims.get("aud")
        auds = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
        if not any(isinstance(a, str) and a.rstrip("/") == audience.rstrip("/") for a in auds):
            raise Untrusted("the JWT's aud is not this endpoint")
        exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise Untrusted("the JWT lacks exp or iat")
        if not (math.isfinite(exp) and math.isfinite(iat) and abs(exp) < 1e11 and abs(iat) < 1e11):
            raise Untrusted("the JWT's exp or iat is not a time (NaN, infinite or far outside the calendar)")
        if exp < now - SKEW_SECONDS:
            raise Untrusted("the JWT has expired")
        if iat > now + SKEW_SECONDS:
            raise Untrusted("the JWT is issued in the future")
        if exp - iat > MAX_LIFETIME_SECONDS:
            raise Untrusted("the JWT lives too long for a single call")
        if not isinstance(jti, str) or not jti:
            raise Untrusted("the JWT has no jti")
        expires = datetime.fromtimestamp(exp + SKEW_SECONDS, UTC)
        if not self.store.remember_jti(iss, jti, expires, datetime.fromtimestamp(now, UTC)):
            raise Untrusted("the JWT was already used (replayed jti)")
        tenant = claims.get("tenant")
        return Caller(iss, jti, tenant if isinstance(tenant, str) else None)


_KEY_TYPES = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}


def _matching(keys: KeySet, kid: str | None, alg: str) -> list[Key]:
    """Keys of the set that could have signed this token: its kid (when it names one), a key type and curve
    for its alg, and no `use`/`alg` saying otherwise."""
    kty, crv = _KEY_TYPES[alg]
    return [
        k for k in keys.keys
        if (kid is None or k.kid == kid) and k.key_type == kty and (crv is None or k.get("crv") == crv)
        and k.get("use") in (None, "sig") and k.get("alg") in (None, alg)
    ]


def _no_key(kid: str | None, where: str) -> str:
    return f"no key {where} matches the JWT's kid {kid!r}" if kid else f"no key {where} fits the JWT"


def _decode(token: str, keys: list[Key], alg: str) -> dict[str, Any]:
    for key in keys:
        try:
            return dict(jwt.decode(token, key, algorithms=[alg]).claims)
        except JoseError:
            continue
    raise Untrusted("the JWT signature does not verify")


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Untrusted("no Authorization header (a CDS client signs every call with a JWT)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Untrusted("the Authorization header is not 'Bearer <JWT>'")
    return token.strip()


def _unverified(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims read before verification, only to choose the key (nothing else trusts them)."""
    try:
        compact = jws.extract_compact(token.encode("ascii"))
        header = compact.headers()
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, UnicodeError) as exc:
        raise Untrusted("the bearer token is not a signed JWT") from exc
    if not isinstance(claims, dict):
        raise Untrusted("the JWT payload is not a JSON object")
    return dict(header), claims
