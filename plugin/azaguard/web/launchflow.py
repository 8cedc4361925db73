"""The SMART App Launch as a flow of its own, free of any web framework.

Two transitions, each from what the browser sent (query parameters, its session cookie, its address) to what it
must be answered: a `Redirect` (with the session whose id the cookie must carry) or a `Refusal` (an error page).

- launch / start → the authorization URL (the launch bound to a fresh state and PKCE verifier in the session);
- callback → the token exchange (code + verifier), the identity, and the completed launch in a rotated session.

The pure steps (`iss_refusal`, `authorization`, `callback_refusal`, `exchange_request`, `completed_launch`) take
and return values only; `LaunchFlow` strings them together over the session store, the discovery cache and the
token endpoint. Starlette appears nowhere: web/app.py turns a Redirect or Refusal into a response.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol
from urllib.parse import urlencode

import httpx

from azaguard.config import AppConfig, Scopes
from azaguard.errors import http_status
from azaguard.ops import logs, metrics
from azaguard.smart.discovery import DiscoveryCache, DiscoveryError, SmartConfiguration
from azaguard.smart.jwks import JwksCache
from azaguard.smart.launch import (
    Identity,
    TokenError,
    TokenSet,
    authorize_url,
    exchange_code,
    is_patient_user,
    new_state,
    read_identity,
    select_scope,
)
from azaguard.smart.pkce import new_pkce
from azaguard.smart.session import LaunchContext, PendingAuthorization, Session, SessionStore

log = logging.getLogger("azaguard.web")

RELAUNCH = "Open azaguard again from the patient's chart in the EHR."


@dataclass(frozen=True)
class Refusal:
    """An error page: its status, heading and sentences (and, when rate-limited, Retry-After)."""

    status: int
    heading: str
    message: str
    detail: str | None = None
    advice: str | None = None
    retry_after: int | None = None


@dataclass(frozen=True)
class Redirect:
    """Send the browser to `url`, its session cookie set to `session`'s id."""

    url: str
    status: int
    session: Session = field(repr=False)


class Limiter(Protocol):
    def allow(self, key: str) -> float: ...


# --- the pure steps ------------------------------------------------------------------------------


def iss_refusal(config: AppConfig, iss: str) -> Refusal | None:
    """Refuse a missing or unknown iss before any request leaves the app."""
    if not iss:
        return Refusal(400, "Launch refused", "The launch carried no 'iss' (FHIR server).")
    if config.iss_allowed(iss):
        return None
    metrics.refused(log, "launch refused", "iss-not-allowed", iss=iss[:200])
    return Refusal(
        400, "Launch refused",
        f"The FHIR server {iss} is not on this app's list of allowed servers, so azaguard did not contact it.",
        # The allowed servers are not listed: that list is configuration (some launcher URLs embed a client
        # secret), and whoever asks is not necessarily hospital IT.
        advice="Hospital IT: to trust this server, add it to allowed_iss in smart_launch.json.",
    )


def authorization(
    config: AppConfig, smart: SmartConfiguration, *, iss: str, launch: str | None, scopes: Scopes | None,
    now: datetime,
) -> tuple[PendingAuthorization, str]:
    """The authorization in flight (fresh state, S256 PKCE always, advertised or not) and the URL that asks
    the EHR's authorization server for it."""
    scope = select_scope(config, smart.capabilities, standalone=launch is None, scopes=scopes)
    pkce = new_pkce()
    pending = PendingAuthorization(
        state=new_state(), iss=iss, smart=smart, code_verifier=pkce.verifier, redirect_uri=config.redirect_uri,
        scope=scope, launch=launch, created=now,
    )
    url = authorize_url(
        smart, client_id=config.client_id, redirect_uri=config.redirect_uri, scope=scope, state=pending.state,
        code_challenge=pkce.challenge, launch=launch,
    )
    return pending, url


def callback_refusal(params: Mapping[str, str]) -> Refusal | None:
    """The authorization server's answer when it is no code: a denial, or nothing usable."""
    error = params.get("error")
    if error:
        metrics.refused(log, "launch refused", "authorization-denied", error=error[:100])
        return Refusal(400, "The EHR did not authorize azaguard", f"The authorization server answered: {error}.",
                       detail=params.get("error_description"), advice=RELAUNCH)
    if not params.get("code"):
        return Refusal(400, "Launch refused", "The authorization response carried no code.")
    return None


@dataclass(frozen=True)
class TokenExchange:
    """The authorization_code grant the callback sends to the token endpoint (with our PKCE verifier)."""

    smart: SmartConfiguration
    code: str = field(repr=False)
    code_verifier: str = field(repr=False)
    redirect_uri: str
    requested_scope: str


def exchange_request(pending: PendingAuthorization, code: str) -> TokenExchange:
    return TokenExchange(pending.smart, code, pending.code_verifier, pending.redirect_uri, pending.scope)


def token_refusal(exc: TokenError) -> Refusal:
    metrics.refused(log, "launch refused", "token-refused", error=exc.error[:100], status=exc.status)
    # The token endpoint's own answer decides (not the tree's 401, which is for a caller we refuse): its 4xx
    # refused this code or verifier (400: launch again), anything else is the EHR's failure (502).
    status = 400 if exc.status is not None and 400 <= exc.status < 500 else 502
    return Refusal(status, "The EHR refused to issue a token", f"Token endpoint: {exc.error}.",
                   detail=exc.description, advice=RELAUNCH)


def wants_identity(tokens: TokenSet) -> bool:
    """An id_token worth reading: granted with openid and fhirUser."""
    return tokens.id_token is not None and {"openid", "fhirUser"} <= set(tokens.scope.split())


def completed_launch(
    pending: PendingAuthorization, tokens: TokenSet, identity: Identity | None, now: datetime
) -> LaunchContext:
    return LaunchContext(id=secrets.token_urlsafe(16), iss=pending.iss, smart=pending.smart, tokens=tokens,
                         requested_scope=pending.scope, identity=identity, created=now)


def home_path(ctx: LaunchContext) -> str:
    """The launch's page, below the app's root: the clinician's page, or the patient view for a patient."""
    where = "/patient/" if is_patient_user(ctx.identity) else "/"
    return f"{where}?{urlencode({'ctx': ctx.id})}"


STATE_MISMATCH = Refusal(400, "Launch refused", "The authorization response does not match a launch started in "
                         "this browser (state mismatch).", advice=RELAUNCH)


# --- the flow over the session store and the EHR --------------------------------------------------


class LaunchFlow:
    """launch/start → authorize URL; callback → token exchange → completed launch."""

    def __init__(
        self, config: AppConfig, sessions: SessionStore, *, http: httpx.Client, limiter: Limiter,
        now: Callable[[], datetime], discovery: DiscoveryCache | None = None, jwks: JwksCache | None = None,
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.http = http
        self.limiter = limiter  # per client address
        self.now = now
        self.discovery = discovery or DiscoveryCache()  # a flood of launches sends one discovery per iss and TTL
        self.jwks = jwks or JwksCache(http=http)  # the EHRs' id_token keys: one fetch per EHR and TTL, not per login

    def rate_limited(self, address: str) -> Refusal | None:
        wait = self.limiter.allow(address)
        if not wait:
            return None
        metrics.refused(log, "launch refused", "rate-limited", retry_after=int(wait) + 1)
        return Refusal(429, "Too many launches", "This address has started too many launches in a short time.",
                       advice="Wait a minute, then open azaguard again from the EHR.", retry_after=int(wait) + 1)

    def launch(self, params: Mapping[str, str], cookie: str | None, address: str) -> Redirect | Refusal:
        """An EHR launch: `iss` and `launch` from the EHR."""
        iss = params.get("iss", "")
        refused = self.rate_limited(address) or iss_refusal(self.config, iss)
        if refused is not None:
            return refused
        launch = params.get("launch")
        if not launch:
            return Refusal(400, "Launch refused", "The EHR launch carried no 'launch' parameter.", advice=RELAUNCH)
        return self.begin(iss, launch, cookie, address)

    def start(
        self, params: Mapping[str, str], cookie: str | None, address: str, *, scopes: Scopes | None = None
    ) -> Redirect | Refusal:
        """A standalone launch: the FHIR server named (default: the first allowed), no EHR context."""
        iss = params.get("iss") or self.config.allowed_iss[0]
        refused = self.rate_limited(address) or iss_refusal(self.config, iss)
        return refused if refused is not None else self.begin(iss, None, cookie, address, scopes=scopes)

    def begin(
        self, iss: str, launch: str | None, cookie: str | None, address: str, *, scopes: Scopes | None = None
    ) -> Redirect | Refusal:
        iss = iss.rstrip("/")
        try:
            smart = self.discovery.discover(iss, self.http)
        except DiscoveryError as exc:
            metrics.refused(log, "launch failed", "discovery-failed", iss=iss, detail=str(exc)[:300])
            return Refusal(http_status(exc), "Cannot reach the EHR's authorization server", str(exc))
        now = self.now()
        pending, url = authorization(self.config, smart, iss=iss, launch=launch, scopes=scopes, now=now)
        session = self.sessions.get_or_create(cookie, now, address)
        self.sessions.add_pending(session, pending)
        metrics.LAUNCHES.labels("started").inc()
        return Redirect(url, 302, session)

    def callback(self, params: Mapping[str, str], cookie: str | None, address: str) -> Redirect | Refusal:
        """The redirect_uri: the state's launch, its code exchanged, the launch stored; redirect to its page
        (a path below the app's root)."""
        session, pending = self.claim(params.get("state", ""), cookie, address)
        if session is None or pending is None:
            metrics.refused(log, "launch refused", "state-unknown" if session is not None else "no-session")
            return STATE_MISMATCH
        refused = callback_refusal(params)
        if refused is not None:
            return refused
        exchange = exchange_request(pending, params["code"])
        try:
            tokens = exchange_code(
                self.http, self.config, exchange.smart, code=exchange.code, code_verifier=exchange.code_verifier,
                redirect_uri=exchange.redirect_uri, requested_scope=exchange.requested_scope, now=self.now(),
            )
        except TokenError as exc:
            return token_refusal(exc)
        identity = (read_identity(self.http, self.config, pending.smart, tokens.id_token or "", self.now(), self.jwks)
                    if wants_identity(tokens) else None)
        ctx = completed_launch(pending, tokens, identity, self.now())
        self.sessions.add_launch(session, ctx)
        self.sessions.rotate(session, self.now())  # no fixation: the pre-login id is now worthless
        metrics.LAUNCHES.labels("completed").inc()
        log.info("launch completed", extra={"iss": ctx.iss, "patient": logs.patient(ctx.patient_id),
                                            "user": identity.fhir_user if identity else None})
        return Redirect(home_path(ctx), 303, session)

    def claim(
        self, state: str, cookie: str | None, address: str
    ) -> tuple[Session | None, PendingAuthorization | None]:
        """The session and the authorization in flight this state names (taken: single use)."""
        now = self.now()
        session = self.sessions.get(cookie, now)
        pending = self.sessions.take_pending(session, state, now) if session is not None and state else None
        if pending is None and state:
            # The launch is bound to its state server-side: a callback whose cookie the browser withheld (a
            # third-party frame, or the launch and the callback in different cookie partitions) still finds it,
            # from the client address that started it (a callback link sent to someone else's browser does
            # not). The state is 256 random bits, single use, 10 minutes; our PKCE verifier never leaves.
            owner = self.sessions.pending_owner(state, now)
            if owner is not None and owner.address == address:
                pending = self.sessions.take_pending(owner, state, now)
                if pending is not None:
                    session = session or owner
        return session, pending
