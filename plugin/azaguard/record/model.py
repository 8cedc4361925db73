"""PatientRecord and its parts: the normalised snapshot of one patient that the rules read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import ClassVar, Literal, cast

from msgspec import Struct

from azaguard.dosage import Dosage, Strength
from azaguard.fhirtypes.concept import Code as Code  # re-exported: the record's value types
from azaguard.fhirtypes.concept import Concept as Concept
from azaguard.record_meaning import Event, Related
from azaguard.terminology import NO_DRUG, DrugMatch
from azaguard.units import Quantity


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


class PatientRecord(Struct, frozen=True, dict=True):
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

    # Beside the fields (in the instance's __dict__: not compared, not copied by `replace`, not pickled): the
    # results grouped by analyte, and what the rules work out from this record once per evaluation
    # (rules/common.therapy), kept here so that it lives exactly as long as the record: nothing process-wide
    # holds a patient's data after a check.

    def measurements_of(self, analyte: str) -> tuple[Measurement, ...]:
        """Usable results for an analyte, newest first (entered-in-error/cancelled excluded at build)."""
        memo = self._memo
        by_analyte = cast("dict[str, tuple[Measurement, ...]] | None", memo.get("_by_analyte"))
        if by_analyte is None:
            by_analyte = memo["_by_analyte"] = _by_analyte(self.measurements)
        return by_analyte.get(analyte, ())

    @property
    def derived(self) -> dict[str, object]:
        memo = self._memo
        found = cast("dict[str, object] | None", memo.get("_derived"))
        if found is None:
            found = memo["_derived"] = {}
        return found

    @property
    def _memo(self) -> dict[str, object]:
        memo: dict[str, object] = self.__dict__
        return memo

    @property
    def patient_ref(self) -> str | None:
        return self.patient.ref if self.patient else None


_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


def _by_analyte(measurements: tuple[Measurement, ...]) -> dict[str, tuple[Measurement, ...]]:
    grouped: dict[str, list[Measurement]] = {}
    for m in measurements:
        grouped.setdefault(m.analyte, []).append(m)
    # Newest first; undated last.
    return {key: tuple(sorted(items, key=_when, reverse=True)) for key, items in grouped.items()}


def _when(m: Measurement) -> datetime:
    return m.effective or _EPOCH
