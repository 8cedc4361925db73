"""PatientRecord: the normalised snapshot of one patient that the rules read.

Built from raw FHIR R4 resources: each resource the rules need is checked on
the elements the rules read (fhirshapes.py: typed msgspec Structs), then reduced to small frozen dataclasses with
quantities normalised to canonical UCUM units. Only Observations whose LOINC
code the mappings know are parsed (a Synthea record holds hundreds that no
rule reads). A resource that fails validation is kept as a ParseProblem so
the rules that would have read it say "cannot evaluate".
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, ClassVar, Literal, NamedTuple

from msgspec import Struct
from msgspec.structs import replace as struct_replace

from azaguard import fhirshapes as fs
from azaguard.dosage import Dosage, Ratio, Repeat, Strength, strength_of_ratio
from azaguard.mappings import Mappings
from azaguard.record_meaning import MEANING_TYPES, Event, Related, read_meaning
from azaguard.resources import Resource, ResourceSet, gc_paused
from azaguard.terminology import NO_DRUG, DrugMatch, drug_ingredients, is_vaccine_concept
from azaguard.terminology._common import fold
from azaguard.terminology.labtests import (
    LIPASE,
    activity_of,
    analyte_by_name,
    is_lipase,
    named_anything,
    pathogen_of,
)
from azaguard.terminology.scripts import unreadable
from azaguard.terminology.signs import (
    answer_presence,
    length_from_words,
    length_in_days,
    sign_by_name,
    sign_of,
)
from azaguard.units import Quantity as Quantity  # re-exported: the record's value type
from azaguard.units import UnitError, normalise, unit_dimension

# --- value types ---------------------------------------------------------------


class Code(Struct, frozen=True):
    system: str | None  # the URI as recorded
    code: str
    display: str | None = None


class Concept(Struct, frozen=True):
    """A CodeableConcept reduced to what matching needs."""

    codings: tuple[Code, ...] = ()
    text: str | None = None
    # Names read beside the concept's own: a Medication's ingredient Substances, its dose form.
    extra_names: tuple[str, ...] = ()

    def codes_in(self, systems: Iterable[str]) -> set[str]:
        """Codes whose system is one of the given URIs."""
        uris = systems if isinstance(systems, frozenset | set) else set(systems)
        return {c.code for c in self.codings if c.system in uris}

    @property
    def names(self) -> tuple[str, ...]:
        """Human-readable names (text, then displays), for name-only matching."""
        out = [self.text] if self.text else []
        out += [c.display for c in self.codings if c.display]
        return (*out, *self.extra_names)

    @property
    def label(self) -> str:
        if self.text:
            return self.text
        for c in self.codings:
            if c.display:
                return c.display
        return self.codings[0].code if self.codings else "(no name)"


# --- record parts --------------------------------------------------------------


class PatientInfo(Struct, frozen=True):
    ref: str
    name: str | None
    birth_date: date | None
    gender: str | None
    deceased: bool = False  # deceasedBoolean true or a deceasedDateTime
    deceased_on: datetime | None = None


class Ingredient(Struct, frozen=True):
    """One ingredient of a referenced Medication: what it is, and its strength when recorded."""

    concept: Concept
    strength: Strength | None = None


MedicationSource = Literal[
    "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"
]
# How a medication resource's status reads for therapy: current, recent (stopped/completed: see `end`),
# never (entered-in-error, cancelled, not-taken ...), draft (an order being written), or uncertain (a
# status the rules do not expect: `unknown`, `Active`, anything unlisted).
StatusClass = Literal["current", "recent", "never", "draft", "uncertain"]


class MedicineUse(Struct, frozen=True):
    """A use of a medicine, as one resource records it: ordered (MedicationRequest), taken by the patient's
    account (MedicationStatement), handed over (MedicationDispense) or given (MedicationAdministration)."""

    ref: str
    status: str  # as recorded (read from the raw JSON)
    intent: str | None
    medication: Concept | None  # None when the referenced Medication could not be found
    medication_ref: str | None
    medication_problem: str | None
    authored_on: datetime | None
    start: datetime | None  # dosage bounds or validity start, else authoredOn
    end: datetime | None  # dosage bounds or validity end, if recorded
    doses: tuple[Dosage, ...]
    source: MedicationSource = "MedicationRequest"
    status_class: StatusClass = "current"
    # A dispense's supply or a recent administration: the therapy is current until then.
    current_until: datetime | None = None
    date_note: str | None = None  # a partial stop date and how it was read (as late as it can be)
    # Which of our ingredients the medication is (recognised once, here).
    drugs: DrugMatch = NO_DRUG
    ingredients: tuple[Ingredient, ...] = ()  # a referenced Medication's ingredients (strengths)
    reasons: tuple[Concept, ...] = ()  # reasonCode, and the codes of the Conditions reasonReference names
    prior: str | None = None  # priorPrescription: the order this one renews or replaces

    @property
    def kind(self) -> str:
        """'order', 'statement', 'dispense', 'administration': for messages."""
        return {
            "MedicationRequest": "order",
            "MedicationStatement": "statement",
            "MedicationDispense": "dispense",
            "MedicationAdministration": "administration",
        }[self.source]


# Each kind of result has its own fields; what another kind holds reads None on it (a class attribute, not a
# field), so the Measurement's readings are one attribute away whatever the kind (the rules ask them often).


class QuantityResult(Struct, frozen=True, tag="quantity"):
    """A value with a unit: as recorded, and in the analyte's canonical unit when it could be read so."""

    recorded: Quantity
    value: float | None  # in the canonical unit (a raw result: as recorded); None when it cannot be read (problem)
    unit: str | None  # the canonical unit (a raw result: its own)
    problem: str | None = None  # why there is no value: none recorded, an unknown unit, not believable ...
    unit_from_text: bool = False  # the unit was read from its text, not its UCUM code
    concept: ClassVar[None] = None
    text: ClassVar[None] = None


class CodedResult(Struct, frozen=True, tag="coded"):
    """A coded answer (POS, a phenotype, an organism)."""

    concept: Concept
    recorded: ClassVar[None] = None
    value: ClassVar[None] = None
    unit: ClassVar[None] = None
    problem: ClassVar[None] = None
    unit_from_text: ClassVar[bool] = False
    text: ClassVar[None] = None


class TextResult(Struct, frozen=True, tag="text"):
    text: str
    recorded: ClassVar[None] = None
    value: ClassVar[None] = None
    unit: ClassVar[None] = None
    problem: ClassVar[None] = None
    unit_from_text: ClassVar[bool] = False
    concept: ClassVar[None] = None


class NoResult(Struct, frozen=True, tag="none"):
    """No value at all (a dataAbsentReason, or nothing), or a value of a kind no rule reads."""

    problem: str
    recorded: ClassVar[None] = None
    value: ClassVar[None] = None
    unit: ClassVar[None] = None
    unit_from_text: ClassVar[bool] = False
    concept: ClassVar[None] = None
    text: ClassVar[None] = None


# What an Observation (or one of its components) says: exactly one of these.
Result = QuantityResult | CodedResult | TextResult | NoResult


class Measurement(Struct, frozen=True):
    """One Observation value for a mapped analyte (one per component for panels)."""

    ref: str
    analyte: str  # key in mappings.analytes.analytes or coded_analytes
    loinc: str
    status: str
    effective: datetime | None
    result: Result
    gene: str | None = None  # pharmacogenomic results: the gene studied (mappings pharmacogenomics key)
    # What the lab said beside the value: interpretation codes (H, L, POS, ...) and their text, and the
    # reference range (numbers as recorded, in the range's own unit).
    interpretation: tuple[str, ...] = ()
    interpretation_text: tuple[str, ...] = ()
    range_low: float | None = None
    range_high: float | None = None
    range_unit: str | None = None
    range_text: str | None = None
    # How the analyte was recognised when not by a listed LOINC code ("by name '6-TGN'", "SNOMED CT 30630007",
    # "neutrophils 22 % of WBC 5.0 (Observation/a, Observation/b)"), and what a partial date was read as.
    how: str | None = None
    date_note: str | None = None

    @property
    def preliminary(self) -> bool:
        return self.status == "preliminary"

    # The result read by kind (None when it is of another kind): what the rules ask of it.
    @property
    def quantity(self) -> Quantity | None:
        return self.result.recorded

    @property
    def value(self) -> float | None:
        return self.result.value

    @property
    def unit(self) -> str | None:
        return self.result.unit

    @property
    def unit_problem(self) -> str | None:
        return self.result.problem

    @property
    def unit_from_text(self) -> bool:
        return self.result.unit_from_text

    @property
    def coded_value(self) -> Concept | None:
        return self.result.concept

    @property
    def text_value(self) -> str | None:
        return self.result.text


VaccineSource = Literal[
    "Immunization", "ImmunizationRecommendation", "MedicationRequest", "ServiceRequest", "MedicationAdministration",
    "Procedure",
]


class VaccineEvent(Struct, frozen=True):
    ref: str
    source: VaccineSource
    vaccine: Concept
    status: str  # Immunization/MedicationRequest/ServiceRequest status, or forecastStatus
    date: datetime | None  # occurrence, authoredOn, or the recommendation's date criterion


class Lasting(Struct, frozen=True):
    """How long a symptom had lasted, as recorded: a stated length, or a span from its start to its end (to
    'now' when it has not ended). For the signs that count only past a length (a cough over two days)."""

    said: str  # how it was recorded: "onset 2026-11-01", "value 3 d", "answer '3' to 'How many days?'"
    days: float | None = None  # a stated length
    since: datetime | None = None  # its start, read as early as it can be
    until: datetime | None = None  # its end, when recorded
    unreadable: bool = False  # a length was recorded but cannot be read (not a unit of time)


class ConditionEntry(Struct, frozen=True):
    ref: str
    concept: Concept
    clinical_status: str | None
    verification_status: str | None
    onset: datetime | None
    recorded: datetime | None
    abated: bool = False  # an abatement is recorded (the condition has ended)
    date_note: str | None = None  # a partial date and how it was read
    source: str = "Condition"  # or "DiagnosticReport" (its conclusionCode)
    lasting: Lasting | None = None  # from the onset (dateTime or Period)


SignSource = Literal["Observation", "QuestionnaireResponse"]


class SignEntry(Struct, frozen=True):
    """A symptom recorded outside the problem list: a symptom/nursing Observation or a questionnaire answer."""

    ref: str
    source: SignSource
    concept: Concept  # what was recorded: the symptom's code, or the question's codes and text
    present: bool  # False: recorded as absent ("No", valueBoolean false, SNOMED Absent)
    when: datetime | None
    status: str
    detail: str  # "answer 'Yes' to 'Sore throat?'" / "value Present"
    date_note: str | None = None
    lasting: Lasting | None = None  # an effective period, a length of time as the value, a nested answer


class UnreadEntry(Struct, frozen=True):
    """A batch-response entry that failed: data the server could not give, never 'no data'."""

    what: str  # "entry 3 (Condition?subject=...)"
    resource_type: str | None  # the type it would have returned, when it can be told
    error: str


class ParseProblem(Struct, frozen=True):
    ref: str
    resource_type: str
    error: str
    codes: tuple[Code, ...]  # what could be read of its codes, to tell which rules it concerns


class Dropped(Struct, frozen=True):
    """A resource left out of the record on purpose (e.g. another patient's), shown as a warning."""

    ref: str
    reason: str


@dataclass(frozen=True)
class PatientRecord:
    patient: PatientInfo | None
    medicine_uses: tuple[MedicineUse, ...] = ()
    measurements: tuple[Measurement, ...] = ()
    vaccines: tuple[VaccineEvent, ...] = ()
    conditions: tuple[ConditionEntry, ...] = ()
    problems: tuple[ParseProblem, ...] = ()
    dropped: tuple[Dropped, ...] = ()
    signs: tuple[SignEntry, ...] = ()
    unread: tuple[UnreadEntry, ...] = ()
    # Inside an ordering workflow (CDS Hooks order-select/order-sign) draft orders count.
    ordering_context: bool = False
    # Recorded about someone else (a relative's history, a donor's result): context at most, never the patient's.
    related: tuple[Related, ...] = ()
    # Done to the patient and changing how a result reads (a red-cell transfusion before a TPMT phenotype).
    events: tuple[Event, ...] = ()
    _by_analyte: dict[str, tuple[Measurement, ...]] = field(default_factory=dict, compare=False, repr=False)
    # What the rules work out from this record once per evaluation (rules/common.therapy), kept here so that
    # it lives exactly as long as the record: nothing process-wide holds a patient's data after a check.
    derived: dict[str, object] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[Measurement]] = {}
        for m in self.measurements:
            grouped.setdefault(m.analyte, []).append(m)
        for key, items in grouped.items():
            # Newest first; undated last.
            items.sort(key=lambda m: m.effective or _EPOCH, reverse=True)
            self._by_analyte[key] = tuple(items)

    def measurements_of(self, analyte: str) -> tuple[Measurement, ...]:
        """Usable results for an analyte, newest first (entered-in-error/cancelled excluded at build)."""
        return self._by_analyte.get(analyte, ())

    @property
    def patient_ref(self) -> str | None:
        return self.patient.ref if self.patient else None


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
_IGNORED_OBSERVATION_STATUSES = frozenset({"entered-in-error", "cancelled"})

# --- building -------------------------------------------------------------------


def build_record(
    resources: ResourceSet, mappings: Mappings, *, ordering_context: bool = False
) -> PatientRecord:
    """Reduce a patient's raw resources to the snapshot the rules read.

    Each resource is checked on the elements the rules read (fhirshapes)."""
    with gc_paused():
        return _build(resources, mappings, ordering_context=ordering_context)


def _build(
    resources: ResourceSet, mappings: Mappings, *, ordering_context: bool
) -> PatientRecord:
    builder = _Builder(resources, mappings)
    # Whose, whether, which version, which script: decided once, for every resource type (record_meaning).
    reading = read_meaning(resources, mappings, builder.handler_for)
    builder.resources = reading.resources
    for raw, handler in reading.read:
        builder.run(handler, raw)
    builder.add_differentials()
    return PatientRecord(
        patient=builder.patient,
        medicine_uses=tuple(builder.orders),
        measurements=tuple(builder.measurements),
        vaccines=tuple(builder.vaccines),
        conditions=tuple(builder.conditions),
        problems=tuple(builder.problems),
        dropped=tuple(Dropped(ref, why) for ref, why in reading.dropped) + tuple(builder.dropped),
        ordering_context=ordering_context,
        related=tuple(reading.related),
        events=tuple(reading.events),
        signs=tuple(builder.signs),
        unread=tuple(UnreadEntry(what, rtype, error) for what, rtype, error in resources.failures),
    )


class _Indexes:
    """The mappings' codes as the builder looks them up: built once per Mappings (Mappings.derived)."""

    def __init__(self, mappings: Mappings) -> None:
        analytes = mappings.analytes
        self.loinc_to_analyte: dict[str, str] = {}
        for key, a in analytes.analytes.items():
            for code in a.loinc:
                self.loinc_to_analyte[code] = key
        for key, ca in analytes.coded_analytes.items():
            for code in ca.loinc:
                self.loinc_to_analyte[code] = key
        # Codes read beyond the listed LOINC codes: SNOMED-coded labs, differentials (% of the WBC), symptom
        # and sign codes, pathogens, enzyme activities. Anything else is read only if a name says so.
        self.snomed_to_analyte = {c: k for k, a in analytes.analytes.items() for c in a.snomed}
        self.percent_to_analyte = {c: k for k, a in analytes.analytes.items() for c in a.percent_loinc}
        signs = mappings.signs
        self.other_codes = frozenset(
            set(self.snomed_to_analyte) | set(self.percent_to_analyte) | signs.observation_codes.loinc
            | signs.observation_codes.snomed
            | {c for sign in signs.signs.values() for c in sign.codes.get("snomed", {})}
            | {c for p in mappings.lab_infections.pathogens.values() for c in p.loinc}
            | {c for a in analytes.activity_analytes.by_key.values() for c in a.loinc}
            | set(mappings.pancreatitis.lipase.loinc)
        )
        self.named = named_anything(mappings)
        self.snomed_systems = frozenset(mappings.systems.snomed)
        self.loinc_systems = frozenset(mappings.systems.loinc)
        # (category, dimension) -> analyte: recognised by its unit when its code is not one we list.
        self.by_unit: dict[tuple[str, str], str] = {
            (a.by_unit_in_category, a.dimension): key for key, a in analytes.analytes.items() if a.by_unit_in_category
        }
        self.by_unit_categories = frozenset(cat for cat, _ in self.by_unit)
        self.by_unit_dimensions = frozenset(dim for _, dim in self.by_unit)


class _Builder:
    def __init__(self, resources: ResourceSet, mappings: Mappings) -> None:
        self.resources = resources
        self.reader = fs.Reader()
        self.m = mappings
        ix = mappings.derived(_Indexes)  # built once per Mappings, never per patient
        self.loinc_to_analyte = ix.loinc_to_analyte
        self.snomed_to_analyte = ix.snomed_to_analyte
        self.percent_to_analyte = ix.percent_to_analyte
        self.other_codes = ix.other_codes
        self.named = ix.named
        self.snomed_systems = ix.snomed_systems
        self.loinc_systems = ix.loinc_systems
        self.by_unit = ix.by_unit
        self.by_unit_categories = ix.by_unit_categories
        self.by_unit_dimensions = ix.by_unit_dimensions
        self.signs: list[SignEntry] = []
        # Differential percentages, made absolute with the WBC of the same time once every result is read.
        self.percents: list[tuple[Measurement, str | None]] = []
        self._specimen: dict[str, str] = {}  # measurement ref -> its specimen reference
        self.patient: PatientInfo | None = None
        self.orders: list[MedicineUse] = []
        self._medications_seen: set[MedicineUse] = set()
        self.measurements: list[Measurement] = []
        self.vaccines: list[VaccineEvent] = []
        self.conditions: list[ConditionEntry] = []
        self.problems: list[ParseProblem] = []
        self.dropped: list[Dropped] = []
        # A record repeats its codes and dosages (a Synthea file: 370 codes of 59 kinds): each distinct one is
        # reduced once per record, and so shared, its drug or vaccine asked once (by drug_ingredients' memo).
        self._concepts: dict[fs.CodeableConcept, Concept] = {}
        self._doses: dict[fs.Dosage, Dosage] = {}
        # ... and, each Concept being shared so, which drug or vaccine it is is asked once per Concept object
        # (found by identity, the Concept kept beside its answer so that its id stays its own).
        self._drug_of: dict[int, tuple[Concept | None, DrugMatch]] = {}
        self._vaccine_of: dict[int, tuple[Concept, bool]] = {}
        self.unit_dimensions: dict[tuple[object, ...], str | None] = {}

    def concept(self, cc: fs.CodeableConcept) -> Concept:
        found = self._concepts.get(cc)
        if found is None:
            found = self._concepts[cc] = _concept(cc)
        return found

    def drugs(self, concept: Concept | None) -> DrugMatch:
        found = self._drug_of.get(id(concept))
        if found is None or found[0] is not concept:
            found = self._drug_of[id(concept)] = (concept, drug_ingredients(concept, self.m))
        return found[1]

    def is_vaccine(self, concept: Concept) -> bool:
        found = self._vaccine_of.get(id(concept))
        if found is None or found[0] is not concept:
            found = self._vaccine_of[id(concept)] = (concept, is_vaccine_concept(concept, self.m))
        return found[1]

    def dose(self, d: fs.Dosage) -> Dosage:
        found = self._doses.get(d)
        if found is None:
            found = self._doses[d] = _dose(d)
        return found

    def handler_for(self, raw: Resource) -> Callable[[_Builder, Resource], None] | None:
        """How a resource is read, or None when no rule reads it (its type, or an Observation's codes)."""
        rtype = raw["resourceType"]
        handler = self._handlers.get(rtype)
        if handler is None or (rtype == "Observation" and not self._observation_wanted(raw)):
            return None
        return handler

    def run(self, handler: Callable[[_Builder, Resource], None], raw: Resource) -> None:
        try:
            handler(self, raw)
        except (ValueError, TypeError, AttributeError, KeyError) as exc:  # pydantic's ValidationError is a ValueError
            self.problems.append(ParseProblem(
                ref=_ref_of(raw), resource_type=raw["resourceType"], error=_short_error(exc), codes=_raw_codes(raw)
            ))

    # -- Patient --
    def _patient(self, raw: Resource) -> None:
        p = self.reader.read(raw, fs.Patient)
        name = None
        if p.name:
            n = p.name[0]
            name = n.text or " ".join(part for part in [*(n.given or []), n.family] if part) or None
        info = PatientInfo(
            ref=_ref_of(raw), name=name, birth_date=_as_date(p.birthDate), gender=p.gender,
            deceased=bool(p.deceasedBoolean) or p.deceasedDateTime is not None,
            deceased_on=_as_datetime(p.deceasedDateTime),
        )
        if self.patient is None:
            self.patient = info

    # -- MedicationRequest, MedicationStatement, MedicationDispense, MedicationAdministration: a use of a medicine --
    def _medicine_use(self, raw: Resource) -> None:
        """One use of a medicine, whichever of the four resources records it; an order or administration of a
        vaccine (however the vaccine is coded) is a vaccination event instead."""
        source: MedicationSource = raw["resourceType"]
        use = self.reader.read(raw, _MEDICATION_SHAPES[source])
        ref, status = _ref_of(raw), _raw_status(raw)
        concept, med_ref, problem, ingredients = self._medication_with_ingredients(use, raw)
        when = self._when_used(use, status)
        request = use if isinstance(use, fs.MedicationRequest) else None
        administered = isinstance(use, fs.MedicationAdministration)
        if (request is not None or administered) and concept is not None and self.is_vaccine(concept):
            given: VaccineSource = "MedicationRequest" if request is not None else "MedicationAdministration"
            self.vaccines.append(VaccineEvent(ref, given, concept, status, when.vaccinated))
            return
        reasons: tuple[Concept, ...] = ()
        note = None
        if isinstance(use, (fs.MedicationRequest, fs.MedicationStatement)):
            # why it is given; a partial stop date, read as late as it can be
            reasons, note = self._reasons(use, raw), _end_note(raw)
        self._add_medication(MedicineUse(
            ref=ref, status=status, intent=request.intent if request is not None else None, medication=concept,
            medication_ref=med_ref, medication_problem=problem, authored_on=when.authored, start=when.start,
            end=when.end, doses=tuple(self.dose(d) for d in _dosages(use)), source=source,
            status_class=self._status_class(source, status), current_until=when.current_until,
            # (an administration's ingredients are not read: it carries no dose to compute with them)
            ingredients=() if administered else ingredients,
            reasons=reasons, prior=self._prior(request, raw) if request is not None else None, date_note=note,
        ))

    def _when_used(self, use: fs.MedicationResource, status: str) -> _WhenUsed:
        """When the medicine was (or is to be) used, as each resource says it."""
        therapy = self.m.policy.therapy
        if isinstance(use, fs.MedicationRequest):  # ordered: the dosage bounds or validity, else when authored
            start, end = _order_period(use)
            authored = _as_datetime(use.authoredOn)
            return _WhenUsed(authored, start or authored, end, vaccinated=authored)
        if isinstance(use, fs.MedicationStatement):  # the patient takes (took, will take) it
            period = use.effectivePeriod
            start = _as_datetime(use.effectiveDateTime) or (_as_datetime(period.start) if period else None)
            end = _as_latest(period.end) if period else None
            if end is None and status in ("completed", "stopped"):
                end = _as_datetime(use.effectiveDateTime)  # a single date on a finished statement: its last use
            asserted = _as_datetime(use.dateAsserted)
            return _WhenUsed(asserted, start or asserted, end)
        if isinstance(use, fs.MedicationDispense):  # handed over: current while its supply lasts
            handed = _as_datetime(use.whenHandedOver) or _as_datetime(use.whenPrepared)
            days = _days_supply(use.daysSupply)
            if days is None:
                days = therapy.dispense_assumed_supply_days.value
            end = handed + timedelta(days=days) if handed is not None else None
            return _WhenUsed(handed, handed, end, current_until=end)
        if not isinstance(use, fs.MedicationAdministration):
            raise TypeError(f"not a medication resource: {type(use).__name__}")
        period = use.effectivePeriod  # given: a recent administration is current therapy
        start = _as_datetime(use.effectiveDateTime) or (_as_datetime(period.start) if period else None)
        end = (_as_datetime(period.end) if period else None) or start
        window = timedelta(days=therapy.administration_current_days.value)
        return _WhenUsed(start, start, end, current_until=end + window if end is not None else None, vaccinated=end)

    def _prior(self, mr: fs.MedicationRequest, raw: Resource) -> str | None:
        """The order this one renews (priorPrescription), as the record names it (a urn:uuid resolved)."""
        reference = mr.priorPrescription.reference if mr.priorPrescription is not None else None
        if not reference:
            return None
        target = self._target(reference, raw)
        return _ref_of(target) if target is not None else reference

    def _reasons(self, mr: fs.MedicationRequest | fs.MedicationStatement, raw: Resource) -> tuple[Concept, ...]:
        """Why the drug is given: reasonCode, and the code (or display) of each Condition reasonReference names."""
        out = [self.concept(c) for c in (mr.reasonCode or [])]
        for r in mr.reasonReference or []:
            target = self._target(r.reference, raw) if r.reference else None
            code = target.get("code") if isinstance(target, dict) else None
            if isinstance(code, dict):
                out.append(Concept(codings=_codes_of(code), text=code.get("text") if isinstance(
                    code.get("text"), str) else None))
            elif r.display:
                out.append(Concept(text=r.display))
        return tuple(out)

    def _status_class(self, source: MedicationSource, status: str) -> StatusClass:
        """How a status reads for therapy: an order's by the therapy policy's own lists (a draft is an order being
        written), the other resources' by theirs."""
        policy = self.m.policy.therapy
        if source == "MedicationRequest":
            if status in policy.current_statuses:
                return "current"
            if status in policy.recent_statuses:
                return "recent"
            if status in policy.never_statuses:
                return "never"
            return "draft" if status == "draft" else "uncertain"
        classes = next((c for s, c in policy.other_resources.items() if s == source), None)
        if classes is None:
            return "uncertain"
        if status in classes.current:
            return "current"
        if status in classes.recent:
            return "recent"
        return "never" if status in classes.never else "uncertain"

    def _add_medication(self, order: MedicineUse) -> None:
        if order in self._medications_seen:
            # The same resource twice, alike (paging overlap, a search and an _include): one order, not two
            # doses. Copies that differ without version information are all read (record_meaning.py).
            return
        self._medications_seen.add(order)
        drugs = self.drugs(order.medication)
        concept = order.medication
        problem = order.medication_problem
        if problem is None and drugs.near_miss is not None:
            near = drugs.near_miss
            label = concept.label if concept is not None else order.ref
            problem = (f"{label!r} may be azathioprine: {near.word!r} is close to {near.target!r} but matches no "
                       "azathioprine name exactly")
        if problem is None and concept is not None and not drugs.hits and not concept.names:
            # Only codes we do not know (an unlisted NDC, a local code) and no name: it might be azathioprine,
            # an anti-infective or an interacting drug, so it is unidentified, never "none of ours".
            codes = ", ".join(f"{c.system or '(no system)'}|{c.code}" for c in concept.codings) or "no code"
            problem = f"medication has no name and no code azaguard knows ({codes}): it cannot be identified"
        if problem is None and concept is not None and not drugs.hits:
            problem = unreadable(concept.names, self.m)  # a name in a script the tables cannot read: may be ours
        self.orders.append(struct_replace(order, drugs=drugs, medication_problem=problem))

    def _medication_with_ingredients(
        self, mr: fs.MedicationResource, raw: Resource
    ) -> tuple[Concept | None, str | None, str | None, tuple[Ingredient, ...]]:
        """The medication's concept (a referenced Medication's code, ingredients and form folded in), its
        reference, why it cannot be read, and its ingredients with their strengths."""
        if mr.medicationCodeableConcept is not None:
            return self.concept(mr.medicationCodeableConcept), None, None, ()
        reference = mr.medicationReference.reference if mr.medicationReference else None
        display = mr.medicationReference.display if mr.medicationReference else None
        if not reference:
            return (Concept(text=display) if display else None), None, "medication reference has no target", ()
        target = self._target(reference, raw)
        if target is None or target.get("resourceType") != "Medication":
            fallback = Concept(text=display) if display else None
            return fallback, reference, f"Medication {reference} not found in the record", ()
        # A Medication contained in the order names its siblings with "#id"; a standalone one, its own.
        container = raw if reference.startswith("#") else target
        concept, ingredients, unresolved = self._medication_concept(target, container, display, depth=0)
        problem = None
        if unresolved:
            problem = (f"Medication {reference} names ingredient(s) azaguard cannot find in the record "
                       f"({', '.join(unresolved)}): what it contains cannot be identified")
        return concept, reference, problem, ingredients

    def _target(self, reference: str, container: Resource) -> Resource | None:
        if reference.startswith("#"):
            return next((c for c in container.get("contained", [])
                         if isinstance(c, dict) and c.get("id") == reference[1:]), None)
        return self.resources.resolve(reference)

    def _medication_concept(
        self, target: Resource, container: Resource, display: str | None, *, depth: int
    ) -> tuple[Concept, tuple[Ingredient, ...], list[str]]:
        """A Medication's code with each ingredient's codes and names (an itemCodeableConcept, or the
        Substance or Medication an itemReference points at: contained or elsewhere in the record)."""
        med = self.reader.read(target, fs.Medication)
        concept = self.concept(med.code) if med.code else Concept()
        codings = list(concept.codings)
        names: list[str] = []
        ingredients: list[Ingredient] = []
        unresolved: list[str] = []
        for item in med.ingredient or []:
            part: Concept | None = None
            if item.itemCodeableConcept is not None:
                part = self.concept(item.itemCodeableConcept)
            elif item.itemReference is not None and item.itemReference.reference:
                ref = item.itemReference.reference
                found = self._target(ref, container)
                if found is not None and found.get("resourceType") == "Substance":
                    sub = self.reader.read(found, fs.Substance)
                    part = self.concept(sub.code) if sub.code is not None else None
                elif found is not None and found.get("resourceType") == "Medication" and depth < 2:
                    part, _, more = self._medication_concept(found, container, None, depth=depth + 1)
                    unresolved += more
                if part is None or not (part.codings or part.names):
                    unresolved.append(ref)
                    part = None
            elif item.itemReference is not None and item.itemReference.display:
                part = Concept(text=item.itemReference.display)
            if part is None:
                continue
            codings += part.codings
            names += part.names
            strength = None
            if item.strength is not None:
                strength = strength_of_ratio(_quantity(item.strength.numerator), _quantity(item.strength.denominator),
                                             self.m, "Medication.ingredient.strength")
            ingredients.append(Ingredient(part, strength))
        if med.form is not None:
            names += self.concept(med.form).names  # the dose form: "ophthalmic solution" says not systemic
        if len(codings) > len(concept.codings) or names or display:
            concept = Concept(codings=tuple(codings), text=concept.text or display,
                              extra_names=tuple(dict.fromkeys(n for n in names if n != (concept.text or display))))
        return concept, tuple(ingredients), unresolved

    # -- Observation --
    def _observation_wanted(self, raw: Resource) -> bool:
        """Whether an Observation may be one the rules read (a mapped code, or codes that cannot be read).
        Runs on every Observation of the record (hundreds in a Synthea file): plain dict reads only."""
        codes = _raw_code_values(raw.get("code"))
        if not codes:
            return True  # unreadable code: parse it so a failure is recorded, not skipped
        wanted = self.loinc_to_analyte
        for c in codes:
            if c in wanted or c in self.other_codes:
                return True
        if self._named(raw.get("code")):
            return True  # a lab-local or text-only code naming a sign, pathogen or analyte
        components = raw.get("component")
        parts: list[object] = [raw]
        if isinstance(components, list):
            for comp in components:
                if isinstance(comp, dict):
                    for c in _raw_code_values(comp.get("code")):
                        if c in wanted:
                            return True
            parts += components
        if not self.by_unit:
            return False
        categories = _raw_category_codes(raw)
        if categories.isdisjoint(self.by_unit_categories):
            return False  # most Observations: decided without resolving a unit
        return any(self._by_unit(raw, part, categories) for part in parts)

    def _named(self, cc: object) -> bool:
        """Whether a raw CodeableConcept's text or displays name something the rules read (one regex)."""
        if not isinstance(cc, dict):
            return False
        names = [cc.get("text")] + [c.get("display") for c in cc.get("coding") or [] if isinstance(c, dict)]
        return any(isinstance(n, str) and self.named.search(fold(n)) for n in names)

    def _by_unit(self, raw: Resource, holder: object, categories: set[str] | None = None) -> str | None:
        """The analyte an Observation (or component) is by its category and its value's unit, if any."""
        if not self.by_unit or not isinstance(holder, dict):
            return None
        q = holder.get("valueQuantity")
        if not isinstance(q, dict):
            return None
        codes = _raw_category_codes(raw) if categories is None else categories
        if codes.isdisjoint(self.by_unit_categories):
            return None
        dimension = self._dimension_of(q)
        if dimension not in self.by_unit_dimensions:
            return None  # most vital signs: a unit no analyte is recognised by
        return next((a for (cat, dim), a in self.by_unit.items() if dim == dimension and cat in codes), None)

    def _dimension_of(self, q: dict[str, Any]) -> str | None:
        """The dimension of a raw Quantity's unit. A record repeats a few units hundreds of times (a
        Synthea file's vital signs): each resolved once, remembered under the values as recorded (a
        value that is not a string counts as absent; a list or object is never remembered)."""
        code, system, text = key = (q.get("code"), q.get("system"), q.get("unit"))
        try:
            return self.unit_dimensions[key]
        except KeyError:
            remember = True
        except TypeError:  # unhashable: resolved without remembering
            remember = False
        found = unit_dimension(
            code if isinstance(code, str) else None,
            system if isinstance(system, str) else None,
            text if isinstance(text, str) else None,
            self.m,
        )
        if remember:
            self.unit_dimensions[key] = found
        return found

    def _observation(self, raw: Resource, ref: str | None = None) -> None:
        obs = self.reader.read(raw, fs.Observation)
        status = str(obs.status)
        if status in _IGNORED_OBSERVATION_STATUSES:
            return
        ref = ref or _ref_of(raw)
        when_raw = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
        effective = (
            _as_datetime(obs.effectiveDateTime)
            or (_as_datetime(obs.effectivePeriod.start) if obs.effectivePeriod else None)
            or _as_datetime(obs.effectiveInstant)
            or _as_datetime(obs.issued)
        )
        lab = _LabContext.of(obs, _date_note(when_raw, "earliest"))
        if obs.specimen is not None and obs.specimen.reference:
            self._specimen[ref] = obs.specimen.reference
        raw_parts = [raw] + [c for c in raw.get("component", []) if isinstance(c, dict)]
        parts = [(obs.code, obs)] + [(c.code, c) for c in (obs.component or [])]
        found = False
        for (code_concept, holder), raw_part in zip(parts, raw_parts, strict=False):
            concept = self.concept(code_concept)
            loinc = next((c for c in concept.codes_in(self.loinc_systems) if c in self.loinc_to_analyte), None)
            analyte = self.loinc_to_analyte.get(loinc or "")
            how = None
            if analyte is None:
                snomed = next((c for c in concept.codes_in(self.snomed_systems) if c in self.snomed_to_analyte), None)
                analyte = self.snomed_to_analyte.get(snomed or "")
                how = f"SNOMED CT {snomed}" if snomed else None
            if analyte is None:
                analyte = self._by_unit(raw, raw_part)
            if analyte is None:
                continue
            found = True
            code = loinc or next((c.code for c in concept.codings), "(no code)")
            meas = self._measurement(ref, code, status, effective, holder, self._gene(obs, concept), analyte=analyte)
            self.measurements.append(lab.onto(meas, how))
        # One read for a name its local code carries ("Whooping cough vaccination") may be none of ours after all;
        # one without any code cannot be told apart.
        no_code = not self.concept(obs.code).codings
        if not found and not self._other_reading(raw, obs, ref, status, effective, lab) and no_code:
            raise ValueError("Observation has no readable LOINC code")

    def _other_reading(
        self, raw: Resource, obs: fs.Observation, ref: str, status: str, effective: datetime | None, lab: _LabContext
    ) -> bool:
        """An Observation beyond the listed analyte codes: a differential percentage, a pathogen test, an
        enzyme activity, an analyte known by name, or a symptom. False when it is none of them."""
        concept = self.concept(obs.code)
        loincs = concept.codes_in(self.loinc_systems)
        percent = next((c for c in loincs if c in self.percent_to_analyte), None)
        if percent is not None:
            meas = self._raw_measurement(ref, percent, status, effective, obs, self.percent_to_analyte[percent])
            specimen = obs.specimen.reference if obs.specimen else None
            self.percents.append((lab.onto(meas, None), specimen))
            return True
        pathogen = pathogen_of(concept, self.m)
        if pathogen is not None:
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._raw_measurement(ref, code, status, effective, obs, f"pathogen:{pathogen.key}")
            self.measurements.append(lab.onto(meas, pathogen.how))
            return True
        activity = activity_of(concept, self.m)
        if activity is not None:
            spec = self.m.analytes.activity_analytes.by_key[activity]
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            if obs.valueQuantity is not None:
                meas = self._raw_measurement(ref, code, status, effective, obs, activity)
            else:  # a phenotype in words ("TPMT activity: deficient"): read as the phenotype result it is
                meas = self._measurement(ref, code, status, effective, obs, spec.gene, analyte="pgx-phenotype")
            self.measurements.append(lab.onto(struct_replace(meas, gene=spec.gene), f"by name ({concept.label})"))
            return True
        if is_lipase(concept, self.m):  # read against the lab's own upper limit, in its own unit
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._raw_measurement(ref, code, status, effective, obs, LIPASE)
            self.measurements.append(lab.onto(meas, None if loincs else f"by name ({concept.label})"))
            return True
        named = analyte_by_name(concept, self.m)
        if named is not None:
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._measurement(ref, code, status, effective, obs, None, analyte=named)
            self.measurements.append(lab.onto(meas, f"by name ({concept.label})"))
            return True
        return self._symptom(raw, obs, concept, ref, status)

    def _symptom(self, raw: Resource, obs: fs.Observation, concept: Concept, ref: str, status: str) -> bool:
        """A symptom or nursing assessment: the code names the symptom (its value says present or absent),
        or a 'symptom' code's value names it."""
        when_raw = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
        when = _as_latest(when_raw) or _as_datetime(obs.effectiveInstant) or _as_datetime(obs.issued)
        note = _date_note(when_raw, "latest")
        value = self.concept(obs.valueCodeableConcept) if obs.valueCodeableConcept is not None else None
        period = obs.effectivePeriod
        lasting = _onset_lasting(period.start, period.end) if period is not None else None
        generic = self.m.signs.observation_codes
        generic_code = concept.codes_in(self.loinc_systems) & generic.loinc or concept.codes_in(
            self.snomed_systems) & generic.snomed
        if generic_code:
            if value is not None and sign_of(value, self.m) is not None:
                self.signs.append(SignEntry(ref, "Observation", value, True, when, status, f"value {value.label}",
                                            note, lasting))
            return True  # a symptom that is not one of the leaflets' signs: read, and nothing to say
        if sign_of(concept, self.m) is None:
            return False
        present: bool | None = True  # a finding recorded without a value is recorded as present
        detail = "recorded"
        if obs.valueQuantity is not None:  # a length of time ("cough: 3 d"); anything else cannot be read
            q = obs.valueQuantity
            days = length_in_days(_num(q.value), q.code, q.unit, self.m)
            detail = f"value {q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "value"
            lasting = Lasting(detail, days=days, unreadable=days is None)
        elif obs.valueBoolean is not None:
            present, detail = bool(obs.valueBoolean), f"value {str(obs.valueBoolean).lower()}"
        elif value is not None:
            present = answer_presence([(c.system, c.code) for c in value.codings], list(value.names), self.m)
            detail = f"value {value.label}"
        elif obs.valueString is not None:
            present = answer_presence([], [obs.valueString], self.m)
            detail = f"value '{obs.valueString}'"
        if present is None:
            present, detail = True, f"{detail} (read as present: not a yes/no answer)"
        self.signs.append(SignEntry(ref, "Observation", concept, present, when, status, detail, note, lasting))
        return True

    def _raw_measurement(
        self, ref: str, code: str, status: str, effective: datetime | None, holder: fs.Valued, analyte: str
    ) -> Measurement:
        """A result read as the lab sent it (no unit conversion): a pathogen test, an enzyme activity, a
        percentage; its value is compared only with the lab's own range and flags, or made absolute later."""
        q = holder.valueQuantity
        result: Result
        if q is not None:
            quantity = _recorded(q)
            result = QuantityResult(quantity, quantity.value, q.code or q.unit,
                                    None if quantity.value is not None else "no value")
        else:
            result = self._other_result(holder)
        return Measurement(ref=ref, analyte=analyte, loinc=code, status=status, effective=effective, result=result)

    def _other_result(self, holder: fs.Valued) -> Result:
        """A result that is not a quantity: coded, text, or none (with its dataAbsentReason)."""
        if holder.valueCodeableConcept is not None:
            return CodedResult(self.concept(holder.valueCodeableConcept))
        if holder.valueString is not None:
            return TextResult(holder.valueString)
        absent = holder.dataAbsentReason
        return NoResult("no value" + (f" (dataAbsentReason: {self.concept(absent).label})" if absent else ""))

    def add_differentials(self) -> None:
        """Each differential percentage with a WBC of the same time (and specimen, when both name one) becomes an
        absolute count, unless the lab reported that count at that time itself."""
        if not self.percents:
            return
        wbc_key = "wbc"
        wbcs = [m for m in self.measurements if m.analyte == wbc_key and m.value is not None]
        for pct, specimen in self.percents:
            if pct.value is None or pct.effective is None or (pct.unit not in ("%", None)):
                continue
            if any(m.analyte == pct.analyte and m.effective == pct.effective for m in self.measurements):
                continue  # the lab's own absolute count decides
            wbc = next((w for w in wbcs if w.effective == pct.effective and (
                specimen is None or self._specimen.get(w.ref) in (None, specimen))), None)
            if wbc is None or wbc.value is None:
                continue
            absolute = round(pct.value / 100 * wbc.value, 3)
            unit = self.m.units.dimensions[self.m.analytes.analytes[pct.analyte].dimension].canonical
            how = (f"{pct.value:g} % of WBC {wbc.value:g} {wbc.unit} ({wbc.ref}): {absolute:g} {unit}, "
                   "computed from the differential")
            computed = Quantity(value=absolute, comparator=None, code=unit, system=None, unit=unit)
            self.measurements.append(struct_replace(pct, result=QuantityResult(computed, absolute, unit), how=how))

    def _gene(self, obs: fs.Observation, code: Concept) -> str | None:
        """The gene a pharmacogenomic result is about: fixed by its code, a gene-studied component, or text."""
        analyte = self.loinc_to_analyte.get(next(iter(code.codes_in(self.loinc_systems)), ""), "")
        coded = self.m.analytes.coded_analytes.get(analyte)
        if coded is None:
            return None
        if coded.gene:
            return coded.gene
        pgx = self.m.analytes.pharmacogenomics
        names: list[str] = []
        for comp in obs.component or []:
            comp_code = self.concept(comp.code)
            if comp_code.codes_in(self.m.systems.loinc) & set(pgx.gene_studied_loinc) and comp.valueCodeableConcept:
                value = self.concept(comp.valueCodeableConcept)
                for gene, spec in pgx.genes.items():
                    if {c.code for c in value.codings} & {spec.hgnc}:
                        return gene
                names += value.names
        names += code.names
        if obs.valueString:
            names.append(obs.valueString)
        if obs.valueCodeableConcept is not None:
            names += self.concept(obs.valueCodeableConcept).names
        found = {gene for gene, spec in pgx.genes.items() if any(
            re.search(rf"\b{re.escape(n)}\b", text, re.IGNORECASE) for n in spec.names for text in names)}
        return found.pop() if len(found) == 1 else None

    def _measurement(
        self, ref: str, loinc: str, status: str, effective: datetime | None, holder: fs.Valued, gene: str | None = None,
        *, analyte: str,
    ) -> Measurement:
        q = holder.valueQuantity
        if q is None:
            return Measurement(ref=ref, analyte=analyte, loinc=loinc, status=status, effective=effective,
                               result=self._other_result(holder), gene=gene)
        quantity = _recorded(q)
        value = unit = problem = None
        from_text = False
        spec = self.m.analytes.analytes.get(analyte)
        if spec is None:
            problem = f"{analyte} is coded, not a quantity"
        elif quantity.value is None:
            problem = "no value"
        else:
            try:
                n = normalise(quantity.value, code=q.code, system=q.system, text=q.unit, dimension=spec.dimension,
                              mappings=self.m)
                value, unit, from_text = n.value, n.unit, n.unit_source != "code"
            except UnitError as exc:
                problem = str(exc)
            if value is not None and spec.plausible is not None and not (
                spec.plausible.low <= value <= spec.plausible.high
            ):
                # A Celsius value sent as [degF], a count per uL labelled 10*3/uL: not believable.
                problem = (
                    f"{quantity.as_recorded()} = {value:.4g} {unit} is outside the plausible range "
                    f"{spec.plausible.low:g}-{spec.plausible.high:g} {unit} (wrong unit or value?)"
                )
                value = None
        return Measurement(ref=ref, analyte=analyte, loinc=loinc, status=status, effective=effective,
                           result=QuantityResult(quantity, value, unit, problem, from_text), gene=gene)

    # -- vaccines --
    def _immunization(self, raw: Resource) -> None:
        imm = self.reader.read(raw, fs.Immunization)
        when = _as_datetime(imm.occurrenceDateTime) or _as_datetime(imm.recorded)
        self.vaccines.append(
            VaccineEvent(_ref_of(raw), "Immunization", self.concept(imm.vaccineCode), str(imm.status), when)
        )

    def _recommendation(self, raw: Resource) -> None:
        rec = self.reader.read(raw, fs.ImmunizationRecommendation)
        ref = _ref_of(raw)
        for item in rec.recommendation or []:
            codes = [self.concept(c) for c in (item.vaccineCode or [])]
            if not codes and item.targetDisease is not None:
                # Only a target disease: the product is unknown (ambiguous unless a live name shows).
                codes = [Concept(text=self.concept(item.targetDisease).label)]
            vaccine = Concept(
                codings=tuple(c for k in codes for c in k.codings),
                text=next((k.text for k in codes if k.text), None),
            )
            status = _forecast_status(item.forecastStatus)
            when = next((_as_datetime(d.value) for d in (item.dateCriterion or [])), None) or _as_datetime(rec.date)
            self.vaccines.append(VaccineEvent(ref, "ImmunizationRecommendation", vaccine, status, when))

    def _service_request(self, raw: Resource) -> None:
        sr = self.reader.read(raw, fs.ServiceRequest)
        if sr.code is None:
            return
        concept = self.concept(sr.code)
        if not self.is_vaccine(concept):
            return  # a lab test, imaging, referral ...: not ours
        when = _as_datetime(sr.occurrenceDateTime) or _as_datetime(sr.authoredOn)
        self.vaccines.append(VaccineEvent(_ref_of(raw), "ServiceRequest", concept, _raw_status(raw), when))

    # -- Procedure: claims and some EHRs record a vaccination as a procedure (CPT 90707, a SNOMED procedure) --
    def _procedure(self, raw: Resource) -> None:
        if not _raw_code_values(raw.get("code")) and not isinstance((raw.get("code") or {}).get("text"), str):
            return  # no code to tell a vaccination by: not ours (most procedures of a record)
        proc = self.reader.read(raw, fs.Procedure)
        if proc.code is None:
            return
        concept = self.concept(proc.code)
        if not self.is_vaccine(concept):
            return
        period = proc.performedPeriod
        when = _as_datetime(proc.performedDateTime) or (_as_datetime(period.end or period.start) if period else None)
        self.vaccines.append(VaccineEvent(_ref_of(raw), "Procedure", concept, _raw_status(raw), when))

    # -- Condition --
    def _condition(self, raw: Resource) -> None:
        c = self.reader.read(raw, fs.Condition)
        onset_raw = c.onsetDateTime or (c.onsetPeriod.start if c.onsetPeriod else None)
        # A month-only date is read as late as it can be: a symptom or infection "in October" may be recent.
        self.conditions.append(
            ConditionEntry(
                ref=_ref_of(raw),
                concept=self.concept(c.code) if c.code else Concept(),
                clinical_status=_first_code(c.clinicalStatus),
                verification_status=_first_code(c.verificationStatus),
                onset=_as_latest(onset_raw),
                recorded=_as_latest(c.recordedDate),
                date_note=_date_note(c.recordedDate, "latest") or _date_note(onset_raw, "latest"),
                lasting=_onset_lasting(onset_raw, c.onsetPeriod.end if c.onsetPeriod else None),
                abated=c.abated,
            )
        )

    # -- DiagnosticReport: results contained in the report, and its coded conclusion --
    def _diagnostic_report(self, raw: Resource) -> None:
        dr = self.reader.read(raw, fs.DiagnosticReport)
        if _raw_status(raw) in _IGNORED_OBSERVATION_STATUSES:
            return
        ref = _ref_of(raw)
        when_raw = dr.effectiveDateTime or (dr.effectivePeriod.start if dr.effectivePeriod else None)
        contained = {c.get("id"): c for c in raw.get("contained") or [] if isinstance(c, dict)}
        for result in dr.result or []:
            target = result.reference or ""
            inner = contained.get(target[1:]) if target.startswith("#") else None
            if inner is None or inner.get("resourceType") != "Observation":
                continue  # a result on the server is read as the Observation it is
            if "effectiveDateTime" not in inner and "effectivePeriod" not in inner and when_raw is not None:
                inner = {**inner, "effectiveDateTime": raw.get("effectiveDateTime") or raw["effectivePeriod"]["start"]}
            if self.handler_for(inner) is not None:
                self.run(partial(_Builder._observation, ref=f"{ref}{target}"), inner)
        for conclusion in dr.conclusionCode or []:
            # A coded conclusion is a diagnosis the lab made (influenza A, COVID-19): judged by its date.
            self.conditions.append(ConditionEntry(
                ref=ref, concept=self.concept(conclusion), clinical_status=None, verification_status=None, onset=None,
                recorded=_as_latest(when_raw) or _as_datetime(dr.issued), date_note=_date_note(when_raw, "latest"),
                source="DiagnosticReport",
            ))

    # -- QuestionnaireResponse: a symptom check-in --
    def _questionnaire_response(self, raw: Resource) -> None:
        qr = self.reader.read(raw, fs.QuestionnaireResponse)
        status = _raw_status(raw)
        if status == "entered-in-error":
            return
        ref = _ref_of(raw)
        when, note = _as_latest(qr.authored), _date_note(qr.authored, "latest")
        questions = self._questions(qr.questionnaire, raw)
        lengths: dict[int, Lasting] = {}  # a length nested under an item: its own answer, not a sign
        for item in _response_items(qr.item or ()):
            if id(item) in lengths:
                continue
            question_codes, question_text = questions.get(item.linkId, ((), None))
            text = item.text or question_text
            question = Concept(codings=question_codes, text=text or item.linkId)
            lasting = self._nested_length(item, questions, lengths)
            for answer in item.answer or []:
                self._answer(ref, status, when, note, item.linkId, question, answer, lasting)

    def _nested_length(
        self, item: fs.QuestionnaireResponseItem, questions: dict[str, tuple[tuple[Code, ...], str | None]],
        seen: dict[int, Lasting],
    ) -> Lasting | None:
        """A length of time answered in an item nested under this one ("How many days?" under "Cough?"): a
        Quantity in a unit of time, or a number whose question names the unit. The nested item is marked as
        read so that it is not taken for a sign itself."""
        children = list(item.item or ()) + [c for a in item.answer or () for c in a.item or ()]
        for child in children:
            text = child.text or questions.get(child.linkId, ((), None))[1] or ""
            for answer in child.answer or []:
                q = answer.valueQuantity
                if q is not None:
                    days = length_in_days(_num(q.value), q.code, q.unit, self.m)
                    said = f"{q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "?"
                else:
                    number = answer.valueInteger if answer.valueInteger is not None else answer.valueDecimal
                    if number is None:
                        continue
                    days, said = length_from_words(_num(number), [text, child.linkId], self.m), f"{number:g}"
                    if days is None:
                        continue  # a number that is not a length of time (a severity score)
                lasting = Lasting(f"answer '{said}' to '{text or child.linkId}'", days=days, unreadable=days is None)
                seen[id(child)] = lasting
                return lasting
        return None

    def _answer(
        self, ref: str, status: str, when: datetime | None, note: str | None, link_id: str, question: Concept,
        answer: fs.QuestionnaireResponseAnswer, lasting: Lasting | None = None,
    ) -> None:
        shown = f"'{question.text}'" if question.text else f"item {link_id}"
        coding = answer.valueCoding
        if coding is not None and coding.code is not None:
            code = coding.code
            coded = Concept(codings=(Code(coding.system, code, coding.display),))
            if sign_of(coded, self.m) is not None:  # the answer is the symptom ("Which symptoms?": Cough)
                self.signs.append(SignEntry(ref, "QuestionnaireResponse", coded, True, when, status,
                                            f"answer {coded.label} to {shown}", note, lasting))
                return
            present = answer_presence([(coding.system, code)], [coding.display or code], self.m)
            said = coding.display or code
        elif answer.valueBoolean is not None:
            present, said = bool(answer.valueBoolean), "Yes" if answer.valueBoolean else "No"
        elif answer.valueString is not None:
            present, said = answer_presence([], [answer.valueString], self.m), answer.valueString
            if present is None and sign_by_name([answer.valueString], self.m) is not None:
                self.signs.append(SignEntry(ref, "QuestionnaireResponse", Concept(text=answer.valueString), True,
                                            when, status, f"answer '{answer.valueString}' to {shown}", note,
                                            lasting))
                return
        elif answer.valueInteger is not None:  # a severity score: 0 is none
            present, said = answer.valueInteger > 0, str(answer.valueInteger)
        elif answer.valueQuantity is not None:  # the length itself ("Cough: for how long?" 3 d)
            q = answer.valueQuantity
            days = length_in_days(_num(q.value), q.code, q.unit, self.m)
            said = f"{q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "?"
            present = q.value is None or q.value > 0
            lasting = Lasting(f"answer '{said}' to {shown}", days=days, unreadable=days is None)
        else:
            return
        if present is None:
            return
        if sign_of(question, self.m) is None and sign_by_name([link_id], self.m) is None:
            return
        self.signs.append(SignEntry(ref, "QuestionnaireResponse", question, present, when, status,
                                    f"answer '{said}' to {shown}", note, lasting))

    def _questions(self, canonical: str | None, raw: Resource) -> dict[str, tuple[tuple[Code, ...], str | None]]:
        """linkId -> (the Questionnaire item's codes, its text), from the Questionnaire the answers follow:
        contained ('#id'), or in the record by canonical URL (a '|version' ignored) or Questionnaire/id."""
        if not canonical:
            return {}
        target: Resource | None = None
        if canonical.startswith("#"):
            target = next((c for c in raw.get("contained") or []
                           if isinstance(c, dict) and c.get("id") == canonical[1:]), None)
        else:
            url = canonical.split("|")[0]
            target = next((q for q in self.resources.of_type("Questionnaire") if q.get("url") == url), None)
            target = target or self.resources.resolve(url)
        if target is None or target.get("resourceType") != "Questionnaire":
            return {}
        questionnaire = self.reader.read(target, fs.Questionnaire)
        out: dict[str, tuple[tuple[Code, ...], str | None]] = {}
        for item in _questionnaire_items(questionnaire.item or ()):
            codes = tuple(Code(c.system, c.code, c.display) for c in item.code or [] if c.code is not None)
            out[item.linkId] = (codes, item.text)
        return out

    _handlers: ClassVar[dict[str, Callable[[_Builder, Resource], None]]] = {
        "Patient": _patient,
        "MedicationRequest": _medicine_use,
        "MedicationStatement": _medicine_use,
        "MedicationDispense": _medicine_use,
        "MedicationAdministration": _medicine_use,
        "Observation": _observation,
        "Immunization": _immunization,
        "ImmunizationRecommendation": _recommendation,
        "ServiceRequest": _service_request,
        "Procedure": _procedure,
        "Condition": _condition,
        "DiagnosticReport": _diagnostic_report,
        "QuestionnaireResponse": _questionnaire_response,
    }


# The resource types a record is built from (what record_from_bytes decodes): those with a handler, and
# the Medications their orders point at (and the Substances those name as ingredients).
RECORD_TYPES: frozenset[str] = (
    frozenset(_Builder._handlers) | {"Medication", "Substance", "Questionnaire"} | MEANING_TYPES
)


# --- helpers ----------------------------------------------------------------------


_MEDICATION_SHAPES: dict[str, type[fs.MedicationResource]] = {
    "MedicationRequest": fs.MedicationRequest, "MedicationStatement": fs.MedicationStatement,
    "MedicationDispense": fs.MedicationDispense, "MedicationAdministration": fs.MedicationAdministration,
}


class _WhenUsed(NamedTuple):
    authored: datetime | None
    start: datetime | None
    end: datetime | None
    current_until: datetime | None = None  # a dispense's supply or a recent administration: current until then
    vaccinated: datetime | None = None  # an order's or administration's date, when it is of a vaccine


def _dosages(use: fs.MedicationResource) -> tuple[fs.Dosage, ...]:
    if isinstance(use, fs.MedicationRequest | fs.MedicationDispense):
        return use.dosageInstruction or ()
    return (use.dosage or ()) if isinstance(use, fs.MedicationStatement) else ()


def _ref_of(raw: Mapping[str, Any]) -> str:
    rid = raw.get("id")
    return f"{raw.get('resourceType')}/{rid}" if isinstance(rid, str) else f"{raw.get('resourceType')}/(no id)"


def _concept(cc: fs.CodeableConcept) -> Concept:
    codings = tuple(
        Code(system=c.system, code=c.code, display=c.display) for c in (cc.coding or []) if c.code is not None
    )
    return Concept(codings=codings, text=cc.text)


def _first_code(cc: fs.CodeableConcept | None) -> str | None:
    if cc is None or not cc.coding:
        return None
    code = cc.coding[0].code
    return str(code) if code is not None else None


def _codes_of(cc: object) -> tuple[Code, ...]:
    if not isinstance(cc, dict):
        return ()
    codings = cc.get("coding")
    if not isinstance(codings, list):
        return ()
    return tuple(
        Code(system=c.get("system"), code=c["code"], display=c.get("display"))
        for c in codings
        if isinstance(c, dict) and isinstance(c.get("code"), str)
    )


def _raw_code_values(cc: object) -> list[str]:
    """The code strings of a raw CodeableConcept (what _codes_of reads, without building Codes)."""
    codings = cc.get("coding") if isinstance(cc, dict) else None
    if not isinstance(codings, list):
        return []
    return [c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)]


def _raw_category_codes(raw: Mapping[str, Any]) -> set[str]:
    categories = raw.get("category")
    return {c for cat in (categories if isinstance(categories, list) else []) for c in _raw_code_values(cat)}


def _raw_codes(raw: Mapping[str, Any]) -> tuple[Code, ...]:
    """Codes readable from a raw (possibly invalid) resource's main concept."""
    for key in ("code", "medicationCodeableConcept", "vaccineCode"):
        codes = _codes_of(raw.get(key))
        if codes:
            return codes
    return ()


def _short_error(exc: Exception) -> str:
    # pydantic is loaded only by full validation (the fast path never imports it); its errors are summarised.
    core = sys.modules.get("pydantic_core")
    if core is not None and isinstance(exc, core.ValidationError):
        errs = exc.errors()
        first = errs[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        return f"invalid {where}: {first.get('msg')}{more}"
    return str(exc) or type(exc).__name__


_PARTIAL = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def _as_datetime(value: object) -> datetime | None:
    """FHIR date/dateTime/instant (also partial '2020' or '2020-01') as an aware datetime; naive = UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        m = _PARTIAL.match(value)
        if m:
            return datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1), tzinfo=UTC)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def _as_latest(value: object) -> datetime | None:
    """As _as_datetime, but a partial date ('2026', '2026-08') is read as the last moment it can mean."""
    if isinstance(value, str):
        m = _PARTIAL.match(value)
        if m and not m.group(3):
            year, month = int(m.group(1)), int(m.group(2) or 12)
            first_of_next = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return first_of_next - timedelta(seconds=1)
    return _as_datetime(value)


def _date_note(value: object, reading: Literal["earliest", "latest"]) -> str | None:
    """What a partial date was read as, for the finding: None for a full date."""
    if not isinstance(value, str):
        return None
    m = _PARTIAL.match(value)
    if not m or m.group(3):
        return None
    when = _as_datetime(value) if reading == "earliest" else _as_latest(value)
    precision = "year only" if not m.group(2) else "month only"
    why = ("the oldest it can be, so it is never taken as more recent than it is" if reading == "earliest"
           else "the latest it can be, the cautious reading")
    return f"date recorded as {value} ({precision}): read as {when:%d %b %Y} ({why})" if when else None


def _onset_lasting(start: object, end: object) -> Lasting | None:
    """A symptom's span from its onset (read as early as it can be) to its recorded end."""
    since = _as_datetime(start)
    if since is None:
        return None
    return Lasting(f"onset {start}" + (f" to {end}" if end else ""), since=since, until=_as_latest(end))


def _num(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float, Decimal)) else None


def _response_items(items: Iterable[fs.QuestionnaireResponseItem]) -> Iterator[fs.QuestionnaireResponseItem]:
    """QuestionnaireResponse items depth first, with the items nested under items and under answers."""
    for item in items:
        yield item
        yield from _response_items(item.item or ())
        for answer in item.answer or ():
            yield from _response_items(answer.item or ())


def _questionnaire_items(items: Iterable[fs.QuestionnaireItem]) -> Iterator[fs.QuestionnaireItem]:
    """Questionnaire items depth first, with the items nested under them."""
    for item in items:
        yield item
        yield from _questionnaire_items(item.item or ())


class _LabContext(Struct, frozen=True):
    """What an Observation says beside its value: interpretation, reference range, a partial date's reading."""

    interpretation: tuple[str, ...]
    interpretation_text: tuple[str, ...]
    low: float | None
    high: float | None
    unit: str | None
    text: str | None
    date_note: str | None

    @classmethod
    def of(cls, obs: fs.Observation, date_note: str | None) -> _LabContext:
        codes: list[str] = []
        texts: list[str] = []
        for cc in obs.interpretation or []:
            concept = _concept(cc)
            codes += [c.code for c in concept.codings]
            texts += list(concept.names)
        rr = (obs.referenceRange or [None])[0]
        low = rr.low if rr is not None else None
        high = rr.high if rr is not None else None
        unit = next((q.code or q.unit for q in (low, high) if q is not None and (q.code or q.unit)), None)
        return cls(
            tuple(codes), tuple(texts),
            float(low.value) if low is not None and low.value is not None else None,
            float(high.value) if high is not None and high.value is not None else None,
            unit, rr.text if rr is not None else None, date_note,
        )

    def onto(self, meas: Measurement, how: str | None) -> Measurement:
        return struct_replace(
            meas, interpretation=self.interpretation, interpretation_text=self.interpretation_text,
            range_low=self.low, range_high=self.high, range_unit=self.unit, range_text=self.text,
            how=how or meas.how, date_note=self.date_note,
        )


def _as_date(value: object) -> date | None:
    dt = _as_datetime(value)
    return dt.date() if dt else None


def _order_period(mr: fs.MedicationRequest) -> tuple[datetime | None, datetime | None]:
    start = end = None
    for d in mr.dosageInstruction or []:
        bounds = d.timing.repeat.boundsPeriod if d.timing and d.timing.repeat else None
        if bounds is not None:
            start = start or _as_datetime(bounds.start)
            end = end or _as_latest(bounds.end)
    validity = mr.dispenseRequest.validityPeriod if mr.dispenseRequest else None
    if validity is not None:
        start = start or _as_datetime(validity.start)
        end = end or _as_latest(validity.end)
    return start, end


def _quantity(q: fs.Quantity | None) -> Quantity | None:
    return None if q is None else _recorded(q)


def _recorded(q: fs.Quantity) -> Quantity:
    return Quantity(value=q.value, comparator=q.comparator, code=q.code, system=q.system, unit=q.unit)


def _end_note(raw: Mapping[str, Any]) -> str | None:
    """How a partial stop date of a medication resource was read (the latest it can mean: the drug's effect
    is taken to last as long as the record allows)."""
    ends: list[object] = []
    period = raw.get("effectivePeriod")
    if isinstance(period, dict):
        ends.append(period.get("end"))
    validity = (raw.get("dispenseRequest") or {}).get("validityPeriod") if isinstance(
        raw.get("dispenseRequest"), dict) else None
    if isinstance(validity, dict):
        ends.append(validity.get("end"))
    for d in raw.get("dosageInstruction") or []:
        bounds = ((d.get("timing") or {}).get("repeat") or {}).get("boundsPeriod") if isinstance(d, dict) else None
        if isinstance(bounds, dict):
            ends.append(bounds.get("end"))
    return next((n for n in (_date_note(e, "latest") for e in ends) if n), None)




def _ratio(r: fs.Ratio | None) -> Ratio | None:
    return None if r is None else Ratio(_quantity(r.numerator), _quantity(r.denominator))


def _float(v: object) -> float | None:
    return float(v) if isinstance(v, Decimal | int | float) else None


def _dose(d: fs.Dosage) -> Dosage:
    """A Dosage element reduced to what the dosage module reads (dosage.py says how it is read)."""
    timing = d.timing
    rep = timing.repeat if timing is not None else None
    repeat = None
    if rep is not None:
        bounds, brange = rep.boundsPeriod, rep.boundsRange
        repeat = Repeat(
            frequency=rep.frequency, frequency_max=rep.frequencyMax, period=_float(rep.period),
            period_max=_float(rep.periodMax), period_unit=rep.periodUnit,
            day_of_week=tuple(str(x) for x in rep.dayOfWeek or ()), when=tuple(str(x) for x in rep.when or ()),
            time_of_day=tuple(str(x) for x in rep.timeOfDay or ()), count=rep.count, count_max=rep.countMax,
            bounds_start=_as_datetime(bounds.start) if bounds is not None else None,
            bounds_end=_as_datetime(bounds.end) if bounds is not None else None,
            bounds_duration=_quantity(rep.boundsDuration) or (_quantity(brange.high) if brange is not None else None),
        )
    code = timing.code if timing is not None else None
    dose = rate = None
    rate_ratio = None
    from_range = False
    rows = list(d.doseAndRate or [])
    # An "ordered" row before a "calculated" one: the prescriber's amount is the one given.
    rows.sort(key=lambda r: 0 if r.type is not None and _first_code(r.type) == "ordered" else 1)
    for row in rows:
        if dose is None:
            if row.doseQuantity is not None:
                dose = _quantity(row.doseQuantity)
            elif row.doseRange is not None:
                dose, from_range = _quantity(row.doseRange.high), True
        if rate is None and rate_ratio is None:
            if row.rateQuantity is not None:
                rate = _quantity(row.rateQuantity)
            elif row.rateRange is not None:
                rate = _quantity(row.rateRange.high)
            elif row.rateRatio is not None:
                rate_ratio = _ratio(row.rateRatio)
    route = _concept(d.route).names + tuple(c.code for c in _concept(d.route).codings) if d.route else ()
    return Dosage(
        text=d.text, sequence=d.sequence, as_needed=bool(d.asNeededBoolean) or d.asNeededCodeableConcept is not None,
        repeat=repeat,
        timing_codes=tuple((c.system, c.code) for c in (code.coding or []) if c.code) if code is not None else (),
        timing_text=code.text if code is not None else None,
        dose=dose, dose_from_range=from_range, rate=rate, rate_ratio=rate_ratio,
        max_per_period=_ratio(d.maxDosePerPeriod), max_per_administration=_quantity(d.maxDosePerAdministration),
        route=route,
    )


def _raw_status(raw: Mapping[str, Any]) -> str:
    """The status exactly as recorded (a wrong-case 'Active' stays 'Active': it is not a status we expect)."""
    status = raw.get("status")
    return status if isinstance(status, str) else "(no status)"


def _forecast_status(cc: fs.CodeableConcept | None) -> str:
    """A forecast status code; from the text when no coding has a code; 'unknown' when neither says."""
    if cc is None:
        return "unknown"
    for coding in cc.coding or []:
        if coding.code:
            return str(coding.code)
    if cc.text and cc.text.strip():
        return str(cc.text).strip().lower()
    return "unknown"


_DAY_UNITS = {"d": 1.0, "day": 1.0, "days": 1.0, "wk": 7.0, "week": 7.0, "weeks": 7.0, "mo": 30.4375}


def _days_supply(q: fs.Quantity | None) -> float | None:
    """daysSupply in days (UCUM d/wk/mo or the same words); None when absent or unreadable."""
    if q is None or q.value is None:
        return None
    unit = (q.code or q.unit or "d").strip().lower()
    factor = _DAY_UNITS.get(unit)
    if factor is None or float(q.value) < 0:
        return None
    return float(q.value) * factor
