"""The launch patient's compartment: which requests and which returned resources a token may see.

Pure functions over parsed FHIR paths, query parameters and JSON resources; the proxy calls them
before forwarding a request (does it name the patient?) and after (does every resource the
upstream returned belong to the patient?). Each check answers None when allowed, else the reason.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

# Outside any patient's compartment: readable by id or search (a `patient` they carry must still match).
SHARED_TYPES: frozenset[str] = frozenset(
    {"Medication", "Practitioner", "Device", "Organization", "Location", "Questionnaire"}
)
# What the app may write to the chart: alerts, and the patient's check-in (the answers and the temperature
# they measured). Shared types (the author Device) are not writable with a patient token: they are outside
# every patient's compartment, so one patient's launch must not change them.
WRITABLE_TYPES: frozenset[str] = frozenset({"DetectedIssue", "Flag", "QuestionnaireResponse", "Observation"})
_PATIENT_PARAMS = ("patient", "subject", "patient:Patient", "subject:Patient")
_PATIENT_FIELDS = ("patient", "subject")


@dataclass(frozen=True)
class FhirPath:
    """`Type`, `Type/id`, `Type/id/_history/vid`, `Type/_search`; anything else is `other`."""

    resource_type: str | None
    resource_id: str | None = None
    version: str | None = None
    search_post: bool = False
    other: bool = False


def parse_path(path: str) -> FhirPath:
    parts = [p for p in path.strip("/").split("/") if p]
    if not parts:
        return FhirPath(None)
    rtype = parts[0]
    if not rtype[:1].isupper() or not rtype.isalpha():
        return FhirPath(None, other=True)
    if len(parts) == 1:
        return FhirPath(rtype)
    if len(parts) == 2 and parts[1] == "_search":
        return FhirPath(rtype, search_post=True)
    if parts[1].startswith(("$", "_")):
        return FhirPath(rtype, other=True)
    if len(parts) == 2:
        return FhirPath(rtype, parts[1])
    if len(parts) == 4 and parts[2] == "_history":
        return FhirPath(rtype, parts[1], version=parts[3])
    return FhirPath(rtype, parts[1], other=True)


def is_patient_ref(value: str, patient_id: str, bases: Sequence[str] = (), *, bare_id: bool = False) -> bool:
    """`Patient/{id}`, or `{base}/Patient/{id}` for a known base, or (search values only) the bare id."""
    if bare_id and value == patient_id:
        return True
    if value == f"Patient/{patient_id}":
        return True
    return any(value == f"{b.rstrip('/')}/Patient/{patient_id}" for b in bases)


def _reaching_params(resource_type: str, params: Sequence[tuple[str, str]]) -> str | None:
    """Parameters whose matching happens in resources the response never shows (so the compartment
    check of the response cannot see them): `_has` (reverse chains), chained names (`a.b`), and on
    shared types `_revinclude`. Refused: each would be an oracle on other patients' records."""
    for key, _ in params:
        name = key.split(":", 1)[0]
        if key.startswith("_has") or name == "_has":
            return "reverse-chained searches (_has) are not allowed by the sandbox EHR"
        if "." in name or ("." in key and not key.startswith(("_include", "_revinclude"))):
            return f"chained search parameters ({key}) are not allowed by the sandbox EHR"
        if resource_type in SHARED_TYPES and name == "_revinclude":
            return f"_revinclude on {resource_type} (a shared type) would reach into other patients' records"
    return None


def _named_patients(params: Sequence[tuple[str, str]]) -> list[str]:
    """Every patient a search names, by a patient/subject parameter or a Patient reference value."""
    named = [item for k, v in params if k in _PATIENT_PARAMS for item in v.split(",")]
    named += [
        item for k, v in params if k not in _PATIENT_PARAMS and not k.startswith("_")
        for item in v.split(",") if "Patient/" in item
    ]
    return named


def check_search(
    resource_type: str, params: Sequence[tuple[str, str]], patient_id: str, bases: Sequence[str] = ()
) -> str | None:
    """A search stays in the compartment: `Patient?_id={id}`, or `patient=`/`subject=` naming the patient;
    never through parameters matched in resources the response does not show."""
    reaching = _reaching_params(resource_type, params)
    if reaching:
        return reaching
    if resource_type == "Patient":
        ids = [v for k, v in params if k == "_id"]
        if ids and all(item == patient_id for v in ids for item in v.split(",")):
            return None
        return f"a Patient search must be Patient?_id={patient_id}"
    if resource_type in SHARED_TYPES:
        # No patient data in these, but a search naming another patient (Device?patient=X) would
        # tell, by what it finds, what that patient has.
        for item in _named_patients(params):
            if not is_patient_ref(item, patient_id, bases, bare_id=True):
                return f"{resource_type} search names a patient other than the launch patient"
        return None  # the response check still applies
    values = [v for k, v in params if k in _PATIENT_PARAMS]
    if not values:
        return f"a {resource_type} search must carry patient= or subject= for the launch patient"
    for v in values:
        for item in v.split(","):
            if not is_patient_ref(item, patient_id, bases, bare_id=True):
                return f"{resource_type} search names a patient other than the launch patient"
    return None


def check_read(path: FhirPath, patient_id: str) -> str | None:
    """Before a read by id: Patient only for the launch patient; other types are checked on return."""
    if path.resource_type == "Patient" and path.resource_id != patient_id:
        return "the token's patient is a different patient"
    return None


def _references(resource: dict[str, Any], field: str) -> list[str]:
    value = resource.get(field)
    if isinstance(value, dict):
        ref = value.get("reference")
        return [ref] if isinstance(ref, str) else ["<unresolvable reference>"]
    if isinstance(value, list):  # no R4 patient/subject is a list, but stay safe
        return [r for v in value if isinstance(v, dict) for r in _references({"x": v}, "x")]
    return []


def check_resource(resource: dict[str, Any], patient_id: str, bases: Sequence[str] = ()) -> str | None:
    """Does this resource belong to the launch patient (or to no patient, for shared types)?"""
    rtype = resource.get("resourceType")
    if rtype == "OperationOutcome":
        return None
    if rtype == "Patient":
        return None if resource.get("id") == patient_id else "a Patient other than the launch patient"
    refs = [r for f in _PATIENT_FIELDS for r in _references(resource, f)]
    if refs:
        if all(is_patient_ref(r, patient_id, bases) for r in refs):
            return None
        return f"{rtype}/{resource.get('id')} belongs to another patient"
    if rtype in SHARED_TYPES:
        return None
    return f"{rtype}/{resource.get('id')} is not linked to the launch patient"


def returned_resources(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every resource in a response body, looking inside Bundles (searchset, batch-response, nested)."""
    if body.get("resourceType") != "Bundle":
        yield body
        return
    for entry in body.get("entry") or []:
        if not isinstance(entry, dict):
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict):
            yield from returned_resources(resource)
        outcome = (entry.get("response") or {}).get("outcome")
        if isinstance(outcome, dict):
            yield outcome


def check_write(method: str, path: FhirPath, body: object, patient_id: str, bases: Sequence[str] = ()) -> str | None:
    """POST Type / PUT Type/id of DetectedIssue, Flag or Device, for the launch patient."""
    rtype = path.resource_type
    if rtype in SHARED_TYPES:
        return f"a patient's token cannot write {rtype}, a resource shared by every patient"
    if rtype not in WRITABLE_TYPES:
        return f"the sandbox accepts writes of {', '.join(sorted(WRITABLE_TYPES))} only"
    if path.other or path.version or path.search_post:
        return "not a plain create or update"
    if method == "POST" and path.resource_id is not None:
        return "create is POST to the type, without an id"
    if method == "PUT" and path.resource_id is None:
        return "conditional update is not supported by the sandbox"
    if not isinstance(body, dict) or body.get("resourceType") != rtype:
        return f"the body must be a {rtype}"
    if method == "PUT" and body.get("id") not in (None, path.resource_id):
        return "the body's id differs from the URL's"
    if not any(_references(body, f) for f in _PATIENT_FIELDS):
        return f"a {rtype} must name the launch patient"
    return check_resource(body, patient_id, bases)


def conditional_criteria(
    resource_type: str, criteria: str, patient_id: str, bases: Sequence[str] = ()
) -> tuple[str | None, str]:
    """If-None-Exist criteria checked as a search, and confined to the launch patient's compartment
    (the patient parameter is added when absent), so a conditional create can never tell whether
    another patient's resource matches. Returns (problem, criteria to forward)."""
    params = params_of(criteria)
    reaching = _reaching_params(resource_type, params)
    if reaching:
        return reaching, criteria
    named = [item for k, v in params if k in _PATIENT_PARAMS for item in v.split(",")]
    if any(not is_patient_ref(item, patient_id, bases, bare_id=True) for item in named):
        return "the If-None-Exist criteria name a patient other than the launch patient", criteria
    if not named:
        params.append(("patient", f"Patient/{patient_id}"))
    return None, urlencode(params, safe=",|/:")


def params_of(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def first_problem(problems: Iterable[str | None]) -> str | None:
    return next((p for p in problems if p is not None), None)
