"""A CDS Hooks call's body, read liberally: what is readable is used, what is not is said, never a 500.

Malformed (not JSON, not an object, no hook or context, a patientId that is not a FHIR id) is a
BadRequest (400). Real clients' shapes are accepted: e.g. fhirAuthorization without token_type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from azaguard.cds.discovery import Service
from azaguard.resources import InputError, loads_limited

_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")


class BadRequest(InputError):
    """The call cannot be read: answered 400 with this message."""


@dataclass(frozen=True)
class CdsRequest:
    hook: str
    hook_instance: str
    patient_id: str
    context: dict[str, Any]
    prefetch: dict[str, Any]  # key -> resource / Bundle / None ("no data"); missing keys = not fetched
    fhir_server: str | None = None
    access_token: str | None = None
    notes: list[str] = field(default_factory=list)  # what was tolerated, for the cards' detail


def parse_request(body: bytes, service: Service) -> CdsRequest:
    try:
        data = loads_limited(body, "the request body")
    except InputError as exc:
        raise BadRequest(str(exc)) from exc
    if not isinstance(data, dict):
        raise BadRequest("the request body must be a JSON object")
    hook = data.get("hook")
    if not isinstance(hook, str) or not hook:
        raise BadRequest("the request has no 'hook'")
    if hook != service.hook:
        raise BadRequest(f"service {service.id} answers the {service.hook!r} hook, not {hook!r}")
    context = data.get("context")
    if not isinstance(context, dict):
        raise BadRequest("the request has no 'context' object")
    patient_id = context.get("patientId")
    if isinstance(patient_id, str) and patient_id.startswith("Patient/"):
        patient_id = patient_id[len("Patient/") :]
    if not isinstance(patient_id, str) or not _ID.fullmatch(patient_id):
        raise BadRequest("context.patientId is missing or not a FHIR id")
    instance = data.get("hookInstance")
    notes: list[str] = []
    if not isinstance(instance, str) or not instance:
        instance = ""
        notes.append("the request had no hookInstance")
    prefetch = data.get("prefetch")
    if prefetch is None:
        prefetch = {}
    if not isinstance(prefetch, dict):
        raise BadRequest("'prefetch' must be an object")
    server, token = _fhir_access(data)
    return CdsRequest(hook, instance, patient_id, context, prefetch, server, token, notes)


def _fhir_access(data: dict[str, Any]) -> tuple[str | None, str | None]:
    server = data.get("fhirServer")
    if server is not None and (not isinstance(server, str) or not server.startswith(("http://", "https://"))):
        raise BadRequest("'fhirServer' must be an http(s) URL")
    auth = data.get("fhirAuthorization")
    token = None
    if isinstance(auth, dict):
        value = auth.get("access_token")
        if isinstance(value, str) and value:
            token = value
        kind = auth.get("token_type")
        if kind is not None and str(kind).lower() != "bearer":
            raise BadRequest("fhirAuthorization.token_type must be Bearer")
    elif auth is not None:
        raise BadRequest("'fhirAuthorization' must be an object")
    return server, token
