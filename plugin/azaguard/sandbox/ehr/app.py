"""`create_ehr_app`: the sandbox EHR launch simulator as one Starlette app, to be mounted at `/ehr`.

Routes (relative to the mount): `/` launcher page, `/portal/` patient portal (sign in as a patient),
`/fhir/...` token-checking FHIR proxy,
`/fhir/.well-known/smart-configuration`, `/fhir/metadata`, `/auth/authorize` (+ `/auth/authorize/select`
for the standalone patient picker), `/auth/token`, `/auth/jwks`, `/static/...`.
All public URLs (iss, endpoints, links) are built from `public_base` + `/ehr`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from azaguard.config import AppConfig
from azaguard.sandbox.ehr.authroutes import (
    authorize_endpoint,
    jwks_endpoint,
    select_patient_endpoint,
    smart_configuration_endpoint,
    token_endpoint,
)
from azaguard.sandbox.ehr.authserver import Clock, RegisteredClient, SandboxAuthServer, UserClaims
from azaguard.sandbox.ehr.backend import BackendClient, BackendServices
from azaguard.sandbox.ehr.cdsclient import SandboxCdsClient
from azaguard.sandbox.ehr.chart import accept, add_order, chart_page, override, sign
from azaguard.sandbox.ehr.context import EhrContext, LaunchStore, ehr
from azaguard.sandbox.ehr.launcher import launch_patient, launcher_page
from azaguard.sandbox.ehr.portal import portal_login, portal_logout, portal_page
from azaguard.sandbox.ehr.proxy import fhir_proxy, metadata_endpoint
from azaguard.sandbox.ehr.upstream import Upstream

_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"]


def create_ehr_app(
    *,
    fhir_upstream: str,
    public_base: str,
    app_config: AppConfig | None = None,
    clients: tuple[RegisteredClient, ...] = (),
    backend_clients: tuple[BackendClient, ...] = (),
    token_lifetime: int = 3600,
    granted_scope_filter: Callable[[str], str] | None = None,
    rotate_refresh_tokens: bool = False,
    user_claims: UserClaims = "sandbox",
    code_lifetime: int = 600,
    launch_lifetime: int = 1800,
    clock: Clock = time.time,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
    cds_base: str | None = None,
) -> Starlette:
    """The EHR simulator in front of `fhir_upstream` (e.g. the sekmet server's `.../fhir`).

    The app to launch is `app_config` (its client_id, redirect_uris, launch_uri; a confidential
    client's secret comes from its environment variable) and/or `clients`; `backend_clients` are
    SMART Backend Services clients (client_credentials with a private_key_jwt, `system/` scopes). `clock` (seconds since
    the epoch) drives every expiry, so tests can move time instead of sleeping. The simulator's
    state is `app.state.ehr` (an EhrContext): tests may call `.launch_url(patient_id)` or
    `.auth.store.expire_token(token)`. `user_claims` "smart-launcher" signs id_tokens as smart-launcher-v2
    does (a relative fhirUser, no name). With `cds_base` (where `/cds-services` is served) the EHR is
    also a CDS Hooks client: patient charts with alerts and an order form, calls signed with its key.
    """
    registered = list(clients)
    if app_config is not None:
        registered.insert(0, RegisteredClient.from_app_config(app_config))
    if not registered:
        raise ValueError("the sandbox EHR needs at least one registered app (app_config or clients)")
    public_base = public_base.rstrip("/")
    auth = SandboxAuthServer(
        clients=registered,
        fhir_base=f"{public_base}/ehr/fhir",
        token_lifetime=token_lifetime,
        code_lifetime=code_lifetime,
        granted_scope_filter=granted_scope_filter,
        rotate_refresh_tokens=rotate_refresh_tokens,
        user_claims=user_claims,
        clock=clock,
    )
    context = EhrContext(
        public_base=public_base,
        upstream=Upstream(fhir_upstream, upstream_transport),
        auth=auth,
        launches=LaunchStore(clock, launch_lifetime),
        client=registered[0],
    )
    context.backend = BackendServices(auth, context.token_url)
    for backend_client in backend_clients:
        context.backend.register(backend_client)
    if cds_base is not None:
        context.cds = SandboxCdsClient(iss=context.ehr_base, cds_base=cds_base, upstream=context.upstream)
    routes = [
        Route("/", launcher_page, methods=["GET"]),
        Route("/launch/{patient_id}", launch_patient, methods=["GET"]),
        Route("/portal/", portal_page, methods=["GET"]),
        Route("/portal/login", portal_login, methods=["POST"]),
        Route("/portal/logout", portal_logout, methods=["POST"]),
        *(_chart_routes() if cds_base is not None else []),
        Route("/fhir/.well-known/smart-configuration", smart_configuration_endpoint, methods=["GET"]),
        Route("/fhir/metadata", metadata_endpoint, methods=["GET"]),
        Route("/fhir", fhir_proxy, methods=_METHODS),
        Route("/fhir/{path:path}", fhir_proxy, methods=_METHODS),
        Route("/auth/authorize", authorize_endpoint, methods=["GET", "POST"]),
        Route("/auth/authorize/select", select_patient_endpoint, methods=["POST"]),
        Route("/auth/token", token_endpoint, methods=["POST"]),
        Route("/auth/jwks", jwks_endpoint, methods=["GET"]),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.ehr = context
    return app


def _chart_routes() -> list[Route]:
    return [
        Route("/patient/{patient_id}", chart_page, methods=["GET"]),
        Route("/patient/{patient_id}/order", add_order, methods=["POST"]),
        Route("/patient/{patient_id}/sign", sign, methods=["POST"]),
        Route("/patient/{patient_id}/accept", accept, methods=["POST"]),
        Route("/patient/{patient_id}/override", override, methods=["POST"]),
        Route("/cds/jwks", cds_jwks, methods=["GET"]),
    ]


async def cds_jwks(request: Request) -> Response:
    """The public key the EHR signs its CDS Hooks calls with."""
    cds = ehr(request).cds
    return JSONResponse(cds.jwks if cds is not None else {"keys": []})
