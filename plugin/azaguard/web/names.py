"""Who is signed in, by name: the id_token's `name`, else the fhirUser resource's name, read once per launch
and remembered in the launch itself (so in the session store, never in a process-wide cache)."""

from __future__ import annotations

from typing import Any

from azaguard.fhir.errors import FhirError
from azaguard.fhirtypes.reference import parse_reference
from azaguard.smart.session import LaunchContext, Session, SessionStore
from azaguard.web.tokens import SessionExpired, Tokens

_USER_TYPES = frozenset({"Practitioner", "Patient", "RelatedPerson", "Person"})  # PractitionerRole has no name


def user_name(sessions: SessionStore, tokens: Tokens, session: Session, ctx: LaunchContext) -> str | None:
    identity = ctx.identity
    if identity is None:
        return None
    if identity.name:
        return identity.name
    if ctx.user_name_read:
        return ctx.user_name
    name = None
    target = user_resource(identity.fhir_user, ctx.iss)
    if target is not None:
        try:
            resource = tokens.with_token(session, ctx, lambda client: client.read(*target))
            name = human_name(resource)
        except (FhirError, SessionExpired):
            name = None  # not allowed to read it: the page says "signed in" without a name
    ctx.user_name, ctx.user_name_read = name, True
    sessions.update_launch(session, ctx)
    return name


def user_resource(fhir_user: str | None, iss: str) -> tuple[str, str] | None:
    """(type, id) of the fhirUser resource on this launch's FHIR server, or None (another server: the token
    never leaves for it). SMART 2: the claim may be absolute or relative to the FHIR base the app asked for."""
    if not fhir_user:
        return None
    if fhir_user.startswith(iss + "/"):
        relative = fhir_user[len(iss) + 1 :]
    elif "://" in fhir_user or fhir_user.startswith("/"):
        return None
    else:
        relative = fhir_user
    found = parse_reference(relative)
    if found is None or found.kind != "relative" or found.type not in _USER_TYPES or found.id is None:
        return None
    return found.type, found.id


def human_name(resource: dict[str, Any]) -> str | None:
    for name in resource.get("name") or []:
        if not isinstance(name, dict):
            continue
        if name.get("text"):
            return str(name["text"])
        parts = [*(name.get("prefix") or []), *(name.get("given") or []), name.get("family") or ""]
        text = " ".join(str(p) for p in parts if p)
        if text:
            return text
    return None
