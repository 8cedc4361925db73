"""Draft orders (context.draftOrders): what is being ordered now, read the way real clients send them.

Tolerated: a Bundle without `type` (or a bare array / resource), `category` and other repeating
elements sent as an object, a draft without status, intent or authoredOn (filled: draft, order,
now), a draft without an id (given one, but it cannot be deleted by a suggestion). A draft that
cannot be read (a medication reference that resolves to nothing) is not evaluated and is said; one with nothing
chosen yet (the sandbox sends such a draft whenever its order screen opens, and again after a suggestion removed
the medication) is empty: nothing to check, nothing to say.

Each readable draft is classified by the terminology: a vaccine (an Immunization; any order whose
product the terminology calls a vaccine), azathioprine, or other. Orders go through the record builder
(with ordering_context); an Immunization in draft, which the builder would read as a dose given, is
handed to the rules as a planned vaccine order.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from azaguard.errors import FhirDataError
from azaguard.fhirtypes.concept import Concept, optional_concept
from azaguard.fhirtypes.reference import parse_reference, ref_of
from azaguard.mappings import Mappings
from azaguard.record import VaccineEvent
from azaguard.rules.common import azathioprine_match
from azaguard.terminology import is_vaccine_concept

Resource = dict[str, Any]
Kind = Literal["vaccine", "azathioprine", "other"]
ORDER_TYPES = frozenset({"MedicationRequest", "ServiceRequest", "Immunization"})
# Repeating elements some clients send as a single object.
_LISTS = ("category", "dosageInstruction", "note", "reasonCode", "identifier", "basedOn", "performer",
          "orderDetail", "bodySite", "instantiatesCanonical", "insurance", "supportingInfo")


@dataclass(frozen=True)
class Draft:
    ref: str
    resource_type: str
    label: str
    kind: Kind | None  # None: unreadable
    resource: Resource | None  # normalised copy (None: unreadable)
    problem: str | None = None
    has_id: bool = True
    concept: Concept | None = None
    empty: bool = False  # nothing chosen yet: not an order to check, and no card says so
    name: str = "the draft order"  # the draft named for people (its id is a reference, never text)


@dataclass
class Drafts:
    drafts: list[Draft] = field(default_factory=list)
    scope: set[str] = field(default_factory=set)  # refs this hook reacts to
    extra: list[Resource] = field(default_factory=list)  # Medications etc. sent beside the drafts
    notes: list[str] = field(default_factory=list)

    def in_scope(self) -> list[Draft]:
        return [d for d in self.drafts if d.ref in self.scope]

    def by_ref(self, ref: str) -> Draft | None:
        return next((d for d in self.drafts if d.ref == ref), None)


def read_drafts(context: dict[str, Any], hook: str, patient_id: str, mappings: Mappings, now: datetime) -> Drafts:
    out = Drafts()
    raw = _resources(context.get("draftOrders"), out.notes)
    contained = {ref_of(r): r for r in raw if r.get("resourceType") == "Medication"}
    out.extra = list(contained.values())
    for i, resource in enumerate(raw):
        rtype = resource.get("resourceType")
        if rtype == "Medication":
            continue
        if rtype not in ORDER_TYPES:
            out.notes.append(f"draft {rtype} orders are not checked by azaguard")
            continue
        draft = _read(resource, i, patient_id, mappings, now, contained)
        if draft is None:
            out.notes.append(f"a draft {rtype} is for another patient; it was left out")
            continue
        out.drafts.append(draft)
    out.scope = _scope(context, hook, out)
    return out


def _resources(value: object, notes: list[str]) -> list[Resource]:
    if value is None:
        return []
    if isinstance(value, list):
        return [r for r in value if isinstance(r, dict) and isinstance(r.get("resourceType"), str)]
    if not isinstance(value, dict):
        notes.append("context.draftOrders is not a Bundle; no draft order was checked")
        return []
    if value.get("resourceType") != "Bundle":
        return [value] if isinstance(value.get("resourceType"), str) else []
    out = []
    for entry in value.get("entry") or []:
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            out.append(resource)
    return out


def listify(resource: Resource) -> Resource:
    """Repeating top-level elements sent as a single object, made lists (in place)."""
    for name in _LISTS:
        if isinstance(resource.get(name), dict):
            resource[name] = [resource[name]]
    return resource


def _read(
    raw: Resource, index: int, patient_id: str, m: Mappings, now: datetime, meds: dict[str, Resource]
) -> Draft | None:
    r = copy.deepcopy(raw)
    rtype = str(r["resourceType"])
    has_id = isinstance(r.get("id"), str) and bool(r["id"])
    if not has_id:
        r["id"] = f"draft-{index + 1}"
    ref = ref_of(r)
    listify(r)
    subject_key = "patient" if rtype == "Immunization" else "subject"
    subject = r.get(subject_key)
    target = subject.get("reference") if isinstance(subject, dict) else None
    named = parse_reference(target)
    if named is not None and (named.id or target) != patient_id:
        return None
    if target is None:
        r[subject_key] = {"reference": f"Patient/{patient_id}"}
    if rtype == "Immunization":
        concept = _concept(r.get("vaccineCode"))
        if concept is None:
            return Draft(ref, rtype, "vaccine (unnamed)", None, None, "the draft names no vaccine", has_id,
                         empty=_unset(r.get("vaccineCode")), name="the draft vaccination")
        return Draft(ref, rtype, concept.label, "vaccine", r, None, has_id, concept)
    r.setdefault("status", "draft")
    r.setdefault("intent", "order")
    r.setdefault("authoredOn", now.isoformat())
    if rtype == "MedicationRequest":
        concept = _medication(r, meds)
        if concept is None:
            chosen = r.get("medicationCodeableConcept") or r.get("medicationReference")
            return Draft(ref, rtype, "medication not chosen", None, None,
                         "no medication chosen yet" if _unset(chosen) else "its medication cannot be read",
                         has_id, empty=_unset(chosen), name="the draft medication order")
    else:
        concept = _concept(r.get("code"))
        if concept is None:
            return Draft(ref, rtype, "service not chosen", None, None, "no service chosen yet", has_id,
                         empty=_unset(r.get("code")), name="the draft service order")
    return Draft(ref, rtype, concept.label, _kind(concept, m), r, None, has_id, concept)


def _unset(value: object) -> bool:
    """Nothing chosen: the element absent, or empty (no coding with a code, no text)."""
    if isinstance(value, dict):
        codings = value.get("coding")
        coded = isinstance(codings, list) and any(isinstance(c, dict) and c.get("code") for c in codings)
        return not coded and not value.get("text") and not value.get("reference") and not value.get("display")
    return value is None or value == "" or value == []


def _medication(r: Resource, meds: dict[str, Resource]) -> Concept | None:
    direct = _concept(r.get("medicationCodeableConcept"))
    if direct is not None:
        return direct
    reference = r.get("medicationReference")
    if not isinstance(reference, dict):
        return None
    target = reference.get("reference")
    med = None
    if isinstance(target, str) and target.startswith("#"):
        med = next((c for c in r.get("contained") or [] if isinstance(c, dict) and c.get("id") == target[1:]), None)
    elif isinstance(target, str):
        med = meds.get(target)
    concept = _concept(med.get("code")) if isinstance(med, dict) else None
    if concept is None and isinstance(reference.get("display"), str):
        concept = Concept(text=reference["display"])
    return concept


def _concept(cc: object) -> Concept | None:
    """The draft's concept; None when it names nothing or cannot be read (a code that is not a string is not
    read as one: the draft then says what could not be read, never that it is safe)."""
    try:
        return optional_concept(cc)
    except FhirDataError:
        return None


def _kind(concept: Concept, m: Mappings) -> Kind:
    # The terminology decides, as it does for the record builder (CVX, NDC, CPT, SNOMED, RxNorm, names).
    if is_vaccine_concept(concept, m):
        return "vaccine"
    if azathioprine_match(concept, m) is not None:
        return "azathioprine"
    return "other"


def _scope(context: dict[str, Any], hook: str, out: Drafts) -> set[str]:
    refs = {d.ref for d in out.drafts}
    if hook != "order-select":
        return refs
    selections = context.get("selections")
    if not isinstance(selections, list) or not selections:
        out.notes.append("order-select without selections: every draft order was checked")
        return refs
    wanted = {_relative(s) for s in selections if isinstance(s, str)}
    return {d.ref for d in out.drafts if d.ref in wanted}


def _relative(ref: str) -> str:
    found = parse_reference(ref)
    return found.relative if found is not None and found.relative else ref


def record_resources(drafts: Drafts) -> list[Resource]:
    """The drafts the record builder reads itself: every readable MedicationRequest / ServiceRequest."""
    out = list(drafts.extra)
    out += [d.resource for d in drafts.drafts if d.resource is not None and d.resource_type != "Immunization"]
    return out


def vaccine_events(drafts: Drafts, now: datetime) -> list[VaccineEvent]:
    """Immunizations sent as drafts: the record builder reads an Immunization as a dose given, so they are
    handed to the rules as what they are here, a vaccine about to be ordered (a planned order event)."""
    return [
        VaccineEvent(d.ref, "ServiceRequest", d.concept, "draft", now)
        for d in drafts.drafts
        if d.resource_type == "Immunization" and d.kind == "vaccine" and d.concept is not None
    ]


def refs_of(drafts: Iterable[Draft]) -> set[str]:
    return {d.ref for d in drafts}
