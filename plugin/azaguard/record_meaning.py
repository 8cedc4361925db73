"""What a resource means before any rule reads it: whose it is, whether it says something happened or must not,
which version counts, and what a name in another script says (clinical-rules §9; issue 24).

One pass over a record's raw resources, before the record builder's handlers, for every resource type:
- **whose**: `subject`/`patient` against the record's Patient and every id `Patient.link` joins to it (a merged
  record's ids are this patient's); an Observation whose `focus` is someone or something else (a fetus, a donor,
  a relative), or whose specimen came from someone else, is not the patient's value; a FamilyMemberHistory is a
  relative's, kept as context (`Related`), never the patient's value;
- **whether**: `doNotPerform: true` is a prohibition, never a plan, an order or therapy; a finding whose value says
  absent (valueBoolean false, an 'absent'/'negative'/'not detected' code) and a questionnaire's 'no' are evidence
  of absence; a result `registered` without a value is not a result yet;
- **which version**: several copies of one resource (type and id): the latest `meta.versionId` (else
  `meta.lastUpdated`) counts; a preliminary result is superseded by the final (and a final by the amended or
  corrected) result of the same test (code, time, specimen); contained panel members reached through `hasMember`
  '#id' are results like any other;
- **which script**: a name in another script gets the English term it names as an extra coding (as the terminology
  server's codings are added), so the same recognisers decide.
What is left out is returned with why and whose, and the record lists it (`PatientRecord.dropped`): the warnings
and evidence say it whenever it is not the patient's.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Generic, Literal, NamedTuple, TypeVar

import orjson
from msgspec import Struct, field

from azaguard.fhirtypes import dates
from azaguard.fhirtypes.concept import raw_codings
from azaguard.fhirtypes.raw import RawObject, RawValue
from azaguard.fhirtypes.reference import parse_reference, ref_of
from azaguard.mappings import Mappings
from azaguard.resources import ResourceSet
from azaguard.terminology.scripts import SCRIPT_SYSTEM, fold, foreign_letters, read_terms

H = TypeVar("H")

_SUBJECT_KEYS = ("subject", "patient")
# Focus types that describe something of the subject itself (FHIR: 'an existing condition, an intervention, the
# subject's diet, another observation of the subject, or a body structure'); any other focus is someone or
# something else. A resolvable one still has to name this patient as its own subject.
_OWN_FOCUS_TYPES = frozenset({
    "Condition", "Procedure", "BodyStructure", "Observation", "NutritionOrder", "MedicationStatement",
    "MedicationRequest", "MedicationAdministration", "Immunization", "DiagnosticReport", "ServiceRequest",
    "AllergyIntolerance", "CarePlan", "Goal", "Device", "DeviceUseStatement", "Encounter",
})
_FOCUS_EXTENSIONS = frozenset({
    "http://hl7.org/fhir/StructureDefinition/observation-focusCode",
    "http://hl7.org/fhir/StructureDefinition/observation-focal-subject",
})
_PROHIBITABLE = frozenset({"MedicationRequest", "ServiceRequest", "DeviceRequest", "NutritionOrder"})
_RESULT_TYPES = frozenset({"Observation", "DiagnosticReport"})
_SUPERSEDING = {"corrected": 2, "amended": 2, "final": 1, "preliminary": 0}
_VALUE_KEYS = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
               "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")
# Concepts named in other scripts matter where a recogniser reads names (not Observations: LOINC-coded).
_SCRIPT_TYPES = frozenset({
    "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration", "Medication",
    "Immunization", "ImmunizationRecommendation", "ServiceRequest", "Condition", "FamilyMemberHistory", "Substance",
})


class Related(Struct, frozen=True):
    """Something recorded about another person (a relative's condition, a donor's result): context at most."""

    ref: str
    whose: str  # "father", "the fetus", "a relative" ...
    names: tuple[str, ...]  # what was recorded (condition or result names, values)
    codes: tuple[tuple[str | None, str], ...]
    date: str | None = None


class Event(Struct, frozen=True):
    """Something done to the patient that changes how a result reads: a red-cell transfusion (Procedure), a dialysis
    session (Procedure or Encounter)."""

    ref: str
    kind: str  # "transfusion", "dialysis"
    label: str
    date: datetime | None


class Reading(Struct, Generic[H]):
    """The resources the builder reads (with their handler), what was left out and why, the relatives' context."""

    resources: ResourceSet
    read: list[tuple[RawObject, H]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    related: list[Related] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


# Types the pass reads itself (beside the builder's): the record must decode them (record.RECORD_TYPES).
MEANING_TYPES = frozenset({"FamilyMemberHistory", "Procedure", "Specimen", "Encounter"})
# What shows a context event: a Procedure (transfusion, dialysis), an Encounter (dialysis, by class, type or service).
_EVENT_TYPES = frozenset({"Procedure", "Encounter"})
# FHIR R4 Encounter.status values that say the encounter did not (or not yet) happen.
_NOT_HAPPENED = frozenset({"planned", "cancelled", "entered-in-error"})


def read_meaning(
    resources: ResourceSet, m: Mappings, handler_for: Callable[[RawObject], H | None]
) -> Reading[H]:
    """The record's resources as the rules must read them (see the module docstring)."""
    owner = Owner.of(resources)
    every: list[RawObject] = resources.resources
    current, dropped = _latest_versions(every)
    scripted = _read_scripts(current, m)
    if scripted:
        resources = _with_copies(resources, scripted)
        current = [scripted.get(id(r), r) for r in current]
    out: Reading[H] = Reading(resources, dropped=[*resources.deleted, *dropped])
    tables = m.derived(_Tables)
    negation, mapped = tables.negation, tables.mapped
    results: list[RawObject] = []
    for raw in owner.in_reading_order(current):
        for item in [raw, *_members(raw)] if "hasMember" in raw else (raw,):
            rtype = item.get("resourceType")
            if rtype == "FamilyMemberHistory":
                if owner.foreign(item) is None:
                    out.related.append(_family_history(item))
                continue
            if rtype in _EVENT_TYPES and owner.foreign(item) is None:
                out.events += _events(item, tables)
                if rtype == "Encounter":
                    continue
            handler = handler_for(item)
            if handler is None:
                continue
            why = (owner.foreign(item) or _not_evidence(item, owner, resources, negation, mapped)
                   or (_unreliable_weight(item, tables) if rtype == "Observation" else None))
            if why is not None:
                out.dropped.append((ref_of(item), why))
                related = _about_someone_else(item, owner, resources)
                if related is not None:
                    out.related.append(related)
                continue
            if rtype == "QuestionnaireResponse":
                item = negation.without_no_answers(item)
            if rtype in _RESULT_TYPES:
                results.append(item)
            out.read.append((item, handler))
    superseded = _superseded(results)
    if superseded:
        out.read = [(r, h) for r, h in out.read if id(r) not in superseded]
        out.dropped += [(ref, why) for ref, why in superseded.values()]
    return out


def same_person(resources: ResourceSet) -> list[RawObject]:
    """One Patient per person: Patient resources that Patient.link joins count once (the current one)."""
    seen: list[RawObject] = []
    for group in _people(resources.patients()):
        seen.append(_primary(group))
    return seen


def surviving_ids(patients: list[RawObject]) -> dict[str, str]:
    """Patient id -> the id of the person's current record, for every id Patient.link joins to another (the
    Patients' own ids and the ids they link to); unlinked Patients are left out. The current record is the one
    not replaced by another and not inactive; when every record of the person in hand is replaced, the record the
    replaced-by link points to (FHIR: 'must be used in lieu of')."""
    out: dict[str, str] = {}
    for group in _people(patients):
        names = {f"Patient/{p.get('id')}" for p in group} | {_tail(r) for p in group for r in _link_targets(p)}
        names = {n for n in names if n.startswith("Patient/")}
        if len(names) < 2:
            continue
        primary = _primary(group)
        survivor = _replaced_by(primary) or f"Patient/{primary.get('id')}"
        for name in names:
            out[name.split("/", 1)[1]] = survivor.split("/", 1)[1]
    return out


def _replaced_by(patient: RawObject) -> str | None:
    links = patient.get("link")
    for link in links if isinstance(links, list) else ():
        if not isinstance(link, dict):
            continue
        other = link.get("other")
        ref = other.get("reference") if isinstance(other, dict) else None
        if link.get("type") == "replaced-by" and isinstance(ref, str) and _tail(ref).startswith("Patient/"):
            return _tail(ref)
    return None


# --- whose --------------------------------------------------------------------------------------------------


def _link_targets(patient: RawObject) -> list[str]:
    links = patient.get("link")
    out = []
    for link in links if isinstance(links, list) else []:
        other = link.get("other") if isinstance(link, dict) else None
        ref = other.get("reference") if isinstance(other, dict) else None
        if isinstance(ref, str) and ref:
            out.append(ref)
    return out


def _tail(ref: str) -> str:
    """'Patient/123' from an absolute, relative or versioned reference (anything else as it is)."""
    found = parse_reference(ref)
    return found.relative if found is not None and found.relative else ref


def _people(patients: list[RawObject]) -> list[list[RawObject]]:
    """Patients grouped by Patient.link (either direction), groups in order of their first Patient."""
    groups: list[tuple[set[str], list[RawObject]]] = []
    for p in patients:
        names = {f"Patient/{p.get('id')}"} | {_tail(r) for r in _link_targets(p)}
        joined = [g for g in groups if g[0] & names]
        groups = [g for g in groups if not any(g is j for j in joined)]
        groups.append((names.union(*(g[0] for g in joined)), [x for g in joined for x in g[1]] + [p]))
    position = {id(p): i for i, p in enumerate(patients)}

    def first(group: tuple[set[str], list[RawObject]]) -> int:
        return min(position[id(p)] for p in group[1])

    groups.sort(key=first)
    return [g[1] for g in groups]


def _primary(group: list[RawObject]) -> RawObject:
    """The current record of a merged person: not 'replaced-by' another, else the first."""
    for p in group:
        links = p.get("link")
        replaced = isinstance(links, list) and any(isinstance(lk, dict) and lk.get("type") == "replaced-by"
                                                   for lk in links)
        if not replaced and p.get("active") is not False:
            return p
    return group[0]


class Owner(Struct, frozen=True):
    """The record's patient and every name it goes by (its ids, fullUrls and the ids Patient.link joins)."""

    patient: RawObject | None
    patients: tuple[RawObject, ...]  # every Patient resource of this person in the record
    names: frozenset[str]
    resources: ResourceSet

    @classmethod
    def of(cls, resources: ResourceSet) -> Owner:
        patients = resources.patients()
        if not patients:
            return cls(None, (), frozenset(), resources)
        group = _people(patients)[0]  # the person of the record's first Patient
        names: set[str] = set()
        for p in group:
            names |= {name for name, r in resources.index.items() if r is p}
            if isinstance(p.get("id"), str):
                names.add(f"Patient/{p['id']}")
            for ref in _link_targets(p):
                names |= {ref, _tail(ref)}
        return cls(_primary(group), tuple(group), frozenset(names), resources)

    def in_reading_order(self, current: list[RawObject]) -> list[RawObject]:
        """The record's resources with this person's current Patient first (the one the record describes)."""
        if self.patient is None or not current or current[0] is self.patient:
            return current
        return [self.patient, *(r for r in current if r is not self.patient)]

    def is_patient(self, ref: str) -> bool | None:
        """Whether a reference names this patient: True, False (someone else), None (cannot tell)."""
        if ref in self.names or _tail(ref) in self.names:
            return True
        target = self.resources.resolve(ref)
        if target is not None:
            return any(target is p for p in self.patients)
        return False if _tail(ref).split("/")[0] in ("Patient", "RelatedPerson", "Group", "Person") else None

    def foreign(self, raw: RawObject) -> str | None:
        """Why this resource is not the record's patient's, or None when it is (or cannot be told apart)."""
        if self.patient is None or raw.get("resourceType") == "Patient":
            return None
        for key in _SUBJECT_KEYS:
            holder = raw.get(key)
            ref = holder.get("reference") if isinstance(holder, dict) else None
            if not isinstance(ref, str) or not ref or ref.startswith("#"):
                continue
            if ref in self.names:
                return None
            target = self.resources.resolve(ref)
            if target is not None and any(target is p for p in self.patients):
                return None
            if target is not None:
                return f"its {key} is another {target.get('resourceType')}, not this record's patient"
            tail = _tail(ref)
            if tail.startswith("Patient/"):
                if tail in self.names:
                    return None
                return f"its {key} is another patient"
            return f"its {key} cannot be resolved to this record's patient"
        return None


def _focus_reason(raw: RawObject, owner: Owner, resources: ResourceSet) -> str | None:
    """Why an Observation is about someone or something else (Observation.focus, a focal-subject extension, a
    specimen taken from someone else), or None."""
    extensions = raw.get("extension")
    for ext in extensions if isinstance(extensions, list) else []:
        if isinstance(ext, dict) and isinstance(ext.get("url"), str) and ext["url"] in _FOCUS_EXTENSIONS:
            what = _label(ext.get("valueCodeableConcept")) or "someone else"
            return f"it is about {what} (focus extension), not the patient"
    focus = raw.get("focus")
    for f in focus if isinstance(focus, list) else []:
        if not isinstance(f, dict):
            continue
        who = display if isinstance(display := f.get("display"), str) else None
        ref = reference if isinstance(reference := f.get("reference"), str) else None
        if ref and not ref.startswith("#"):
            mine = owner.is_patient(ref)
            if mine:
                continue
            kind = _tail(ref).split("/")[0]
            if kind in _OWN_FOCUS_TYPES:
                target = resources.resolve(ref)
                subject = _subject_ref(target) if target is not None else None
                if subject is None or owner.is_patient(subject) is not False:
                    continue  # the patient's own condition, procedure, body structure ...
            return f"it is about {who or 'another ' + kind} (Observation.focus), not the patient"
        if ref and ref.startswith("#"):
            contained = _contained(raw, ref[1:])
            ctype = contained.get("resourceType") if contained else None
            if isinstance(ctype, str) and ctype in _OWN_FOCUS_TYPES:
                continue
            return f"it is about {who or ctype or 'someone else'} (Observation.focus), not the patient"
        return f"it is about {who or 'someone or something else'} (Observation.focus), not the patient"
    specimen = raw.get("specimen")
    taken = specimen.get("reference") if isinstance(specimen, dict) else None
    if isinstance(taken, str) and taken:
        source: RawObject | None = _contained(raw, taken[1:]) if taken.startswith("#") else resources.resolve(taken)
        subject = _subject_ref(source) if source is not None else None
        if subject is not None and owner.is_patient(subject) is False:
            holder = source.get("subject") if source is not None else None
            donor = holder.get("display") if isinstance(holder, dict) else None
            return f"its specimen came from {donor or 'someone else'}, not the patient"
    return None


def _about_someone_else(raw: RawObject, owner: Owner, resources: ResourceSet) -> Related | None:
    """An Observation about a relative or a donor, kept as their context (never the patient's value)."""
    if raw.get("resourceType") != "Observation" or owner.foreign(raw) is not None:
        return None
    why = _focus_reason(raw, owner, resources)
    if why is None:
        return None
    who = why.split("about ", 1)[-1].split(" (", 1)[0] if "about " in why else why.split("from ", 1)[-1]
    names = [n for n in (_label(raw.get("code")), _label(raw.get("valueCodeableConcept")),
                         raw.get("valueString")) if isinstance(n, str) and n]
    codes = tuple(raw_codings(raw.get("code")) + raw_codings(raw.get("valueCodeableConcept")))
    return Related(ref_of(raw), who.split(",")[0], tuple(names), codes, _date_of(raw))


def _family_history(raw: RawObject) -> Related:
    relation = _label(raw.get("relationship")) or (name if isinstance(name := raw.get("name"), str) else None)
    names: list[str] = []
    codes: list[tuple[str | None, str]] = []
    conditions = raw.get("condition")
    for c in conditions if isinstance(conditions, list) else []:
        if isinstance(c, dict):
            label = _label(c.get("code"))
            if label:
                names.append(label)
            codes += raw_codings(c.get("code"))
    return Related(ref_of(raw), relation or "a relative", tuple(names), tuple(codes), _date_of(raw))


# --- whether --------------------------------------------------------------------------------------------------


class _Negation:
    """Values that say 'absent' (mappings meaning.negation)."""

    def __init__(self, m: Mappings) -> None:
        neg = m.meaning.negation
        self.codes = frozenset(c for codes in neg.codes.values() for c in codes)
        self.words = frozenset(fold(w) for w in neg.words)
        self.snomed_systems = frozenset(m.systems.snomed)

    def says_absent(self, holder: RawObject) -> str | None:
        """The absence a value (or an answer) records, as shown; None when it records no absence."""
        if holder.get("valueBoolean") is False:
            return "false"
        for key in ("valueCodeableConcept", "valueCoding"):
            v = holder.get(key)
            codings = [v] if key == "valueCoding" else (v.get("coding") if isinstance(v, dict) else None)
            for c in codings if isinstance(codings, list) else []:
                if isinstance(c, dict) and isinstance(c.get("code"), str) and c["code"] in self.codes:
                    return str(c.get("display") or c.get("code"))
            text = v.get("text") if isinstance(v, dict) else None
            if isinstance(text, str) and fold(text.strip()) in self.words:
                return text
        text = holder.get("valueString")
        if isinstance(text, str) and fold(text.strip()) in self.words:
            return text
        return None

    def without_no_answers(self, qr: RawObject) -> RawObject:
        """A QuestionnaireResponse without the items answered 'no' (evidence of absence, never the finding)."""

        def keep(items: RawValue) -> tuple[list[RawValue], bool]:
            if not isinstance(items, list):
                return [], False
            out: list[RawValue] = []
            changed = False
            for item in items:
                if not isinstance(item, dict):
                    out.append(item)
                    continue
                answers = item.get("answer")
                if isinstance(answers, list) and answers and all(
                        isinstance(a, dict) and self.says_absent(a) and not a.get("item") for a in answers):
                    changed = True
                    continue
                children, inner = keep(item.get("item"))
                if inner:
                    item = {**item, "item": children}
                    changed = True
                out.append(item)
            return out, changed

        items, changed = keep(qr.get("item"))
        return {**qr, "item": items} if changed else qr


def _has_value(raw: RawObject) -> bool:
    if any(raw.get(k) is not None for k in _VALUE_KEYS):
        return True
    components = raw.get("component")
    return isinstance(components, list) and any(isinstance(c, dict) and _has_value(c) for c in components)


def _not_evidence(raw: RawObject, owner: Owner, resources: ResourceSet, negation: _Negation,
                  mapped: frozenset[str]) -> str | None:
    """Why a resource of the patient's is still not evidence of what it names, or None."""
    rtype = raw.get("resourceType")
    if rtype in _PROHIBITABLE and raw.get("doNotPerform") is True:
        return (f"it is a do-not-perform {rtype} (doNotPerform: true): a prohibition, never a plan, "
                "an order or therapy")
    if rtype == "Observation":
        why = _focus_reason(raw, owner, resources)
        if why is not None:
            return why
    if rtype in _RESULT_TYPES and raw.get("status") == "registered" and not _has_value(raw) and not raw.get("result"):
        return "it is registered without a value (status registered): no result yet"
    if rtype == "Observation" and _is_finding(raw, negation, mapped):
        absent = negation.says_absent(raw)
        if absent is not None:
            return f"it records the finding as absent (value {absent}): evidence of absence, never the finding"
    return None


def _is_finding(raw: RawObject, negation: _Negation, mapped: frozenset[str]) -> bool:
    """A clinical finding (coded in SNOMED CT, not a laboratory result, no analyte the rules read): 'absent' then
    means the finding is absent. A measurement's 'absent' is a result in itself (a TPMT activity 'Absent' is a
    deficiency), so it is left to that analyte's reading."""
    codes = raw_codings(raw.get("code"))
    if not any(system in negation.snomed_systems for system, _ in codes) or any(c in mapped for _, c in codes):
        return False
    categories = raw.get("category")
    return not any(code == "laboratory" for cat in (categories if isinstance(categories, list) else ())
                   for _, code in raw_codings(cat))


def _unreliable_weight(raw: RawObject, tables: _Tables) -> str | None:
    """Why a body weight is not one to dose by: the record marks it estimated, stated or unreliable (method, note
    or interpretation; mappings meaning.context.unreliable_weight)."""
    if tables.weight.isdisjoint(code for _, code in raw_codings(raw.get("code"))):
        return None
    words = tables.unreliable_words
    method = raw.get("method")
    if any(code in tables.unreliable_methods for _, code in raw_codings(method)):
        return f"the weight is marked {_label(method) or 'estimated'} (method): not used for mg/kg"
    texts: list[RawValue] = [_label(method), _label(raw.get("interpretation"))]
    notes = raw.get("note")
    texts += [n.get("text") for n in notes if isinstance(n, dict)] if isinstance(notes, list) else []
    for text in texts:
        if isinstance(text, str) and any(w in fold(text) for w in words):
            return f"the weight is marked unreliable ({text!r}): not used for mg/kg"
    return None


def _events(raw: RawObject, tables: _Tables) -> list[Event]:
    """The context events a Procedure or an Encounter records (mappings meaning.context: a red-cell transfusion from
    a Procedure; dialysis from a Procedure or an Encounter's class, type or service type), by code or by name."""
    rtype = raw.get("resourceType")
    kinds: tuple[tuple[str, frozenset[str], tuple[str, ...]], ...]
    if rtype == "Procedure":
        if raw.get("status") not in ("completed", "in-progress"):
            return []
        concepts = [raw.get("code")]
        period = raw.get("performedPeriod")
        when = raw.get("performedDateTime") or (period.get("end") or period.get("start")
                                                 if isinstance(period, dict) else None)
        kinds = (("transfusion", tables.transfusion_codes, tables.transfusion_names),
                 ("dialysis", tables.dialysis_codes, tables.dialysis_names))
    else:
        status = raw.get("status")
        if not isinstance(status, str) or status in _NOT_HAPPENED:
            return []
        klass = raw.get("class")
        concepts = [{"coding": [klass]} if isinstance(klass, dict) else None]
        for key in ("type", "serviceType"):
            value = raw.get(key)
            concepts += value if isinstance(value, list) else [value]
        period = raw.get("period")
        when = (period.get("start") or period.get("end")) if isinstance(period, dict) else None
        kinds = (("dialysis", tables.dialysis_codes, tables.dialysis_names),)
    out = []
    for kind, codes, names in kinds:
        for concept in concepts:
            label = _label(concept)
            if any(code in codes for _, code in raw_codings(concept)) or (
                    label is not None and any(n in fold(label) for n in names)):
                out.append(Event(ref_of(raw), kind, label or kind, dates.earliest(when)))
                break
    return out



# --- which version ---------------------------------------------------------------------------------------------


class _Version(NamedTuple):
    """A copy's version: its meta.versionId (numeric or text), else its meta.lastUpdated. Two of one kind compare by
    that value (as the order of a server's versions); two of different kinds cannot be told apart."""

    kind: Literal["number", "text", "time"]
    number: int = 0
    text: str = ""
    when: datetime = datetime.min.replace(tzinfo=UTC)

    def __str__(self) -> str:
        shown = {"number": self.number, "text": self.text, "time": self.when}[self.kind]
        return f"lastUpdated {shown}" if self.kind == "time" else f"versionId {shown}"


def _version_key(raw: RawObject) -> _Version | None:
    meta = raw.get("meta")
    if not isinstance(meta, dict):
        return None
    vid = meta.get("versionId")
    if isinstance(vid, str) and vid:
        return _Version("number", number=int(vid)) if vid.isdigit() else _Version("text", text=vid)
    updated = meta.get("lastUpdated")
    when = dates.earliest(updated)
    return _Version("time", when=when) if when is not None else None


def _latest_versions(resources: list[RawObject]) -> tuple[list[RawObject], list[tuple[str, str]]]:
    """Only the latest of several versions of one resource (same type and id) counts."""
    seen: set[tuple[object, str]] = set()
    repeated: set[tuple[object, str]] = set()
    for r in resources:
        rid = r.get("id")
        if isinstance(rid, str):
            key = (r.get("resourceType"), rid)
            (repeated if key in seen else seen).add(key)
    if not repeated:
        return resources, []
    groups: dict[str, list[RawObject]] = {}
    for r in resources:
        rid = r.get("id")
        if isinstance(rid, str) and (r.get("resourceType"), rid) in repeated:
            groups.setdefault(ref_of(r), []).append(r)
    older: set[int] = set()
    dropped: list[tuple[str, str]] = []
    for name, copies in groups.items():
        if len(copies) < 2:
            continue
        found = [_version_key(c) for c in copies]
        keys = [k for k in found if k is not None]
        if len(keys) < len(found) or len({k.kind for k in keys}) != 1:
            continue  # versions cannot be told apart (or numeric and text versionIds are mixed): every copy is read
        latest = max(keys)  # (the first copy of the latest version)
        if all(k == latest for k in keys):
            continue  # the same version twice (a search match and an include): nothing is older
        for k, c in zip(keys, copies, strict=True):
            if k != latest:
                older.add(id(c))
                dropped.append((name, f"an older version ({k}) of a resource whose latest "
                                      f"version ({latest}) is on the record: only the latest counts"))
    return [r for r in resources if id(r) not in older], dropped


def _superseded(results: list[RawObject]) -> dict[int, tuple[str, str]]:
    """Results superseded by a later status of the same test (same code, time and specimen)."""
    groups: dict[tuple[object, ...], list[RawObject]] = {}
    for r in results:
        status = r.get("status")
        if not isinstance(status, str):
            continue
        period = r.get("effectivePeriod")
        when = r.get("effectiveDateTime") or r.get("effectiveInstant") or (
            period.get("start") if isinstance(period, dict) else None)
        codes = tuple(sorted(code for _, code in raw_codings(r.get("code"))))
        if status not in _SUPERSEDING or not codes or not isinstance(when, str):
            continue
        specimen = r.get("specimen")
        spec = specimen.get("reference") if isinstance(specimen, dict) else None
        spec = spec if isinstance(spec, str) else None
        groups.setdefault((r.get("resourceType"), codes, when, spec), []).append(r)
    out: dict[int, tuple[str, str]] = {}
    for members in groups.values():
        best = max(_SUPERSEDING[str(r.get("status"))] for r in members)
        winner = next(r for r in members if _SUPERSEDING[str(r.get("status"))] == best)
        for r in members:
            if _SUPERSEDING[str(r.get("status"))] < best:
                out[id(r)] = (ref_of(r), f"its {r.get('status')} result is superseded by the {winner.get('status')} "
                                          f"result {ref_of(winner)} of the same test")
    return out


def _members(raw: RawObject) -> list[RawObject]:
    """Contained panel members reached through hasMember '#id', read as results of the patient (their subject,
    time and status taken from the panel when they leave them out). They answer to the panel's id: a contained
    resource has no identity of its own."""
    if raw.get("resourceType") != "Observation":
        return []
    members = raw.get("hasMember")
    out = []
    for ref in members if isinstance(members, list) else []:
        target_ref = ref.get("reference") if isinstance(ref, dict) else None
        if not isinstance(target_ref, str) or not target_ref.startswith("#"):
            continue
        member = _contained(raw, target_ref[1:])
        if member is None or member.get("resourceType") != "Observation":
            continue
        lifted = {k: v for k, v in member.items() if k != "id"}
        lifted["id"] = raw.get("id")
        for key in ("subject", "status", "effectiveDateTime", "effectivePeriod", "effectiveInstant", "issued",
                    "specimen", "focus"):
            if key not in member and key in raw:
                lifted[key] = raw[key]
        out.append(lifted)
    return out


# --- which script -----------------------------------------------------------------------------------------------


def _read_scripts(resources: list[RawObject], m: Mappings) -> dict[int, RawObject]:
    """Copies of the resources naming something in another script, each such concept given a coding with the
    English term it names (so the recognisers read it); keyed by the original's id()."""
    out: dict[int, RawObject] = {}
    for r in resources:
        # orjson writes UTF-8 as is: an ASCII dump (nearly every resource) has no other script, decided in C.
        if r.get("resourceType") not in _SCRIPT_TYPES or orjson.dumps(r).isascii() or not _any_foreign(r):
            continue
        changed = copy.deepcopy(r)
        if _annotate(changed, m):
            out[id(r)] = changed
    return out


def _any_foreign(node: RawValue) -> bool:
    if isinstance(node, str):
        return not node.isascii() and foreign_letters(node)
    if isinstance(node, dict):
        return any(_any_foreign(v) for v in node.values())
    if isinstance(node, list):
        return any(_any_foreign(v) for v in node)
    return False


def _annotate(node: RawValue, m: Mappings) -> bool:
    """Add the read terms to every CodeableConcept (or Reference display) under `node`; True if any was added."""
    changed = False
    if isinstance(node, list):
        for v in node:
            changed = _annotate(v, m) or changed
        return changed
    if not isinstance(node, dict):
        return False
    for v in node.values():
        changed = _annotate(v, m) or changed
    codings = node.get("coding")
    names = [node.get("text"), node.get("display") if "reference" in node else None]
    if isinstance(codings, list):
        names += [c.get("display") for c in codings if isinstance(c, dict)]
    terms: list[str] = []
    for name in names:
        if isinstance(name, str):
            terms += read_terms(name, m)
    if not terms or (isinstance(codings, list) and any(
            isinstance(c, dict) and c.get("system") == SCRIPT_SYSTEM for c in codings)):
        return changed
    unique: dict[str, None] = dict.fromkeys(terms)  # in order, once
    term = " ".join(unique)
    if "reference" in node and "coding" not in node:
        node["display"] = f"{node.get('display')} ({term})"
        return True
    if not isinstance(codings, list):
        node["coding"] = codings = []
    codings.append({"system": SCRIPT_SYSTEM, "code": term, "display": term})
    return True


def _with_copies(resources: ResourceSet, copies: dict[int, RawObject]) -> ResourceSet:
    """The same set with some resources replaced by their copies, references resolving to the copies."""
    out = ResourceSet(
        resources=[copies.get(id(r), r) for r in resources.resources],
        index={name: copies.get(id(r), r) for name, r in resources.index.items()},
        unread=list(resources.unread),
        failures=list(resources.failures),
        deleted=list(resources.deleted),
    )
    return out


# --- helpers ---------------------------------------------------------------------------------------------------


class _Tables:
    """What the pass compares against, built once per Mappings."""

    def __init__(self, m: Mappings) -> None:
        a = m.analytes
        # The LOINC codes of analytes the rules read: their own reading decides what their values mean.
        self.mapped = frozenset([*(c for x in a.analytes.values() for c in x.loinc),
                                 *(c for x in a.coded_analytes.values() for c in x.loinc)])
        weight = a.analytes.get("weight")
        self.weight = frozenset(weight.loinc if weight is not None else ())
        spec = m.meaning.context.unreliable_weight
        self.unreliable_methods = frozenset(c for cs in spec.method_codes.values() for c in cs)
        self.unreliable_words = tuple(fold(w) for w in spec.words)
        self.negation = _Negation(m)
        transfusion = m.meaning.context.transfusion
        self.transfusion_codes = frozenset(c for cs in transfusion.codes.values() for c in cs)
        self.transfusion_names = tuple(fold(n) for n in transfusion.names)
        dialysis = m.meaning.context.dialysis
        self.dialysis_codes = frozenset(c for cs in dialysis.codes.values() for c in cs)
        self.dialysis_names = tuple(fold(n) for n in dialysis.names)


def _contained(raw: RawObject, cid: str) -> RawObject | None:
    contained = raw.get("contained")
    return next((c for c in contained if isinstance(c, dict) and c.get("id") == cid), None) if isinstance(
        contained, list) else None


def _subject_ref(raw: RawObject | None) -> str | None:
    for key in _SUBJECT_KEYS:
        holder = raw.get(key) if raw is not None else None
        ref = holder.get("reference") if isinstance(holder, dict) else None
        if isinstance(ref, str) and ref:
            return ref
    return None


def _label(cc: RawValue) -> str | None:
    if not isinstance(cc, dict):
        return None
    if isinstance(text := cc.get("text"), str) and text:
        return text
    codings = cc.get("coding")
    for c in codings if isinstance(codings, list) else ():
        if isinstance(c, dict) and isinstance(display := c.get("display"), str):
            return display
    return None


def _date_of(raw: RawObject) -> str | None:
    for key in ("effectiveDateTime", "date", "recordedDate", "issued"):
        v = raw.get(key)
        if isinstance(v, str):
            return v
    return None


def names_of(related: Iterable[Related]) -> list[str]:
    """Every name recorded in these relatives' entries (for the rules' context matching)."""
    return [n for r in related for n in r.names]
