"""A launch's access token kept fresh while the app reads the patient's record with it.

`Tokens.with_token(session, ctx, call)` runs `call` with a FhirClient bearing the launch's token: refreshed
shortly before it expires, and when the EHR answers 401 (the refused request is sent once more with the new
token, by the FHIR client's one `httpauth.BearerAuth`: `call` is never run twice); a token that cannot be
renewed ends in `SessionExpired` (the page says when and how to relaunch). Refreshed tokens go back into the
session store, so every replica sees them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

import httpx

from azaguard.config import AppConfig
from azaguard.errors import AuthError
from azaguard.fhir.client import PROCESS_POOLS, FhirClient
from azaguard.fhir.errors import AuthExpired
from azaguard.ops import metrics
from azaguard.smart.launch import TokenError, refresh
from azaguard.smart.session import LaunchContext, Session, SessionStore

log = logging.getLogger("azaguard.web")

T = TypeVar("T")


class SessionExpired(AuthError):
    """The access token is dead and could not be refreshed."""


class Tokens:
    def __init__(
        self, config: AppConfig, sessions: SessionStore, *, http: httpx.Client,
        transport: httpx.BaseTransport | None, now: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.sessions = sessions
        self.http = http  # for the token endpoint
        self.transport = transport  # for the FHIR server
        self.now = now

    def client(self, session: Session, ctx: LaunchContext) -> FhirClient:
        # A client per request over the process's kept-alive connections: a page pays the TCP/TLS
        # handshake with the EHR once per process, not on every request.
        def renew(refused: str | None) -> None:
            if ctx.tokens.access_token == refused:  # else another request has refreshed it already
                self.refresh(session, ctx, force=True)

        return FhirClient(ctx.iss, token=lambda: ctx.tokens.access_token, renew=renew, transport=self.transport,
                          pools=PROCESS_POOLS)

    def with_token(self, session: Session, ctx: LaunchContext, call: Callable[[FhirClient], T]) -> T:
        """Run `call` with a fresh access token: refreshed before expiry, and on a 401 (by the client)."""
        self.refresh(session, ctx, force=False)
        with self.client(session, ctx) as client:
            try:
                return call(client)
            except AuthExpired as exc:  # refused again with a refreshed token
                raise SessionExpired from exc

    def refresh(self, session: Session, ctx: LaunchContext, *, force: bool) -> None:
        """A new access token before this one expires (or, forced, after the EHR refused it). Without a refresh
        token, or when an early refresh fails, the current token serves until it actually expires."""
        seen = ctx.tokens
        with ctx.lock:
            if ctx.tokens is not seen:
                return  # another request refreshed meanwhile
            now = self.now()
            if not force and not ctx.tokens.needs_refresh(now):
                return
            try:
                ctx.tokens = refresh(self.http, self.config, ctx.smart, ctx.tokens, now)
            except TokenError as exc:
                metrics.refused(log, "token refresh refused", "refresh-refused", error=exc.error[:100])
                if force or ctx.tokens.expired(now):
                    raise SessionExpired from exc
                return
            self.sessions.update_launch(session, ctx)  # a shared store: every replica sees the new tokens
