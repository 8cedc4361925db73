"""The SMART app: launch endpoints and the clinician's page, composed.

Routes (mounted under /app by the site): /launch (EHR launch), /start (standalone), /callback (redirect_uri),
/ (the page), /alerts (POST: write alerts), /patient/… (the patient view), /static. Tokens stay in the
server-side session store; the browser holds only a random session id (HttpOnly, SameSite=Lax, or None and
Partitioned inside an https frame) and, in the page URL, the id of its launch so that two tabs with two patients
never mix.

The rooms: web/launchflow.py (the launch, framework-free), web/tokens.py (a launch's token kept fresh),
web/views.py (the page's typed view models), web/names.py (who is signed in), web/clinician.py and
web/patient.py (the pages), web/pages.py (templates, error pages, the cookie), web/context.py (what they share).
This module only builds them and wires the routes; `serve` runs the result.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import azaguard.cds.app as cdsapp  # read at call time (tests spy on create_cds_service)
from azaguard.config import AppConfig, load_app_config
from azaguard.errors import AzaguardError
from azaguard.httpbound import Bound
from azaguard.httpclient import client as outbound_client
from azaguard.mappings import Mappings, default_mappings_dir
from azaguard.ops import logs, runtime
from azaguard.ops.http import Operations
from azaguard.settings import Settings, current
from azaguard.smart.jwks import JwksCache
from azaguard.web.clinician import FAILURES as CLINICIAN_FAILURES
from azaguard.web.clinician import ClinicianPage
from azaguard.web.context import WebContext
from azaguard.web.launchflow import LaunchFlow
from azaguard.web.pages import COOKIE, HERE, FailureTable, Pages, address, cookie, root
from azaguard.web.patient import FAILURES as PATIENT_FAILURES
from azaguard.web.patient import patient_routes
from azaguard.web.tokens import SessionExpired, Tokens
from azaguard.web.views import rule_groups, zone_of
from azaguard.websecurity import BodyLimit, PinnedOrigin, SecurityHeaders

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

__all__ = ["COOKIE", "SessionExpired", "create_app", "mount_path", "rule_groups", "serve", "served_app", "zone_of"]

log = logging.getLogger("azaguard.web")


def web_context(
    config: AppConfig, settings: Settings, mappings: Mappings, now: Callable[[], datetime],
    transport: httpx.BaseTransport | None, terminology: TerminologyServer | None = None,
    jwks: JwksCache | None = None,
) -> WebContext:
    """The app's parts, wired: one HTTP client for the EHR's authorization server, one session store (and the
    database, the patient's words) where `settings` say."""
    http = outbound_client(bound=Bound(), transport=transport)
    sessions = runtime.session_store(config, settings)
    return WebContext(
        config=config, mappings=mappings, terminology=terminology, now=now, sessions=sessions,
        flow=LaunchFlow(config, sessions, http=http, limiter=runtime.rate_limiter(config, settings), now=now,
                        jwks=jwks),
        tokens=Tokens(config, sessions, http=http, transport=transport, now=now),
        audit=runtime.audit_trail(config, settings), pages=Pages(secure_cookies=config.secure_cookies),
        mappings_dir=default_mappings_dir(settings),
    )


def launch_routes(web: WebContext) -> list[Route]:
    """/launch, /start and /callback: the launch flow's outcomes as responses."""

    def launch(request: Request) -> Response:
        return web.pages.answer(request, web.flow.launch(request.query_params, cookie(request), address(request)))

    def start(request: Request) -> Response:
        return web.pages.answer(request, web.flow.start(request.query_params, cookie(request), address(request)))

    def callback(request: Request) -> Response:
        return web.pages.answer(request, web.flow.callback(request.query_params, cookie(request), address(request)))

    return [Route("/launch", launch, name="launch"), Route("/start", start, name="start"),
            Route("/callback", callback, name="callback")]


def failure_page(web: WebContext, patient_failures: FailureTable) -> Callable[[Request, Exception], Response]:
    """The app's one way out for a failure that leaves a route: an error page whose status comes from the error
    tree (errors.http_status), in the words of the page's audience (a patient's below /patient/, else the
    clinician's). A bug (any other exception) gets the 500 page; its traceback goes to the log only."""

    def failure(request: Request, exc: Exception) -> Response:
        below = request.url.path.removeprefix(root(request))
        words = patient_failures if below.startswith("/patient/") else CLINICIAN_FAILURES
        return web.pages.failure(request, exc, words)

    return failure


class BugPage:
    """A bug's 500 page answered inside the app's middleware (Starlette answers an `Exception` handler in its
    outermost layer, past SecurityHeaders: the page went out without CSP or no-store, and the bug was re-raised
    to be logged a second time)."""

    def __init__(self, app: ASGIApp, failure: Callable[[Request, Exception], Response]) -> None:
        self.app, self.failure = app, failure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def sending(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:
            if started:  # the answer is already on its way: nothing sound can be said any more
                raise
            await self.failure(Request(scope, receive), exc)(scope, receive, send)


def create_app(
    config: AppConfig,
    *,
    mappings: Mappings | None = None,
    now: Callable[[], datetime] | None = None,
    transport: httpx.BaseTransport | None = None,
    terminology: TerminologyServer | None = None,
    jwks: JwksCache | None = None,
    settings: Settings | None = None,
) -> Starlette:
    """The SMART app as an ASGI app, to be mounted at the path of its launch_uri (e.g. /app); `jwks`: the
    JWK Set cache it shares with the CDS service (served_app), else one of its own; `settings`: the environment
    as the entry point read it (a library call without them: read now)."""
    settings = current(settings)
    web = web_context(config, settings, mappings or runtime.mappings(settings), now or (lambda: datetime.now(UTC)),
                      transport, terminology, jwks=jwks)
    clinician = ClinicianPage(web)
    routes = [
        Route("/", clinician.page, name="page"),
        *launch_routes(web),
        Route("/alerts", clinician.alerts, methods=["POST"], name="alerts"),
        *patient_routes(web),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    failure = failure_page(web, PATIENT_FAILURES)
    app = Starlette(routes=routes, exception_handlers={AzaguardError: failure})
    app.add_middleware(BugPage, failure=failure)
    app.add_middleware(SecurityHeaders, config=config)  # added last: outermost, so every page carries its headers
    app.state.web = web  # tests reach the session store through app.state.web.sessions
    return app


def mount_path(config: AppConfig) -> str:
    """Where the app lives: the path of launch_uri without its last segment ('/app')."""
    return urlsplit(config.launch_uri).path.rsplit("/", 1)[0]


def served_app(
    config: AppConfig, *, insecure_cds: bool = False, terminology: TerminologyServer | None = None,
    settings: Settings | None = None, **cds_options: Any,
) -> ASGIApp:
    """The app as `serve` runs it: mounted at its path, `/` redirecting there, pinned to the public origin,
    with the CDS Hooks service beside it at /cds-services; both evaluate with the site's terminology server and
    keep their state where `settings` (the environment as the entry point read it; else read now) say."""
    settings = current(settings)
    mappings = runtime.mappings(settings)
    prefix = mount_path(config)
    # One JWK Set cache for the whole service: CDS clients' keys and the EHRs' id_token keys.
    keys = cds_options.pop("jwks", None) or JwksCache(cds_options.get("transport"))
    cds_options.setdefault("mappings", mappings)
    service = cdsapp.create_cds_service(config, insecure=insecure_cds, terminology=terminology, jwks=keys,
                                        settings=settings, **cds_options)
    cds = cdsapp.cds_routes(service)
    web = create_app(config, mappings=mappings, terminology=terminology, jwks=keys, settings=settings)
    routes = [*cds, Mount(prefix or "/", app=web)]
    if prefix:
        home = prefix + "/"
        routes.append(Route("/", lambda r: RedirectResponse(home)))
    # The router's own redirects (/app → /app/) are built from the request: pin it to the public origin.
    # Bodies bounded outermost (websecurity.BodyLimit), before anything reads them.
    return BodyLimit(Operations(
        PinnedOrigin(Starlette(routes=routes), config.public_base), routes=routes,
        checks=runtime.readiness_checks(config, settings, mappings), trusted_proxies=config.trusted_proxies,
        metrics_networks=config.metrics_networks, metrics_token=config.metrics_token(),
    ))


def serve(
    config_path: Path | None, host: str, port: int, *, insecure_cds: bool = False, log_format: str | None = None,
    terminology: TerminologyServer | None = None, settings: Settings | None = None,
) -> None:
    """Run the app (for a real EHR) with uvicorn. SIGTERM: stop accepting, finish the requests in flight
    (up to 30 s), exit 0. `settings`: the environment as the entry point read it."""
    import uvicorn  # the server itself only when serving: building the app (tests, served_app) needs none

    settings = current(settings)
    config = load_app_config(config_path, settings=settings)
    runtime.start(config, settings, log_format=log_format)
    # The CDS hooks evaluate as `check` does, with the site's terminology server when one is given.
    app = served_app(config, insecure_cds=insecure_cds, terminology=terminology, settings=settings)
    store = runtime.shared_store(config, settings)
    log.info("serving", extra={"url": f"http://{host}:{port}", "public_base": config.public_base,
                               "session_store": store.kind if store is not None else "memory",
                               "metrics": f"http://{host}:{port}/metrics"})
    # uvicorn's own access log is off (its line has the query string, which carries the authorization
    # code): ops.http writes one line per request with the route template instead.
    logs.exit_0_on_sigterm()
    uvicorn.run(app, host=host, port=port, proxy_headers=False, timeout_graceful_shutdown=30,
                **logs.uvicorn_options())
