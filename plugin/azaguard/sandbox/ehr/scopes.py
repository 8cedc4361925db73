"""SMART scopes as the sandbox EHR reads them: parsing, granting, and what a token may do.

v2 syntax `patient/Observation.rs` (letters of `cruds`, in that order, optional `?query`),
v1 syntax `patient/Observation.read|write|*`. Pure functions, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Permission = Literal["c", "r", "u", "d", "s"]

# What the sandbox serves through its proxy (infrastructure, not clinical knowledge).
RESOURCE_TYPES: frozenset[str] = frozenset(
    {
        "Patient",
        "MedicationRequest",
        "Medication",
        "MedicationStatement",
        "MedicationDispense",
        "MedicationAdministration",
        "Observation",
        "Condition",
        "Immunization",
        "ImmunizationRecommendation",
        "ServiceRequest",
        "DetectedIssue",
        "Flag",
        "Device",
        "AllergyIntolerance",
        "Encounter",
        "Procedure",
        "FamilyMemberHistory",
        "DiagnosticReport",
        "Practitioner",
        "Questionnaire",
        "QuestionnaireResponse",
    }
)
# Scopes that are not about resources; all of them can be granted by the sandbox.
CONTEXT_SCOPES: tuple[str, ...] = (
    "launch",
    "launch/patient",
    "openid",
    "fhirUser",
    "profile",
    "offline_access",
    "online_access",
)

_RESOURCE_SCOPE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>[A-Z][A-Za-z]*|\*)\.(?P<perm>read|write|\*|c?r?u?d?s?)"
    r"(?:\?(?P<query>.+))?$"
)
_CONTEXTS: Mapping[str, Literal["patient", "user", "system"]] = {
    "patient": "patient",
    "user": "user",
    "system": "system",
}
_V1_PERMS: Mapping[str, str] = {"read": "rs", "write": "cud", "*": "cruds"}


@dataclass(frozen=True)
class ResourceScope:
    context: Literal["patient", "user", "system"]
    resource_type: str  # a type or "*"
    permissions: frozenset[str]  # letters of "cruds"
    query: tuple[tuple[str, str], ...] = ()  # v2 granular restriction (e.g. category=laboratory)

    def covers(self, resource_type: str, permission: Permission) -> bool:
        return self.resource_type in (resource_type, "*") and permission in self.permissions


def parse_scope(scope: str) -> ResourceScope | None:
    """One resource scope, or None when `scope` is not one (or is malformed, e.g. `.rx`, `.sr`)."""
    m = _RESOURCE_SCOPE.match(scope)
    if m is None or not m.group("perm"):
        return None
    perms = _V1_PERMS.get(m.group("perm"), m.group("perm"))
    query: tuple[tuple[str, str], ...] = ()
    if m.group("query"):
        pairs = [part.partition("=") for part in m.group("query").split("&")]
        if any(not k or not sep or not v for k, sep, v in pairs):
            return None
        query = tuple((k, v) for k, _, v in pairs)
    ctx: Literal["patient", "user", "system"] = _CONTEXTS[m.group("ctx")]
    return ResourceScope(ctx, m.group("type"), frozenset(perms), query)


def parse_scopes(scope: str) -> list[ResourceScope]:
    return [s for s in (parse_scope(t) for t in scope.split()) if s is not None]


def is_grantable(scope: str) -> bool:
    """Context scopes, and patient/user resource scopes on the types the sandbox serves."""
    if scope in CONTEXT_SCOPES:
        return True
    parsed = parse_scope(scope)
    if parsed is None or parsed.context == "system":
        return False
    return parsed.resource_type == "*" or parsed.resource_type in RESOURCE_TYPES


def covered_by(scope: str, registered: Iterable[str]) -> bool:
    """Is `scope` within what a client registered? Context scopes by name; a resource scope when a
    registered one has the same context, the type or `*`, every permission letter, and no query
    restriction that `scope` lacks (v1 and v2 spellings compare by their letters)."""
    if scope in CONTEXT_SCOPES:
        return scope in registered
    wanted = parse_scope(scope)
    if wanted is None:
        return False
    for r in registered:
        have = parse_scope(r)
        if (
            have is not None
            and have.context == wanted.context
            and have.resource_type in (wanted.resource_type, "*")
            and wanted.permissions <= have.permissions
            and set(have.query) <= set(wanted.query)
        ):
            return True
    return False


def grant(
    requested: str | None,
    narrow: Callable[[str], str] | None = None,
    registered: Sequence[str] | None = None,
) -> str:
    """Granted scope = requested ∩ supported ∩ the client's registration (order kept, duplicates
    dropped), optionally narrowed further. `registered` None: no registration bound (tests only).

    `narrow` can only take scopes away: anything it adds that was not granted is ignored.
    """
    granted: list[str] = []
    for scope in (requested or "").split():
        if scope in granted or not is_grantable(scope):
            continue
        if registered is not None and not covered_by(scope, registered):
            continue
        granted.append(scope)
    if narrow is not None:
        narrowed = set(narrow(" ".join(granted)).split())
        granted = [s for s in granted if s in narrowed]
    return " ".join(granted)


def scopes_supported() -> list[str]:
    """Advertised in smart-configuration (representative, not exhaustive: any `.cruds` subset works)."""
    listed = list(CONTEXT_SCOPES)
    for ctx in ("patient", "user"):
        listed += [f"{ctx}/*.rs", f"{ctx}/*.cruds", f"{ctx}/*.read", f"{ctx}/*.write"]
        listed += [f"{ctx}/{t}.rs" for t in sorted(RESOURCE_TYPES)]
    listed += [f"patient/{t}.cruds" for t in ("DetectedIssue", "Flag", "Device")]
    return listed


def allows(
    scopes: Sequence[ResourceScope],
    resource_type: str,
    permission: Permission,
    params: Iterable[tuple[str, str]] = (),
) -> bool:
    """Does any scope allow `permission` on `resource_type`?

    A scope restricted by a query counts only for a search that carries the same parameters
    (the sandbox cannot check a read or a write against a category restriction).
    """
    given = set(params)
    for s in scopes:
        if s.context == "system" or not s.covers(resource_type, permission):
            continue
        if not s.query or (permission == "s" and set(s.query) <= given):
            return True
    return False
