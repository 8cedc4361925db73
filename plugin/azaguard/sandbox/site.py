"""`create_site`: the whole sandbox on one origin — the EHR simulator at `/ehr`, azaguard at `/app`.

`/` redirects to the launcher page `/ehr/`. The web app is imported lazily: if it is not
importable (not written yet, or broken), `/app` answers with a page that says so.
"""

from __future__ import annotations

import importlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp

from azaguard.cds.app import cds_routes, create_cds_service
from azaguard.config import AppConfig, CdsClient
from azaguard.mappings import Mappings
from azaguard.sandbox.ehr.app import create_ehr_app
from azaguard.sandbox.ehr.authserver import Clock, UserClaims
from azaguard.sandbox.ehr.context import EhrContext
from azaguard.settings import Settings
from azaguard.websecurity import BodyLimit, PinnedOrigin

log = logging.getLogger(__name__)


def _placeholder(reason: str) -> ASGIApp:
    async def unavailable(request: Request) -> Response:
        return PlainTextResponse(
            f"The azaguard web app is not available in this build: {reason}", status_code=503
        )

    return Starlette(routes=[Route("/{path:path}", unavailable)])


def _web_app(
    app_config: AppConfig,
    mappings: Mappings | None,
    now: Callable[[], datetime] | None,
    app_transport: httpx.BaseTransport | None,
    settings: Settings | None,
) -> ASGIApp:
    try:
        module = importlib.import_module("azaguard.web.app")
        create_app: Callable[..., ASGIApp] = module.create_app
    except (ImportError, AttributeError) as exc:
        log.warning("azaguard.web.app.create_app is not importable: %s", exc)
        return _placeholder(f"azaguard.web.app.create_app could not be imported ({exc})")
    options: dict[str, Any] = {"mappings": mappings, "settings": settings}
    if now is not None:
        options["now"] = now
    if app_transport is not None:
        options["transport"] = app_transport
    return create_app(app_config, **options)


def _cds_routes(
    app_config: AppConfig,
    context: EhrContext,
    mappings: Mappings | None,
    now: Callable[[], datetime] | None,
    database_url: str | None,
    insecure: bool,
    settings: Settings | None,
) -> list[Route]:
    """The CDS service, trusting the simulator's key (the JWKS it also publishes at /ehr/cds/jwks)."""
    assert context.cds is not None  # noqa: S101 - created with cds_base just above
    trusted = CdsClient(iss=context.cds.iss, jwks=context.cds.jwks)
    config = app_config.model_copy(update={
        "cds_clients": (*app_config.cds_clients, trusted),
        "cds_database_url": database_url or app_config.cds_database_url,
    })
    options: dict[str, Any] = {"mappings": mappings, "settings": settings}
    if now is not None:
        options["now"] = now
    return cds_routes(create_cds_service(config, insecure=insecure, **options))


def create_site(
    *,
    fhir_upstream: str,
    public_base: str,
    app_config: AppConfig,
    mappings: Mappings | None = None,
    token_lifetime: int = 3600,
    granted_scope_filter: Callable[[str], str] | None = None,
    rotate_refresh_tokens: bool = False,
    user_claims: UserClaims = "sandbox",
    clock: Clock = time.time,
    now: Callable[[], datetime] | None = None,
    app_transport: httpx.BaseTransport | None = None,
    cds_database_url: str | None = None,
    insecure_cds: bool = False,
    settings: Settings | None = None,
) -> Starlette:
    """One Starlette site: `/ehr` (simulator in front of `fhir_upstream`), `/app` (azaguard), `/cds-services`
    (azaguard's CDS Hooks service, called by the simulator with its own signed JWTs), `/` → `/ehr/`.

    `clock` drives the simulator's expiries; `now` and `app_transport` are passed to the web app
    (its clock and its HTTP transport) when given; `settings` (the environment as `demo` read it) to both
    apps. The simulator's state is `site.state.ehr`.
    """
    ehr_app = create_ehr_app(
        fhir_upstream=fhir_upstream,
        public_base=public_base,
        app_config=app_config,
        token_lifetime=token_lifetime,
        granted_scope_filter=granted_scope_filter,
        rotate_refresh_tokens=rotate_refresh_tokens,
        user_claims=user_claims,
        clock=clock,
        cds_base=public_base,
    )
    context: EhrContext = ehr_app.state.ehr
    cds = _cds_routes(app_config, context, mappings, now, cds_database_url, insecure_cds, settings)

    async def home(request: Request) -> Response:
        return RedirectResponse("/ehr/", status_code=302)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Mounted apps get no lifespan of their own: close the simulator's pooled client here.
        yield
        await context.upstream.aclose()

    site = Starlette(
        routes=[
            Route("/", home, methods=["GET"]),
            *cds,
            Mount("/ehr", app=ehr_app),
            Mount("/app", app=_web_app(app_config, mappings, now, app_transport, settings)),
        ],
        lifespan=lifespan,
    )
    site.state.ehr = context
    # Redirects the routers build (e.g. /app → /app/) come from the public base, never the Host header.
    site.add_middleware(PinnedOrigin, public_base=public_base)
    site.add_middleware(BodyLimit)  # outermost: bodies are bounded before anything reads them
    return site
