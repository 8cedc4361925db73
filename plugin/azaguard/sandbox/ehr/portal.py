"""The sandbox EHR's patient portal: sign in as one of the synthetic patients, then open azaguard.

A sign-in is a random cookie (HttpOnly, path /ehr, SameSite=Lax) mapped in memory to a patient. While
it lasts, a standalone authorization request (no EHR `launch`) is that patient's: no patient picker,
the code bound to their own record, and an id_token whose fhirUser is `Patient/{id}` — which is how
the app tells a patient from a clinician. No passwords: the patients are synthetic.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from azaguard.sandbox.ehr.authserver import SandboxUser
from azaguard.sandbox.ehr.context import EhrContext, ehr
from azaguard.sandbox.ehr.launcher import list_patients

COOKIE = "azaguard_ehr_portal"
LIFETIME = 8 * 3600.0


def portal_user(context: EhrContext, request: Request) -> SandboxUser | None:
    """The patient signed in at the portal in this browser, as the authorization server's user."""
    signed_in = context.portal.get(request.cookies.get(COOKIE, ""))
    if signed_in is None or signed_in[2] <= context.auth.clock():
        return None
    patient_id, name, _ = signed_in
    return SandboxUser(patient=patient_id, user=f"Patient/{patient_id}", name=name)


async def portal_page(request: Request) -> Response:
    """GET /portal/: the sign-in list, or (signed in) the patient's home with a link to azaguard."""
    context = ehr(request)
    user = portal_user(context, request)
    if user is not None:
        return context.page("portal_home.html", user=user, app_url=context.patient_start_url)
    patients, problem = await list_patients(context)
    return context.page("portal.html", status_code=503 if problem else 200, patients=patients, problem=problem)


async def portal_login(request: Request) -> Response:
    """POST /portal/login: sign in as the chosen synthetic patient."""
    context = ehr(request)
    patient_id = str((await request.form()).get("patient", ""))
    patients, _ = await list_patients(context)
    chosen = next((p for p in patients if p.id == patient_id), None)
    if chosen is None:
        return context.page("error.html", status_code=400, error="invalid_request",
                            description=f"there is no patient {patient_id!r} to sign in as")
    now = context.auth.clock()
    for key in [k for k, v in context.portal.items() if v[2] <= now]:
        del context.portal[key]
    value = secrets.token_urlsafe(32)
    context.portal[value] = (chosen.id, chosen.name, now + LIFETIME)
    response = RedirectResponse(f"{context.ehr_base}/portal/", status_code=303)
    secure = context.public_base.startswith("https:")
    response.set_cookie(COOKIE, value, httponly=True, samesite="lax", secure=secure, path="/ehr")
    return response


async def portal_logout(request: Request) -> Response:
    context = ehr(request)
    context.portal.pop(request.cookies.get(COOKIE, ""), None)
    response = RedirectResponse(f"{context.ehr_base}/portal/", status_code=303)
    response.delete_cookie(COOKIE, path="/ehr")
    return response
