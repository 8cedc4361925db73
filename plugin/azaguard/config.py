"""The SMART app registration (smart_launch.json) as a validated AppConfig.

The file names the client, its redirect and launch URIs, the scopes it asks
for and the FHIR servers (`iss`) it will talk to. A confidential client's
secret never lives in the file: the file names the environment variable
that holds it.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from azaguard.errors import ConfigError as ConfigError  # re-exported: smart_launch.json or a setting is unusable
from azaguard.settings import SMART_CONFIG, Settings, current

# What `session_store` may name (ops/store.py opens it): each replica's memory, the service database, or Redis.
MEMORY, DATABASE = "memory", "database"


def valid_store_url(url: str) -> str:
    if url in (MEMORY, DATABASE) or url.startswith(("redis://", "rediss://", "unix://")):
        return url
    # The scheme only: a mistyped redis://:password@host must not put the password in an error or a log.
    scheme = urlsplit(url).scheme or "no scheme"
    raise ValueError(f"session_store must be 'memory', 'database' or a redis:// URL, not a {scheme!r} URL")

CONFIG_ENV = SMART_CONFIG
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def origin_of(url: str) -> str:
    """scheme://host[:port] of an absolute URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def is_loopback(url: str) -> bool:
    return (urlsplit(url).hostname or "") in _LOOPBACK_HOSTS


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an absolute http(s) URL")
    if parts.scheme == "http" and not is_loopback(url):
        raise ValueError(f"{url!r} must use https (plain http only on 127.0.0.1/localhost)")
    if parts.fragment:
        raise ValueError(f"{url!r} must not have a #fragment")
    return url


class Scopes(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    v2: str = Field(
        min_length=1
    )  # SMART 2 syntax (.rs / .cruds), used when the server advertises permission-v2
    v1: str = Field(min_length=1)  # SMART 1 syntax (.read / .write)


class CdsClient(BaseModel):
    """A CDS Hooks client (an EHR) trusted to call the CDS service: its JWT issuer and its keys."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    iss: str = Field(min_length=1)
    jwks: dict[str, object] | None = None  # an inline JWK Set {"keys": [...]}
    jwks_url: str | None = None
    # `jku` header values honoured for this issuer (jwks_url is always honoured).
    jku: tuple[str, ...] = ()
    # The FHIR servers a hook's fhirServer may name (URL prefixes; without a port: any port). Empty: any
    # https server whose every address is public (never loopback, link-local or private).
    fhir_servers: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _one_key_source(self) -> CdsClient:
        if (self.jwks is None) == (self.jwks_url is None):
            raise ValueError(f"CDS client {self.iss!r}: give exactly one of jwks or jwks_url")
        if self.jwks is not None and not isinstance(self.jwks.get("keys"), list):
            raise ValueError(f"CDS client {self.iss!r}: jwks must be a JWK Set ({{\"keys\": [...]}})")
        for url in (self.jwks_url, *self.jku, *self.fhir_servers):
            if url is not None:
                _check_url(url)
        return self


class AppConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    # The environment it was loaded with (load_app_config): the secrets it names are read from there.
    _settings: Settings | None = PrivateAttr(default=None)

    client_id: str = Field(min_length=1)
    client_type: Literal["public", "confidential-symmetric"]
    client_secret_env: str | None = None
    redirect_uris: tuple[str, ...] = Field(min_length=1)
    launch_uri: str
    scopes: Scopes
    # A patient's own standalone launch (the patient view): launch/patient, patient/*.rs and the check-in's
    # creates. None: the app offers no patient launch.
    patient_scopes: Scopes | None = None
    allowed_iss: tuple[str, ...] = Field(min_length=1)
    # Who may frame the page (CSP frame-ancestors); None: 'self' plus the allowed iss origins.
    frame_ancestors: tuple[str, ...] | None = None
    # CDS Hooks: the EHRs allowed to call the service, and where feedback and seen JWT ids are kept
    # (an SQLAlchemy URL; None: an SQLite file in the user's state directory).
    cds_clients: tuple[CdsClient, ...] = ()
    cds_database_url: str | None = None
    cds_fetch_seconds: float = Field(4.0, gt=0, le=60, description=(
        "How long the FHIR fetches of one CDS hook call (what the prefetch left out) may take in all; beyond "
        "it the call is answered 412."), json_schema_extra={"example": 4})
    # The refresh token the app asks for (SMART 2): online_access (usable while the user is online, the
    # default), offline_access (beyond; only where the EHR and policy allow it), or none.
    refresh_scope: Literal["online_access", "offline_access", "none"] = "online_access"

    # -- operations (docs/operations.md); `env` names the variable that overrides the file --
    log_format: Literal["text", "json"] = Field("text", description=(
        "Log lines on stderr: readable text, or one JSON object per line (time, level, event, request_id, "
        "fields)."), json_schema_extra={"env": "AZAGUARD_LOG_FORMAT", "example": "json"})
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description=(
        "The lowest level logged. INFO has one access line per request; refusals are WARNING."),
        json_schema_extra={"env": "AZAGUARD_LOG_LEVEL", "example": "INFO"})
    log_patient_ids: Literal["plain", "hashed", "none"] = Field("hashed", description=(
        "How patient identifiers appear in log lines: as they are, as sha256:<16 hex>, or not at all. "
        "The audit trail always keeps them plain."), json_schema_extra={"env": "AZAGUARD_LOG_PATIENT_IDS",
                                                                         "example": "none"})
    session_store: str = Field("memory", description=(
        "Where sessions, launches in flight, the CDS JWT replay cache and rate-limit counters live: "
        "'memory' (this process: one replica only), a redis:// or rediss:// URL, or 'database' "
        "(cds_database_url). Any number of replicas may share Redis or the database."),
        json_schema_extra={"env": "AZAGUARD_SESSION_STORE", "example": "redis://redis:6379/0"})
    session_key_env: str | None = Field(None, description=(
        "The environment variable holding the key(s) that encrypt sessions in a shared store (they carry the "
        "EHR's tokens): Fernet keys, comma-separated, the first encrypts and every one decrypts (rotation). "
        "Unset: stored in clear (a warning at start)."), json_schema_extra={"example": "AZAGUARD_SESSION_KEY"})
    trusted_proxies: tuple[str, ...] = Field((), description=(
        "CIDRs of reverse proxies whose X-Forwarded-For is believed (the client address for rate limits "
        "and the audit trail). Empty: the peer's address is the client's."),
        json_schema_extra={"example": ["10.0.0.0/8"]})
    metrics_networks: tuple[str, ...] = Field((), description=(
        "CIDRs allowed to read GET /metrics besides loopback."), json_schema_extra={"example": ["10.1.2.0/24"]})
    metrics_token_env: str | None = Field(None, description=(
        "The environment variable holding a bearer token that also opens GET /metrics (never the token "
        "itself)."), json_schema_extra={"example": "AZAGUARD_METRICS_TOKEN"})
    audit_fhir: bool = Field(False, description=(
        "Also write each audit record to the EHR as a FHIR AuditEvent (IHE Basic Audit Log Patterns), "
        "batched, in the background; never delays or fails the clinical answer. The token in use (the launch's, "
        "the hook's fhirAuthorization, the scan's) must be allowed to create AuditEvent (add "
        "patient/AuditEvent.c to the scopes)."),
        json_schema_extra={"example": True})

    @field_validator("session_store")
    @classmethod
    def _store_url(cls, url: str) -> str:
        return valid_store_url(url)

    @field_validator("trusted_proxies", "metrics_networks")
    @classmethod
    def _cidrs(cls, cidrs: tuple[str, ...]) -> tuple[str, ...]:
        for cidr in cidrs:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"{cidr!r} is not an IP network (CIDR)") from exc
        return cidrs

    def session_keys(self) -> list[str]:
        """The session encryption keys from session_key_env (none when it is not configured)."""
        if not self.session_key_env:
            return []
        value = current(self._settings).named(self.session_key_env) or ""
        keys = [k.strip() for k in value.split(",") if k.strip()]
        if not keys:
            raise ConfigError(f"environment variable {self.session_key_env} (the session key) is not set")
        return keys

    def metrics_token(self) -> str | None:
        return current(self._settings).named(self.metrics_token_env) if self.metrics_token_env else None

    @model_validator(mode="before")
    @classmethod
    def _no_secret_in_file(cls, data: object) -> object:
        if isinstance(data, dict) and "client_secret" in data:
            raise ValueError(
                "client_secret must not be written in the configuration; "
                "put it in an environment variable and name that variable in client_secret_env"
            )
        return data

    @field_validator("redirect_uris", "allowed_iss")
    @classmethod
    def _urls(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(_check_url(u) for u in urls)

    @field_validator("allowed_iss")
    @classmethod
    def _iss_without_slash(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        # iss is compared as a string; the spec's FHIR base has no trailing slash.
        return tuple(u.rstrip("/") for u in urls)

    @field_validator("launch_uri")
    @classmethod
    def _launch_url(cls, url: str) -> str:
        return _check_url(url)

    @model_validator(mode="after")
    def _secret_source(self) -> AppConfig:
        if self.client_type == "confidential-symmetric" and not self.client_secret_env:
            raise ValueError(
                "a confidential-symmetric client needs client_secret_env (the variable holding the secret)"
            )
        if self.client_type == "public" and self.client_secret_env:
            raise ValueError(
                "a public client has no secret: remove client_secret_env or use confidential-symmetric"
            )
        return self

    @property
    def redirect_uri(self) -> str:
        """The redirect URI sent in authorization requests (the first registered)."""
        return self.redirect_uris[0]

    @property
    def public_base(self) -> str:
        """The app's own public origin (that of launch_uri): every absolute URL it builds starts here."""
        return origin_of(self.launch_uri)

    @property
    def secure_cookies(self) -> bool:
        """Secure cookies unless the app itself runs on loopback (plain-http demo)."""
        return not is_loopback(self.redirect_uri)

    def client_secret(self) -> str | None:
        """The confidential client's secret, read from the environment when needed (never stored)."""
        if self.client_type == "public":
            return None
        secret = current(self._settings).named(self.client_secret_env or "")
        if not secret:
            raise ConfigError(f"environment variable {self.client_secret_env} (the client secret) is not set")
        return secret

    def iss_allowed(self, iss: str) -> bool:
        return iss.rstrip("/") in self.allowed_iss if iss else False

    def frame_ancestor_sources(self) -> tuple[str, ...]:
        if self.frame_ancestors is not None:
            return self.frame_ancestors
        origins = dict.fromkeys(origin_of(u) for u in self.allowed_iss)
        return ("'self'", *origins)


def default_config_path(settings: Settings | None = None) -> Path:
    """AZAGUARD_SMART_CONFIG, else smart_launch.json at the repository top level."""
    override = current(settings).smart_config
    if override:
        return override
    return Path(__file__).resolve().parent.parent.parent / "smart_launch.json"


def load_app_config(
    path: Path | None = None, *, public_base: str | None = None, settings: Settings | None = None
) -> AppConfig:
    """Read and validate the app registration, with the environment's overrides and secrets (`settings`, as the
    entry point read them).

    `public_base` (e.g. "http://127.0.0.1:8401") replaces the app's own origin (that
    of launch_uri) in every URL of the file, for the demo on another port and tests.
    """
    settings = current(settings)
    path = path or default_config_path(settings)
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read the SMART app configuration {path}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a JSON object")
    if public_base is not None:
        data = _rebase(data, public_base)
    data = with_environment(data, settings)
    try:
        config = AppConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"invalid SMART app configuration {path}:\n{_readable(exc)}") from exc
    config._settings = settings
    config.client_secret()  # fail at start, not at the first launch
    config.session_keys()
    return config


def environment_overrides() -> dict[str, str]:
    """Config key -> the environment variable that overrides it (AppConfig's `env` extras)."""
    out = {}
    for name, info in AppConfig.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and isinstance(extra.get("env"), str):
            out[name] = str(extra["env"])
    return out


def with_environment(data: dict[str, object], settings: Settings | None = None) -> dict[str, object]:
    """The file's settings with those set in the environment replaced (a container sets them there)."""
    out = dict(data)
    environment = current(settings)
    for key, variable in environment_overrides().items():
        value = environment.named(variable)
        if value:
            out[key] = value
    return out


def _rebase(data: dict[str, object], public_base: str) -> dict[str, object]:
    base = public_base.rstrip("/")
    _check_url(base)
    launch_uri = data.get("launch_uri")
    if not isinstance(launch_uri, str):
        return data  # validation will say what is wrong
    old = origin_of(launch_uri)

    def move(url: object) -> object:
        if isinstance(url, str) and (url == old or url.startswith(old + "/")):
            return base + url[len(old) :]
        return url

    out = dict(data)
    out["launch_uri"] = move(launch_uri)
    for key in ("redirect_uris", "allowed_iss"):
        value = data.get(key)
        if isinstance(value, list):
            out[key] = [move(u) for u in value]
    return out


def _readable(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)
