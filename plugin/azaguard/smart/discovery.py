"""Where a FHIR server's authorization lives: .well-known/smart-configuration, else metadata.

SMART App Launch 2.x servers publish `{iss}/.well-known/smart-configuration`;
older ones only the `oauth-uris` extension on the CapabilityStatement's
rest.security. Endpoints are checked to be absolute http(s) URLs because the
app redirects the user's browser to the authorization endpoint. The one reader of
these documents: the launch (`discover`) and SMART Backend Services
(`smart_configuration`, `endpoint`) both read them here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx

from azaguard.config import is_loopback
from azaguard.errors import AuthError
from azaguard.httpbound import SMALL_BYTES, ResponseTooLarge, ResponseTooSlow, within

OAUTH_URIS = "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
CAPABILITIES_EXT = "http://fhir-registry.smarthealthit.org/StructureDefinition/capabilities"
DISCOVERY_TIMEOUT = 10.0


class DiscoveryError(AuthError):
    """The server publishes no usable SMART configuration: exit 3; HTTP 502 (for a web service it is the server
    behind it that failed, not the caller who is unauthorised)."""

    http_status = 502
    http_error = "bad-gateway"


@dataclass(frozen=True)
class SmartConfiguration:
    iss: str
    authorization_endpoint: str
    token_endpoint: str
    capabilities: frozenset[str]
    code_challenge_methods: tuple[str, ...]
    jwks_uri: str | None
    issuer: str | None  # the OpenID issuer, for id_token checks
    source: Literal["well-known", "metadata"]

    @property
    def supports_v2(self) -> bool:
        return "permission-v2" in self.capabilities


def smart_configuration(base: str, http: httpx.Client) -> dict[str, Any]:
    """The JSON object at `{base}/.well-known/smart-configuration` (bounded read), else DiscoveryError."""
    return _get_json(http, f"{base.rstrip('/')}/.well-known/smart-configuration", "application/json")


def discover(iss: str, http: httpx.Client) -> SmartConfiguration:
    """Read the SMART configuration of `iss` (already checked against the allow-list)."""
    base = iss.rstrip("/")
    problems: list[str] = []
    try:
        return _from_well_known(base, smart_configuration(base, http))
    except DiscoveryError as exc:
        problems.append(f".well-known/smart-configuration: {exc}")
    try:
        doc = _get_json(http, f"{base}/metadata", "application/fhir+json")
        return _from_metadata(base, doc)
    except DiscoveryError as exc:
        problems.append(f"metadata: {exc}")
    raise DiscoveryError(f"no SMART configuration at {base} ({'; '.join(problems)})")


class DiscoveryCache:
    """Discovery results per iss, so a flood of launches does not become a flood of requests to the
    EHR: answers are kept `ttl` seconds, failures `negative_ttl` seconds. One lock per iss: concurrent
    launches at one EHR wait for its one discovery, never for another EHR's (a slow EHR delays only its
    own launches). The iss are allow-listed, so the cache (and its locks) is as small as the allow-list."""

    def __init__(
        self, *, ttl: float = 300.0, negative_ttl: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.negative_ttl, self._clock = ttl, negative_ttl, clock
        self._entries: dict[str, tuple[float, SmartConfiguration | DiscoveryError]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()  # guards the two dicts, never held during a request
        self.requests = 0  # discoveries actually sent

    def discover(self, iss: str, http: httpx.Client) -> SmartConfiguration:
        key = iss.rstrip("/")
        with self._lock:
            per_iss = self._locks.setdefault(key, threading.Lock())
        with per_iss:
            found = self._entries.get(key)
            if found is not None and self._clock() < found[0]:
                if isinstance(found[1], DiscoveryError):
                    raise found[1]
                return found[1]
            with self._lock:
                self.requests += 1
            try:
                smart = discover(key, http)
            except DiscoveryError as exc:
                self._entries[key] = (self._clock() + self.negative_ttl, exc)
                raise
            self._entries[key] = (self._clock() + self.ttl, smart)
            return smart


def _get_json(http: httpx.Client, url: str, accept: str) -> dict[str, Any]:
    try:
        response = http.get(url, headers={"Accept": accept}, extensions=within(SMALL_BYTES, DISCOVERY_TIMEOUT))
    except (ResponseTooLarge, ResponseTooSlow) as exc:
        raise DiscoveryError(str(exc)) from exc  # the bound's own sentence: larger than / longer than
    except httpx.HTTPError as exc:
        raise DiscoveryError(f"unreachable ({type(exc).__name__})") from exc
    if response.status_code != 200:
        raise DiscoveryError(f"HTTP {response.status_code}")
    try:
        doc = response.json()
    except (ValueError, RecursionError) as exc:
        raise DiscoveryError("not JSON") from exc
    if not isinstance(doc, dict):
        raise DiscoveryError("not a JSON object")
    return doc


def endpoint(value: object, name: str) -> str:
    """An endpoint from a discovery document: an absolute https URL (http only on loopback), else DiscoveryError."""
    if not isinstance(value, str):
        raise DiscoveryError(f"no {name}")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DiscoveryError(f"{name} is not an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(value):
        raise DiscoveryError(f"{name} must use https")
    return value


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def _from_well_known(iss: str, doc: dict[str, Any]) -> SmartConfiguration:
    jwks = doc.get("jwks_uri")
    return SmartConfiguration(
        iss=iss,
        authorization_endpoint=endpoint(doc.get("authorization_endpoint"), "authorization_endpoint"),
        token_endpoint=endpoint(doc.get("token_endpoint"), "token_endpoint"),
        capabilities=frozenset(_strings(doc.get("capabilities"))),
        code_challenge_methods=_strings(doc.get("code_challenge_methods_supported")),
        jwks_uri=endpoint(jwks, "jwks_uri") if jwks is not None else None,
        issuer=doc.get("issuer") if isinstance(doc.get("issuer"), str) else None,
        source="well-known",
    )


def _from_metadata(iss: str, doc: dict[str, Any]) -> SmartConfiguration:
    if doc.get("resourceType") != "CapabilityStatement":
        raise DiscoveryError("not a CapabilityStatement")
    for rest in doc.get("rest") or []:
        security = rest.get("security") if isinstance(rest, dict) else None
        if not isinstance(security, dict):
            continue
        uris: dict[str, object] = {}
        capabilities: set[str] = set()
        for ext in security.get("extension") or []:
            if not isinstance(ext, dict):
                continue
            if ext.get("url") == OAUTH_URIS:
                for sub in ext.get("extension") or []:
                    if isinstance(sub, dict) and isinstance(sub.get("url"), str):
                        uris[sub["url"]] = sub.get("valueUri") or sub.get("valueUrl")
            elif ext.get("url") == CAPABILITIES_EXT and isinstance(ext.get("valueCode"), str):
                capabilities.add(ext["valueCode"])
        if uris:
            return SmartConfiguration(
                iss=iss,
                authorization_endpoint=endpoint(uris.get("authorize"), "authorize URI"),
                token_endpoint=endpoint(uris.get("token"), "token URI"),
                capabilities=frozenset(capabilities),
                code_challenge_methods=(),
                jwks_uri=None,
                issuer=None,
                source="metadata",
            )
    raise DiscoveryError("no oauth-uris extension in rest.security")
