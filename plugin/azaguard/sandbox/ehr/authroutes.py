"""HTTP endpoints of the authorization server: discovery, authorize (+ patient picker), token, JWKS."""

from __future__ import annotations

import secrets
from typing import Any

from authlib.oauth2.rfc6749 import (  # type: ignore[import-untyped, unused-ignore]
    InvalidRequestError,
    OAuth2Error,
    OAuth2Request,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import azaguard.sandbox.ehr.scopes as smart_scopes
from azaguard.sandbox.ehr.authserver import SandboxUser
from azaguard.sandbox.ehr.context import EhrContext, ehr
from azaguard.sandbox.ehr.launcher import list_patients
from azaguard.sandbox.ehr.portal import portal_user

CAPABILITIES = [
    "launch-ehr",
    "launch-standalone",
    "client-public",
    "client-confidential-symmetric",
    "context-ehr-patient",
    "context-standalone-patient",
    "context-banner",
    "permission-v2",
    "permission-v1",
    "permission-patient",
    "sso-openid-connect",
    "permission-offline",
    "client-confidential-asymmetric",
]
PENDING_LIFETIME = 600.0
AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none", "private_key_jwt"]


def smart_configuration(context: EhrContext) -> dict[str, Any]:
    return {
        "issuer": context.fhir_base,
        "jwks_uri": context.jwks_url,
        "authorization_endpoint": context.authorize_url,
        "token_endpoint": context.token_url,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "scopes_supported": smart_scopes.scopes_supported(),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": AUTH_METHODS,
        "token_endpoint_auth_signing_alg_values_supported": ["RS384", "ES384"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "capabilities": CAPABILITIES,
    }


async def smart_configuration_endpoint(request: Request) -> Response:
    return JSONResponse(smart_configuration(ehr(request)), headers={"Cache-Control": "no-cache"})


async def jwks_endpoint(request: Request) -> Response:
    return JSONResponse(ehr(request).auth.jwks())


def _error(context: EhrContext, error: OAuth2Error) -> Response:
    """Back to the app when its redirect_uri was validated; otherwise a page, never a redirect."""
    if error.redirect_uri:
        return context.auth.error_redirect(error)
    return context.page(
        "error.html", status_code=error.status_code or 400, error=error.error, description=error.description
    )


def _oauth_request(context: EhrContext, request: Request, items: list[tuple[str, str]]) -> OAuth2Request:
    return context.auth.make_request("GET", context.authorize_url, request.headers, query=items)


async def authorize_endpoint(request: Request) -> Response:
    """GET (or POST, SMART 2) /auth/authorize: validate, bind the launch's patient, auto-approve."""
    context = ehr(request)
    items = list(request.query_params.multi_items())
    if request.method == "POST":
        items += [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    oauth_request = _oauth_request(context, request, items)
    try:
        grant = context.auth.consent(oauth_request)
        params = oauth_request.payload.data
        launch_id = params.get("launch")
        if launch_id:
            launch = context.launches.consume(launch_id, params["client_id"])
            if launch is None:
                raise InvalidRequestError(
                    "'launch' is unknown, expired or already used: launch again from the EHR",
                    redirect_uri=grant.redirect_uri,
                    state=params.get("state"),
                )
            user = SandboxUser(patient=launch.patient_id)
        elif (patient_user := portal_user(context, request)) is not None:
            user = patient_user  # a patient signed in at the portal: their own record, no picker
        elif "launch/patient" in oauth_request.scope.split():
            return await _picker(context, items)
        else:
            user = SandboxUser(patient=None)
    except OAuth2Error as error:
        return _error(context, error)
    return context.auth.authorize(oauth_request, grant, user)


async def _picker(context: EhrContext, items: list[tuple[str, str]], problem: str | None = None) -> Response:
    now = context.auth.clock()
    for key in [k for k, (_, exp) in context.pending.items() if exp <= now]:
        del context.pending[key]
    pending = secrets.token_urlsafe(24)
    context.pending[pending] = (items, now + PENDING_LIFETIME)
    patients, upstream_problem = await list_patients(context)
    client_id = dict(items).get("client_id", "")
    return context.page(
        "picker.html",
        patients=patients,
        pending=pending,
        client_id=client_id,
        problem=problem or upstream_problem,
    )


async def select_patient_endpoint(request: Request) -> Response:
    """POST /auth/authorize/select: the clinician picked a patient for a standalone launch."""
    context = ehr(request)
    form = await request.form()
    pending_id, patient_id = str(form.get("pending", "")), str(form.get("patient", ""))
    stored = context.pending.pop(pending_id, None)
    if stored is None or stored[1] <= context.auth.clock():
        return context.page(
            "error.html",
            status_code=400,
            error="invalid_request",
            description="this patient choice expired or was already used; start the launch again",
        )
    items = stored[0]
    oauth_request = _oauth_request(context, request, items)
    try:
        grant = context.auth.consent(oauth_request)  # validate again: nothing changed since, but stay sure
    except OAuth2Error as error:
        return _error(context, error)
    patients, _ = await list_patients(context)
    if patient_id not in {p.id for p in patients}:
        return await _picker(context, items, problem=f"There is no patient {patient_id!r}; choose one below.")
    return context.auth.authorize(oauth_request, grant, SandboxUser(patient=patient_id))


async def token_endpoint(request: Request) -> Response:
    context = ehr(request)
    form = [(k, v) for k, v in (await request.form()).multi_items() if isinstance(v, str)]
    if dict(form).get("grant_type") == "client_credentials" and context.backend is not None:
        return context.backend.token(dict(form))  # SMART Backend Services (private_key_jwt)
    # Parameters from the form only: codes, verifiers and secrets do not belong in URLs.
    oauth_request = context.auth.make_request("POST", context.token_url, request.headers, query=(), form=form)
    return context.auth.token_response(oauth_request)
