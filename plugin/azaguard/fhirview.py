"""Raw FHIR R4 JSON, read as typed objects: only the elements the rules read, each checked.

fhir.resources validates every element of every resource (a Synthea record: hundreds of validation
hooks per resource, most on elements no rule reads) and costs ~150 ms to import. Here a resource is
reduced to the elements listed in SCHEMA, and each of those is checked as FHIR R4 JSON requires
(types, formats, calendar dates, one choice of [x]); the rest is not looked at. A value that fails
raises FhirDataError (azaguard.errors: a reader's data error naming the element), which record.py
turns into a ParseProblem: the rules that would have read it answer cannot-evaluate.

The result answers attribute access like a fhir.resources model (`obs.valueQuantity.value`), so the
record builder reads both alike (record.py can still validate fully, for the comparison test).
Reading an element that SCHEMA does not list is a programming error (SchemaError), never "absent".
Primitive values stay as JSON gave them (str, int, float, bool), except dates, which come back as
fhir.resources gives them (date, aware datetime, or the string of a partial date).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from azaguard.errors import FhirDataError as FhirDataError  # re-exported: what this reader raises
from azaguard.fhirtypes import dates


class SchemaError(Exception):
    """Code read an element that SCHEMA does not list (add it there, with its type)."""


# --- primitives ------------------------------------------------------------------------------------

_YEAR = r"([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)"
_DATE_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?")
_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?"
_ZONE = r"(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))"
# A time needs its zone (as fhir.resources also requires).
_DATETIME_RE = re.compile(rf"{_YEAR}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01])(T{_TIME}{_ZONE})?)?)?")
_INSTANT_RE = re.compile(rf"{_YEAR}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T{_TIME}{_ZONE}")
_CODE_RE = re.compile(r"[^\s]+( [^\s]+)*")
_URI_RE = re.compile(r"\S+")
_INT32 = 2**31


def _string(v: object) -> object:
    if isinstance(v, str) and v:
        return v
    raise FhirDataError("expected a non-empty string")


# Codes and URIs seen valid: a record repeats a few (statuses, systems, units) thousands of times.
_VALID_CODES: set[str] = set()
_VALID_URIS: set[str] = set()


def _code(v: object) -> object:
    if type(v) is str and v in _VALID_CODES:  # (a list or object is unhashable: never looked up)
        return v
    if isinstance(v, str) and _CODE_RE.fullmatch(v):
        _remember(_VALID_CODES, v)
        return v
    raise FhirDataError("expected a code (no leading, trailing or double spaces)")


def _uri(v: object) -> object:
    if type(v) is str and v in _VALID_URIS:
        return v
    if isinstance(v, str) and _URI_RE.fullmatch(v):
        _remember(_VALID_URIS, v)
        return v
    raise FhirDataError("expected a URI")


def _remember(valid: set[str], v: str) -> None:
    if len(valid) > 20_000:  # never grow without bound
        valid.clear()
    valid.add(v)


def _boolean(v: object) -> object:
    if isinstance(v, bool):
        return v
    raise FhirDataError("expected true or false")


def _integer(low: int) -> Callable[[object], object]:
    def check(v: object) -> object:
        if isinstance(v, int) and not isinstance(v, bool) and low <= v < _INT32:
            return v
        raise FhirDataError(f"expected an integer ≥ {low}" if low > -_INT32 else "expected an integer")

    return check


def _decimal(v: object) -> object:
    if isinstance(v, int | float) and not isinstance(v, bool) and v == v and abs(v) != float("inf"):
        return v
    raise FhirDataError("expected a number")


# Dates come back as fhir.resources gives them: a full date as a date, a date and time as an aware
# datetime, a partial date (2026, 2026-06) as the string. Parsed by fhirtypes.dates, which refuses a
# date off the calendar (2026-02-30) or outside its supported years.
def _date_value(v: str) -> object:
    if len(v) == 10:
        return dates.fhir_date(v)
    dates.partial_year(v)
    return v


def _date(v: object) -> object:
    if isinstance(v, str) and _DATE_RE.fullmatch(v):
        return _date_value(v)
    raise FhirDataError("expected a date (YYYY, YYYY-MM or YYYY-MM-DD)")


# Valid dateTimes and instants as parsed (immutable values): the Observations of one encounter share
# their times. Exact `str` keys only; bounded like the code sets above.
_DATETIMES: dict[str, object] = {}
_INSTANTS: dict[str, object] = {}


def _datetime(v: object) -> object:
    if type(v) is str:
        found = _DATETIMES.get(v)
        if found is not None:
            return found
    if isinstance(v, str) and _DATETIME_RE.fullmatch(v):
        found = dates.fhir_datetime(v) if len(v) > 10 else _date_value(v)
        _remember_value(_DATETIMES, v, found)
        return found
    raise FhirDataError("expected a dateTime (a date, or a date and time with its zone)")


def _instant(v: object) -> object:
    if type(v) is str:
        found = _INSTANTS.get(v)
        if found is not None:
            return found
    if isinstance(v, str) and _INSTANT_RE.fullmatch(v):
        found = dates.fhir_datetime(v)
        _remember_value(_INSTANTS, v, found)
        return found
    raise FhirDataError("expected an instant (date, time and zone)")


def _remember_value(valid: dict[str, object], v: str, parsed: object) -> None:
    if type(v) is not str:  # a str subclass is checked every time
        return
    if len(valid) > 20_000:  # never grow without bound
        valid.clear()
    valid[v] = parsed


_TIME_RE = re.compile(_TIME)


def _time(v: object) -> object:
    if isinstance(v, str) and _TIME_RE.fullmatch(v):
        return v
    raise FhirDataError("expected a time (hh:mm:ss)")


PRIMITIVES: dict[str, Callable[[object], object]] = {
    "string": _string,
    "markdown": _string,
    "code": _code,
    "uri": _uri,
    "boolean": _boolean,
    "integer": _integer(-_INT32),
    "positiveInt": _integer(1),
    "unsignedInt": _integer(0),
    "decimal": _decimal,
    "date": _date,
    "dateTime": _datetime,
    "instant": _instant,
    "time": _time,
}

# --- what the rules read ------------------------------------------------------------------------------
# type -> element -> type ("*" after it: a list). Complex types and resources alike.

_MEDICATION = {"medicationCodeableConcept": "CodeableConcept", "medicationReference": "Reference"}

SCHEMA: dict[str, dict[str, str]] = {
    # data types
    "Coding": {"system": "uri", "code": "code", "display": "string"},
    "CodeableConcept": {"coding": "Coding*", "text": "string"},
    "Quantity": {"value": "decimal", "comparator": "code", "unit": "string", "system": "uri", "code": "code"},
    "Range": {"low": "Quantity", "high": "Quantity"},
    "Ratio": {"numerator": "Quantity", "denominator": "Quantity"},
    "Period": {"start": "dateTime", "end": "dateTime"},
    "Reference": {"reference": "string", "display": "string"},
    "HumanName": {"text": "string", "family": "string", "given": "string*"},
    "Timing": {"repeat": "TimingRepeat", "code": "CodeableConcept"},
    "TimingRepeat": {
        "frequency": "positiveInt", "frequencyMax": "positiveInt", "period": "decimal", "periodMax": "decimal",
        "periodUnit": "code", "boundsPeriod": "Period", "boundsDuration": "Quantity", "boundsRange": "Range",
        "dayOfWeek": "code*", "when": "code*", "timeOfDay": "time*", "count": "positiveInt",
        "countMax": "positiveInt",
    },
    "Dosage": {
        "sequence": "integer", "text": "string", "timing": "Timing", "asNeededBoolean": "boolean",
        "asNeededCodeableConcept": "CodeableConcept", "route": "CodeableConcept", "doseAndRate": "DoseAndRate*",
        "maxDosePerPeriod": "Ratio", "maxDosePerAdministration": "Quantity",
    },
    "DoseAndRate": {
        "type": "CodeableConcept", "doseQuantity": "Quantity", "doseRange": "Range", "rateQuantity": "Quantity",
        "rateRange": "Range", "rateRatio": "Ratio",
    },
    # resources
    "Patient": {
        "name": "HumanName*", "birthDate": "date", "gender": "code", "deceasedBoolean": "boolean",
        "deceasedDateTime": "dateTime",
    },
    "Medication": {"code": "CodeableConcept", "form": "CodeableConcept", "ingredient": "MedicationIngredient*"},
    "MedicationIngredient": {
        "itemCodeableConcept": "CodeableConcept", "itemReference": "Reference", "strength": "Ratio",
    },
    "Substance": {"code": "CodeableConcept"},
    "MedicationRequest": {
        "status": "code", "intent": "code", **_MEDICATION, "authoredOn": "dateTime",
        "dosageInstruction": "Dosage*", "dispenseRequest": "MedicationRequestDispense",
        "reasonCode": "CodeableConcept*", "reasonReference": "Reference*", "priorPrescription": "Reference",
    },
    "MedicationRequestDispense": {"validityPeriod": "Period"},
    "MedicationStatement": {
        "status": "code", **_MEDICATION, "effectiveDateTime": "dateTime", "effectivePeriod": "Period",
        "dateAsserted": "dateTime", "dosage": "Dosage*", "reasonCode": "CodeableConcept*",
        "reasonReference": "Reference*",
    },
    "MedicationDispense": {
        "status": "code", **_MEDICATION, "whenHandedOver": "dateTime", "whenPrepared": "dateTime",
        "daysSupply": "Quantity", "dosageInstruction": "Dosage*",
    },
    "MedicationAdministration": {
        "status": "code", **_MEDICATION, "effectiveDateTime": "dateTime", "effectivePeriod": "Period",
    },
    "Observation": {
        "status": "code", "code": "CodeableConcept", "component": "ObservationComponent*",
        "effectiveDateTime": "dateTime", "effectivePeriod": "Period", "effectiveInstant": "instant",
        "issued": "instant", "valueQuantity": "Quantity", "valueCodeableConcept": "CodeableConcept",
        "valueString": "string", "valueBoolean": "boolean", "dataAbsentReason": "CodeableConcept",
        "interpretation": "CodeableConcept*", "referenceRange": "ObservationReferenceRange*", "specimen": "Reference",
    },
    "ObservationReferenceRange": {"low": "Quantity", "high": "Quantity", "text": "string"},
    "ObservationComponent": {
        "code": "CodeableConcept", "valueQuantity": "Quantity", "valueCodeableConcept": "CodeableConcept",
        "valueString": "string", "dataAbsentReason": "CodeableConcept",
    },
    "Immunization": {
        "status": "code", "vaccineCode": "CodeableConcept", "occurrenceDateTime": "dateTime",
        "recorded": "dateTime",
    },
    "ImmunizationRecommendation": {"date": "dateTime", "recommendation": "ImmunizationRecommendationItem*"},
    "ImmunizationRecommendationItem": {
        "vaccineCode": "CodeableConcept*", "targetDisease": "CodeableConcept", "forecastStatus": "CodeableConcept",
        "dateCriterion": "ImmunizationRecommendationDateCriterion*",
    },
    "ImmunizationRecommendationDateCriterion": {"code": "CodeableConcept", "value": "dateTime"},
    "ServiceRequest": {
        "status": "code", "code": "CodeableConcept", "occurrenceDateTime": "dateTime", "authoredOn": "dateTime",
    },
    "Procedure": {
        "status": "code", "code": "CodeableConcept", "performedDateTime": "dateTime", "performedPeriod": "Period",
    },
    "Condition": {
        "code": "CodeableConcept", "clinicalStatus": "CodeableConcept", "verificationStatus": "CodeableConcept",
        "onsetDateTime": "dateTime", "onsetPeriod": "Period", "recordedDate": "dateTime",
        "abatementDateTime": "dateTime", "abatementPeriod": "Period", "abatementAge": "Quantity",
        "abatementRange": "Range", "abatementString": "string",
    },
    "DiagnosticReport": {
        "status": "code", "code": "CodeableConcept", "effectiveDateTime": "dateTime", "effectivePeriod": "Period",
        "issued": "instant", "result": "Reference*", "conclusionCode": "CodeableConcept*",
    },
    "Questionnaire": {"url": "uri", "item": "QuestionnaireItem*"},
    "QuestionnaireItem": {"linkId": "string", "text": "string", "code": "Coding*", "item": "QuestionnaireItem*"},
    "QuestionnaireResponse": {
        "status": "code", "questionnaire": "string", "authored": "dateTime", "item": "QuestionnaireResponseItem*",
    },
    "QuestionnaireResponseItem": {
        "linkId": "string", "text": "string", "answer": "QuestionnaireResponseAnswer*",
        "item": "QuestionnaireResponseItem*",
    },
    "QuestionnaireResponseAnswer": {
        "valueBoolean": "boolean", "valueCoding": "Coding", "valueString": "string", "valueInteger": "integer",
        "valueDecimal": "decimal", "valueQuantity": "Quantity", "item": "QuestionnaireResponseItem*",
    },
}  # fmt: skip

# Elements FHIR requires (1..1) of what the rules read: missing, the resource is not usable, as
# fhir.resources would also say. Checked for presence (the subject/patient reference too, without
# which whose data it is cannot be told).
REQUIRED: dict[str, tuple[str, ...]] = {
    "MedicationRequest": ("status", "intent", "subject"),
    "MedicationStatement": ("status", "subject"),
    "MedicationDispense": ("status",),
    "MedicationAdministration": ("status", "subject"),
    "Observation": ("status", "code"),
    "ObservationComponent": ("code",),
    "Immunization": ("status", "vaccineCode", "patient"),
    "ImmunizationRecommendation": ("patient", "recommendation"),
    "ImmunizationRecommendationItem": ("forecastStatus",),
    "ImmunizationRecommendationDateCriterion": ("code", "value"),
    "ServiceRequest": ("status", "intent", "subject"),
    "Procedure": ("status", "subject"),
    "Condition": ("subject",),
    "DiagnosticReport": ("status", "code"),
    "QuestionnaireItem": ("linkId",),
    "QuestionnaireResponse": ("status",),
    "QuestionnaireResponseItem": ("linkId",),
}
# Choice elements ([x]): at most one of each group may be present (of those listed in the FHIR spec).
_CHOICES: dict[str, tuple[tuple[str, ...], ...]] = {
    "MedicationRequest": (("medicationCodeableConcept", "medicationReference"),),
    "MedicationStatement": (("medicationCodeableConcept", "medicationReference"),
                            ("effectiveDateTime", "effectivePeriod")),
    "MedicationDispense": (("medicationCodeableConcept", "medicationReference"),),
    "MedicationAdministration": (("medicationCodeableConcept", "medicationReference"),
                                 ("effectiveDateTime", "effectivePeriod")),
    "Observation": (("effectiveDateTime", "effectivePeriod", "effectiveTiming", "effectiveInstant"),
                    ("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean", "valueInteger",
                     "valueRange", "valueRatio", "valueSampledData", "valueTime", "valueDateTime", "valuePeriod")),
    "ObservationComponent": (("valueQuantity", "valueCodeableConcept", "valueString", "valueBoolean",
                              "valueInteger", "valueRange", "valueRatio", "valueSampledData", "valueTime",
                              "valueDateTime", "valuePeriod"),),
    "Immunization": (("occurrenceDateTime", "occurrenceString"),),
    "ServiceRequest": (("occurrenceDateTime", "occurrencePeriod", "occurrenceTiming"),),
    "Procedure": (("performedDateTime", "performedPeriod", "performedString", "performedAge", "performedRange"),),
    "Patient": (("deceasedBoolean", "deceasedDateTime"),),
    "DiagnosticReport": (("effectiveDateTime", "effectivePeriod"),),
    "QuestionnaireResponseAnswer": (("valueBoolean", "valueDecimal", "valueInteger", "valueDate", "valueDateTime",
                                     "valueTime", "valueString", "valueUri", "valueAttachment", "valueCoding",
                                     "valueQuantity", "valueReference"),),
    "Condition": (("onsetDateTime", "onsetAge", "onsetPeriod", "onsetRange", "onsetString"),
                  ("abatementDateTime", "abatementAge", "abatementPeriod", "abatementRange", "abatementString")),
    "Dosage": (("asNeededBoolean", "asNeededCodeableConcept"),),
    "DoseAndRate": (("doseRange", "doseQuantity"), ("rateRatio", "rateRange", "rateQuantity")),
    "MedicationIngredient": (("itemCodeableConcept", "itemReference"),),
    "TimingRepeat": (("boundsDuration", "boundsRange", "boundsPeriod"),),
}  # fmt: skip


class Element:
    """One resource or data type, reduced to the SCHEMA elements that are present.

    Each SCHEMA type is a subclass whose class attributes are its elements, all None: a present
    element is found in the instance's __dict__, an absent one reads None, and a name that is not
    an element falls through to __getattr__ (a SchemaError)."""

    def __getattr__(self, name: str) -> Any:
        raise SchemaError(f"{type(self).__name__}.{name} is not in fhirview.SCHEMA")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.__dict__!r})"


# Per type, precomputed once: its choice groups, required elements, element plan and class.
# The plan: element -> (is a list, primitive check or None, the element's type).
_Plan = dict[str, tuple[bool, Callable[[object], object] | None, str]]
_Spec = tuple[tuple[tuple[frozenset[str], tuple[str, ...]], ...], tuple[str, ...], _Plan, type[Element]]
_SPECS: dict[str, _Spec] = {
    type_name: (
        tuple((frozenset(group), group) for group in _CHOICES.get(type_name, ())),
        REQUIRED.get(type_name, ()),
        {n: (spec.endswith("*"), PRIMITIVES.get(spec.rstrip("*")), spec.rstrip("*")) for n, spec in fields.items()},
        type(type_name, (Element,), dict.fromkeys(fields)),
    )
    for type_name, fields in SCHEMA.items()
}


class _Invalid(Exception):
    """An invalid element deep down; its path is assembled on the way up (never on the happy path)."""

    def __init__(self, path: list[str], message: str) -> None:
        super().__init__(message)
        self.path = path
        self.message = message


def read(raw: dict[str, Any], resource_type: str | None = None) -> Any:
    """`raw` (a resource's JSON object) reduced and checked; raises FhirDataError naming the element."""
    rtype = resource_type or raw.get("resourceType")
    if not isinstance(rtype, str) or rtype not in SCHEMA:
        raise SchemaError(f"no schema for {rtype!r}")
    if raw.get("resourceType") != rtype:
        raise FhirDataError(f"expected a {rtype}, got {raw.get('resourceType')!r}")
    try:
        return _element(raw, rtype)
    except _Invalid as exc:
        where = ".".join(reversed(exc.path)) or rtype
        raise FhirDataError(f"invalid {where}: {exc.message}") from None


# Data types a record repeats verbatim (a Synthea file: 370 codes of 59 kinds, 166 dosages of 2): each
# distinct value is checked once. Found by its JSON text (1 and 1.0, true and 1 differ there), then
# compared with the value remembered (orjson writes NaN as null: equality tells them apart, and a
# remembered dict changed since never matches). Only valid values are remembered; the Elements are
# shared, and nothing writes to one after it is made.
_MEMOISED = frozenset({"CodeableConcept", "Dosage"})
_MEMO: dict[tuple[str, bytes], tuple[dict[str, Any], Element]] = {}


def _element(raw: object, type_name: str) -> Element:
    if type(raw) is not dict:
        raise _Invalid([], "expected an object")
    if type_name not in _MEMOISED:
        return _checked(raw, type_name)
    try:
        key = (type_name, orjson.dumps(raw))
    except orjson.JSONEncodeError:  # not plain JSON (e.g. built in Python with a Decimal)
        return _checked(raw, type_name)
    found = _MEMO.get(key)
    if found is not None and found[0] == raw:
        return found[1]
    element = _checked(raw, type_name)
    if len(_MEMO) > 4096:  # never grow without bound (each entry holds a small input dict)
        _MEMO.clear()
    _MEMO[key] = (raw, element)
    return element


def _checked(raw: dict[str, Any], type_name: str) -> Element:
    choices, required, plan, cls = _SPECS[type_name]
    for names, group in choices:
        if len(names.intersection(raw)) > 1:  # in C; most elements give one value of a group, or none
            present = [n for n in group if raw.get(n) is not None]
            if len(present) > 1:
                raise _Invalid([present[0]], f"only one of {', '.join(present)} may be given")
    for name in required:
        if raw.get(name) is None:
            raise _Invalid([name], "required")
    values: dict[str, Any] = {}
    for name, value in raw.items():
        entry = plan.get(name)
        if entry is None or value is None:
            continue  # not read by the rules: not checked
        is_list, check, item_type = entry
        try:
            if not is_list:
                values[name] = _element(value, item_type) if check is None else check(value)
                continue
            if type(value) is not list:
                raise _Invalid([], "expected a list")
            items = []
            for i, item in enumerate(value):
                try:
                    items.append(_element(item, item_type) if check is None else check(item))
                except (_Invalid, FhirDataError) as exc:
                    raise _path(exc, str(i)) from None
            values[name] = items
        except (_Invalid, FhirDataError) as exc:
            raise _path(exc, name) from None
    element = cls.__new__(cls)
    element.__dict__ = values
    return element


def _path(exc: _Invalid | FhirDataError, step: str) -> _Invalid:
    if isinstance(exc, _Invalid):
        exc.path.append(step)
        return exc
    return _Invalid([step], str(exc))
