"""FHIR R4 JSON as typed values: the elements the rules read, each checked on decoding (msgspec).

A resource is converted from its decoded JSON into the Struct of its type below, which lists only the
elements some rule reads; every other element is left unread and unchecked (a Synthea record's claims
and encounter details cost nothing). Each listed element is checked as FHIR R4 JSON requires: its JSON
type, a code's and a URI's form, an integer's range, a finite decimal, a calendar date and a time's zone,
the required elements, and at most one element of a choice ([x]: alternatives no rule reads are listed as
`object` only so that two values are refused). A value that fails raises FhirDataError (azaguard.errors; naming
the element), which the record builder turns into a ParseProblem: the rules that would have read it answer
cannot-evaluate. fhir.resources (which validates every element) agrees on what is refused: tests/test_fast_path.py.

Dates come back as their text, checked (FhirDate, FhirDateTime, FhirInstant: str subclasses); the record builder
reads them as moments (a partial date as the earliest or the latest it can mean).
"""

from __future__ import annotations

import datetime as dt
import re
from operator import attrgetter
from typing import Annotated, TypeVar

import msgspec
from msgspec import Meta, Struct

from azaguard.errors import FhirDataError as FhirDataError  # re-exported: what this reader raises
from azaguard.fhirtypes import dates
from azaguard.resources import Resource

# --- primitives ----------------------------------------------------------------------------------------

_INT32 = 2**31
_DOUBLE = 1.7976931348623157e308  # NaN and the infinities fail these bounds
Str = Annotated[str, Meta(min_length=1)]
CodeStr = Annotated[str, Meta(pattern=r"^[^\s]+( [^\s]+)*\Z")]  # no leading, trailing or double spaces
Uri = Annotated[str, Meta(pattern=r"^\S+\Z")]
Int = Annotated[int, Meta(ge=-_INT32, lt=_INT32)]
PositiveInt = Annotated[int, Meta(ge=1, lt=_INT32)]
Num = Annotated[float, Meta(ge=-_DOUBLE, le=_DOUBLE)]
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
TimeStr = Annotated[str, Meta(pattern=rf"^{_TIME}\Z")]

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_ZONE = r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
_DATE_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")
# A time needs its zone (as fhir.resources also requires).
_DATETIME_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T{_TIME}{_ZONE})?)?)?")
_INSTANT_RE = re.compile(rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T{_TIME}{_ZONE}")


class FhirDate(str):
    """date, checked: YYYY, YYYY-MM or YYYY-MM-DD on the calendar."""


class FhirDateTime(str):
    """dateTime, checked: a date, or a date and a time with its zone."""


class FhirInstant(str):
    """instant, checked: a date, a time and its zone."""


# Read by fhirtypes.dates (calendar, zone, the supported years); msgspec's hook reports a ValueError with the
# element's path, so the reader's FhirDataError is said again as one.
def _calendar_date(v: str) -> None:
    """A full date on the calendar, or a partial one ('2026', '2026-08'), in the supported years."""
    try:
        if len(v) == 10:
            dates.fhir_date(v)
        else:
            dates.partial_year(v)
    except FhirDataError as exc:  # 2026-02-30, 1899
        raise ValueError(str(exc)) from exc


def _moment(v: str) -> dt.datetime:
    try:
        return dates.fhir_datetime(v)
    except FhirDataError as exc:  # 2026-02-30T..., a leap second, 1899
        raise ValueError(str(exc)) from exc


def _when(kind: type, value: object) -> str:
    """msgspec's hook for the date types: a JSON string checked (form, calendar, zone), kept as its text."""
    if kind is FhirDateTime:
        if isinstance(value, str) and _DATETIME_RE.fullmatch(value):
            if len(value) > 10:
                _moment(value)
            else:
                _calendar_date(value)
            return FhirDateTime(value)
        raise ValueError("expected a dateTime (a date, or a date and time with its zone)")
    if kind is FhirInstant:
        if isinstance(value, str) and _INSTANT_RE.fullmatch(value):
            _moment(value)
            return FhirInstant(value)
        raise ValueError("expected an instant (date, time and zone)")
    if kind is FhirDate:
        if isinstance(value, str) and _DATE_RE.fullmatch(value):
            _calendar_date(value)
            return FhirDate(value)
        raise ValueError("expected a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    raise NotImplementedError(kind)


class _Choices:
    """Choice groups ([x]): at most one element of each may be given. Checked in C as far as it goes (one
    attrgetter per group), as every Observation and Dosage of a record passes here."""

    __slots__ = ("_groups", "_raw")

    def __init__(self, *groups: tuple[str, ...]) -> None:
        self._groups = tuple((attrgetter(*group), len(group), group) for group in groups)
        self._raw = tuple((frozenset(group), group) for group in groups)

    def check_raw(self, raw: Resource) -> None:
        for names, group in self._raw:
            if len(names.intersection(raw)) > 1:
                present = [name for name in group if raw.get(name) is not None]
                if len(present) > 1:
                    raise FhirDataError(f"invalid {present[0]}: only one of {', '.join(present)} may be given")

    def check(self, element: object) -> None:
        for get, size, group in self._groups:
            if size - get(element).count(None) > 1:
                present = [name for name in group if getattr(element, name) is not None]
                raise ValueError(f"only one of {', '.join(present)} may be given")


_VALUES = ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger", "valueRange",
           "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")

# Each Shape's choice groups, by the Shape whose __post_init__ checks them.
_MEDICINE = ("medicationCodeableConcept", "medicationReference")
_MEDICINE_TYPES = frozenset({"MedicationRequest", "MedicationDispense"})  # (their only choice: the medicine)
_CHOICES: dict[str, _Choices] = {
    "TimingRepeat": _Choices(("boundsDuration", "boundsRange", "boundsPeriod")),
    "DoseAndRate": _Choices(("doseRange", "doseQuantity"), ("rateRatio", "rateRange", "rateQuantity")),
    "Dosage": _Choices(("asNeededBoolean", "asNeededCodeableConcept")),
    "Patient": _Choices(("deceasedBoolean", "deceasedDateTime")),
    "MedicationIngredient": _Choices(("itemCodeableConcept", "itemReference")),
    "MedicationResource": _Choices(_MEDICINE),
    "MedicationStatement": _Choices(_MEDICINE, ("effectiveDateTime", "effectivePeriod")),
    "MedicationAdministration": _Choices(_MEDICINE, ("effectiveDateTime", "effectivePeriod")),
    "Valued": _Choices(_VALUES),
    "Observation": _Choices(_VALUES, ("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant")),
    "Immunization": _Choices(("occurrenceDateTime", "occurrenceString")),
    "ServiceRequest": _Choices(("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming")),
    "Procedure": _Choices(
        ("performedDateTime", "performedPeriod", "performedString", "performedAge", "performedRange")),
    "Condition": _Choices(
        ("onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString"),
        ("abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange", "abatementString")),
    "DiagnosticReport": _Choices(("effectiveDateTime", "effectivePeriod")),
    "QuestionnaireResponseAnswer": _Choices(
        ("valueBoolean", "valueDecimal", "valueInteger", "valueDate", "valueDateTime", "valueTime", "valueString",
         "valueUri", "valueAttachment", "valueCoding", "valueQuantity", "valueReference")),
}


class Shape(Struct, frozen=True, kw_only=True):
    """What the rules read of one FHIR type (unknown elements are ignored, never checked)."""


# --- data types ------------------------------------------------------------------------------------------


class Coding(Shape, frozen=True, kw_only=True):
    system: Uri | None = None
    code: CodeStr | None = None
    display: Str | None = None


class CodeableConcept(Shape, frozen=True, kw_only=True):
    coding: tuple[Coding, ...] | None = None
    text: Str | None = None


class Quantity(Shape, frozen=True, kw_only=True):
    value: Num | None = None
    comparator: CodeStr | None = None
    unit: Str | None = None
    system: Uri | None = None
    code: CodeStr | None = None


class Range(Shape, frozen=True, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None


class Ratio(Shape, frozen=True, kw_only=True):
    numerator: Quantity | None = None
    denominator: Quantity | None = None


class Period(Shape, frozen=True, kw_only=True):
    start: FhirDateTime | None = None
    end: FhirDateTime | None = None


class Reference(Shape, frozen=True, kw_only=True):
    reference: Str | None = None
    display: Str | None = None


class HumanName(Shape, frozen=True, kw_only=True):
    text: Str | None = None
    family: Str | None = None
    given: tuple[Str, ...] | None = None


class TimingRepeat(Shape, frozen=True, kw_only=True):
    frequency: PositiveInt | None = None
    frequencyMax: PositiveInt | None = None
    period: Num | None = None
    periodMax: Num | None = None
    periodUnit: CodeStr | None = None
    boundsPeriod: Period | None = None
    boundsDuration: Quantity | None = None
    boundsRange: Range | None = None
    dayOfWeek: tuple[CodeStr, ...] | None = None
    when: tuple[CodeStr, ...] | None = None
    timeOfDay: tuple[TimeStr, ...] | None = None
    count: PositiveInt | None = None
    countMax: PositiveInt | None = None

    def __post_init__(self) -> None:
        _CHOICES["TimingRepeat"].check(self)


class Timing(Shape, frozen=True, kw_only=True):
    repeat: TimingRepeat | None = None
    code: CodeableConcept | None = None


class DoseAndRate(Shape, frozen=True, kw_only=True):
    type: CodeableConcept | None = None
    doseQuantity: Quantity | None = None
    doseRange: Range | None = None
    rateQuantity: Quantity | None = None
    rateRange: Range | None = None
    rateRatio: Ratio | None = None

    def __post_init__(self) -> None:
        _CHOICES["DoseAndRate"].check(self)


class Dosage(Shape, frozen=True, kw_only=True):
    sequence: Int | None = None
    text: Str | None = None
    timing: Timing | None = None
    asNeededBoolean: bool | None = None
    asNeededCodeableConcept: CodeableConcept | None = None
    route: CodeableConcept | None = None
    doseAndRate: tuple[DoseAndRate, ...] | None = None
    maxDosePerPeriod: Ratio | None = None
    maxDosePerAdministration: Quantity | None = None

    def __post_init__(self) -> None:
        _CHOICES["Dosage"].check(self)


# --- resources -------------------------------------------------------------------------------------------


class Patient(Shape, frozen=True, kw_only=True):
    name: tuple[HumanName, ...] | None = None
    birthDate: FhirDate | None = None
    gender: CodeStr | None = None
    deceasedBoolean: bool | None = None
    deceasedDateTime: FhirDateTime | None = None


class MedicationIngredient(Shape, frozen=True, kw_only=True):
    itemCodeableConcept: CodeableConcept | None = None
    itemReference: Reference | None = None
    strength: Ratio | None = None

    def __post_init__(self) -> None:
        _CHOICES["MedicationIngredient"].check(self)


class Medication(Shape, frozen=True, kw_only=True):
    code: CodeableConcept | None = None
    form: CodeableConcept | None = None
    ingredient: tuple[MedicationIngredient, ...] | None = None


class Substance(Shape, frozen=True, kw_only=True):
    code: CodeableConcept | None = None


class MedicationResource(Shape, frozen=True, kw_only=True):
    """What the four medication resources share: the medicine, coded in place or referenced."""

    status: CodeStr
    medicationCodeableConcept: CodeableConcept | None = None
    medicationReference: Reference | None = None


class MedicationRequestDispense(Shape, frozen=True, kw_only=True):
    validityPeriod: Period | None = None


class MedicationRequest(MedicationResource, frozen=True, kw_only=True):
    intent: CodeStr
    subject: Reference
    authoredOn: FhirDateTime | None = None
    dosageInstruction: tuple[Dosage, ...] | None = None
    dispenseRequest: MedicationRequestDispense | None = None
    reasonCode: tuple[CodeableConcept, ...] | None = None
    reasonReference: tuple[Reference, ...] | None = None
    priorPrescription: Reference | None = None


class MedicationStatement(MedicationResource, frozen=True, kw_only=True):
    subject: Reference
    effectiveDateTime: FhirDateTime | None = None
    effectivePeriod: Period | None = None
    dateAsserted: FhirDateTime | None = None
    dosage: tuple[Dosage, ...] | None = None
    reasonCode: tuple[CodeableConcept, ...] | None = None
    reasonReference: tuple[Reference, ...] | None = None


class MedicationDispense(MedicationResource, frozen=True, kw_only=True):
    whenHandedOver: FhirDateTime | None = None
    whenPrepared: FhirDateTime | None = None
    daysSupply: Quantity | None = None
    dosageInstruction: tuple[Dosage, ...] | None = None


class MedicationAdministration(MedicationResource, frozen=True, kw_only=True):
    subject: Reference
    effectiveDateTime: FhirDateTime | None = None
    effectivePeriod: Period | None = None


class ObservationReferenceRange(Shape, frozen=True, kw_only=True):
    low: Quantity | None = None
    high: Quantity | None = None
    text: Str | None = None


class Valued(Shape, frozen=True, kw_only=True):
    """An Observation or one of its components: a code and (at most) one value."""

    code: CodeableConcept
    valueQuantity: Quantity | None = None
    valueCodeableConcept: CodeableConcept | None = None
    valueString: Str | None = None
    dataAbsentReason: CodeableConcept | None = None
    # value[x] alternatives no rule reads: listed only so that two values are refused.
    valueBoolean: bool | None = None
    valueInteger: object = None
    valueRange: object = None
    valueRatio: object = None
    valueSampledData: object = None
    valueTime: object = None
    valueDateTime: object = None
    valuePeriod: object = None



class ObservationComponent(Valued, frozen=True, kw_only=True):
    def __post_init__(self) -> None:
        _CHOICES["Valued"].check(self)


class Observation(Valued, frozen=True, kw_only=True):
    status: CodeStr
    component: tuple[ObservationComponent, ...] | None = None
    effectiveDateTime: FhirDateTime | None = None
    effectivePeriod: Period | None = None
    effectiveInstant: FhirInstant | None = None
    effectiveTiming: object = None
    issued: FhirInstant | None = None
    interpretation: tuple[CodeableConcept, ...] | None = None
    referenceRange: tuple[ObservationReferenceRange, ...] | None = None
    specimen: Reference | None = None


class Immunization(Shape, frozen=True, kw_only=True):
    status: CodeStr
    vaccineCode: CodeableConcept
    patient: Reference
    occurrenceDateTime: FhirDateTime | None = None
    occurrenceString: object = None
    recorded: FhirDateTime | None = None


class ImmunizationRecommendationDateCriterion(Shape, frozen=True, kw_only=True):
    code: CodeableConcept
    value: FhirDateTime


class ImmunizationRecommendationItem(Shape, frozen=True, kw_only=True):
    vaccineCode: tuple[CodeableConcept, ...] | None = None
    targetDisease: CodeableConcept | None = None
    forecastStatus: CodeableConcept
    dateCriterion: tuple[ImmunizationRecommendationDateCriterion, ...] | None = None


class ImmunizationRecommendation(Shape, frozen=True, kw_only=True):
    patient: Reference
    date: FhirDateTime | None = None
    recommendation: tuple[ImmunizationRecommendationItem, ...]


class ServiceRequest(Shape, frozen=True, kw_only=True):
    status: CodeStr
    intent: CodeStr  # required (1..1): a request without one is not usable
    subject: Reference
    code: CodeableConcept | None = None
    occurrenceDateTime: FhirDateTime | None = None
    occurrencePeriod: object = None
    occurrenceTiming: object = None
    authoredOn: FhirDateTime | None = None


class Procedure(Shape, frozen=True, kw_only=True):
    status: CodeStr
    subject: Reference
    code: CodeableConcept | None = None
    performedDateTime: FhirDateTime | None = None
    performedPeriod: Period | None = None
    performedString: object = None
    performedAge: object = None
    performedRange: object = None


class Condition(Shape, frozen=True, kw_only=True):
    subject: Reference
    code: CodeableConcept | None = None
    clinicalStatus: CodeableConcept | None = None
    verificationStatus: CodeableConcept | None = None
    onsetDateTime: FhirDateTime | None = None
    onsetPeriod: Period | None = None
    onsetAge: object = None
    onsetRange: object = None
    onsetString: object = None
    recordedDate: FhirDateTime | None = None
    abatementDateTime: FhirDateTime | None = None
    abatementPeriod: Period | None = None
    abatementAge: Quantity | None = None
    abatementRange: Range | None = None
    abatementString: Str | None = None


    @property
    def abated(self) -> bool:
        """An abatement of any kind is recorded."""
        return any(x is not None for x in (self.abatementDateTime, self.abatementPeriod, self.abatementAge,
                                           self.abatementRange, self.abatementString))


class DiagnosticReport(Shape, frozen=True, kw_only=True):
    status: CodeStr
    code: CodeableConcept
    effectiveDateTime: FhirDateTime | None = None
    effectivePeriod: Period | None = None
    issued: FhirInstant | None = None
    result: tuple[Reference, ...] | None = None
    conclusionCode: tuple[CodeableConcept, ...] | None = None


class QuestionnaireItem(Shape, frozen=True, kw_only=True):
    linkId: Str
    text: Str | None = None
    code: tuple[Coding, ...] | None = None
    item: tuple[QuestionnaireItem, ...] | None = None


class Questionnaire(Shape, frozen=True, kw_only=True):
    url: Uri | None = None
    item: tuple[QuestionnaireItem, ...] | None = None


class QuestionnaireResponseAnswer(Shape, frozen=True, kw_only=True):
    valueBoolean: bool | None = None
    valueCoding: Coding | None = None
    valueString: Str | None = None
    valueInteger: Int | None = None
    valueDecimal: Num | None = None
    valueQuantity: Quantity | None = None
    item: tuple[QuestionnaireResponseItem, ...] | None = None
    valueDate: object = None
    valueDateTime: object = None
    valueTime: object = None
    valueUri: object = None
    valueAttachment: object = None
    valueReference: object = None

    def __post_init__(self) -> None:
        _CHOICES["QuestionnaireResponseAnswer"].check(self)


class QuestionnaireResponseItem(Shape, frozen=True, kw_only=True):
    linkId: Str
    text: Str | None = None
    answer: tuple[QuestionnaireResponseAnswer, ...] | None = None
    item: tuple[QuestionnaireResponseItem, ...] | None = None


class QuestionnaireResponse(Shape, frozen=True, kw_only=True):
    status: CodeStr
    questionnaire: Str | None = None
    authored: FhirDateTime | None = None
    item: tuple[QuestionnaireResponseItem, ...] | None = None


# --- reading ---------------------------------------------------------------------------------------------

S = TypeVar("S", bound=Shape)
_AT = re.compile(r" - at `\$\.?([^`]*)`$")


class Reader:
    """Reads the resources of one record: a date seen once in it is not parsed again (the Observations of one
    encounter share their times). One per record, dropped with it: nothing outlives the record it read."""

    __slots__ = ("_dates",)

    def __init__(self) -> None:
        self._dates: dict[type, dict[str, str]] = {FhirDateTime: {}, FhirInstant: {}, FhirDate: {}}

    def read(self, raw: Resource, shape: type[S]) -> S:
        """`raw` (a resource's decoded JSON) as `shape`, checked; FhirDataError names the element that fails."""
        rtype = shape.__name__
        if raw.get("resourceType") != rtype:
            raise FhirDataError(f"expected a {rtype}, got {raw.get('resourceType')!r}")
        choices = _CHOICES.get(rtype) or (_CHOICES["MedicationResource"] if rtype in _MEDICINE_TYPES else None)
        if choices is not None:
            choices.check_raw(raw)  # (a resource's own choices: on its JSON, in C as far as it goes)
        try:
            return msgspec.convert(raw, shape, dec_hook=self._when)
        except msgspec.ValidationError as exc:
            message = str(exc)
            at = _AT.search(message)
            where = at.group(1) if at is not None and at.group(1) else rtype
            text = message[: at.start()] if at is not None else message
            missing = _MISSING.fullmatch(text)
            if missing is not None:  # named as the element, like every other problem
                where = missing.group(1) if where == rtype else f"{where}.{missing.group(1)}"
                text = "required"
            raise FhirDataError(f"invalid {where}: {_in_words(text)}") from None

    def _when(self, kind: type, value: object) -> str:
        seen = self._dates[kind]
        found = seen.get(value) if type(value) is str else None  # (anything else is refused by _when)
        if found is None:
            found = _when(kind, value)
            seen[found] = found
        return found


def read(raw: Resource, shape: type[S]) -> S:
    """One resource read on its own (a Reader reads a record's)."""
    return Reader().read(raw, shape)


_MISSING = re.compile(r"Object missing required field `(\w+)`")
# msgspec's words for the checks above, as a reader of the finding needs them.
_WORDS = (  # (patterns compiled only when a resource fails: re caches them)
    (r"Expected `str` matching regex '\^\[\^\\\\s\]\+.*'",
     "expected a code (no leading, trailing or double spaces)"),
    (r"Expected `str` matching regex '\^\\\\S\+.*'", "expected a URI (no spaces)"),
    (r"Expected `str` matching regex '.*'", "expected a time (hh:mm:ss)"),
    (r"Expected `str` of length >= 1", "expected a non-empty string"),
    (r"Expected `float( \| null)?`.*|Expected `float` [<>]=.*", "expected a number"),
    (r"Expected `int( \| null)?`.*|Expected `int` [<>]=?.*", "expected an integer (in range)"),
    (r"Expected `bool( \| null)?`.*", "expected true or false"),
    (r"Expected `str( \| null)?`.*", "expected a string"),
    (r"Expected `array( \| null)?`.*", "expected a list"),
    (r"Expected `object( \| null)?`.*", "expected an object"),
)


def _in_words(text: str) -> str:
    for pattern, words in _WORDS:
        if re.fullmatch(pattern, text):
            return words
    return text[:1].lower() + text[1:]

