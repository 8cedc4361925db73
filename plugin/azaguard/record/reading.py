"""What every part of the builder reads alike: references, concepts, dates, quantities, statuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from azaguard import fhirshapes as fs
from azaguard.fhirtypes import dates
from azaguard.fhirtypes.concept import raw_codings, readable_codes
from azaguard.fhirtypes.raw import RawObject
from azaguard.fhirtypes.reference import ref_of as ref_of  # re-exported: the builder's name for a resource
from azaguard.record.model import Code, Concept, Lasting
from azaguard.units import Quantity


def type_of(raw: RawObject) -> str:
    """A resource's type as recorded ('' when it names none: no reader reads it)."""
    rtype = raw.get("resourceType")
    return rtype if isinstance(rtype, str) else ""


def concept_of(cc: fs.CodeableConcept) -> Concept:
    codings = tuple(
        Code(system=c.system, code=c.code, display=c.display) for c in (cc.coding or []) if c.code is not None
    )
    return Concept(codings=codings, text=cc.text)


def first_code(cc: fs.CodeableConcept | None) -> str | None:
    if cc is None or not cc.coding:
        return None
    code = cc.coding[0].code
    return str(code) if code is not None else None


def codes_of(cc: object) -> tuple[Code, ...]:
    return readable_codes(cc)


def raw_category_codes(raw: RawObject) -> set[str]:
    """The codes of a raw resource's categories (the quick reading: fhirtypes.concept.raw_codings)."""
    categories = raw.get("category")
    return {c for cat in (categories if isinstance(categories, list) else []) for _, c in raw_codings(cat)}


def raw_codes(raw: RawObject) -> tuple[Code, ...]:
    """Codes readable from a raw (possibly invalid) resource's main concept."""
    for key in ("code", "medicationCodeableConcept", "vaccineCode"):
        codes = codes_of(raw.get(key))
        if codes:
            return codes
    return ()


# FHIR dates are read by fhirtypes.dates (one reading, one supported range); the builder's names for it.
as_datetime = dates.earliest
as_latest = dates.latest
partial_date_note = dates.partial_note


def as_date(value: object) -> date | None:
    dt = as_datetime(value)
    return dt.date() if dt else None


def quantity_of(q: fs.Quantity | None) -> Quantity | None:
    return None if q is None else recorded_quantity(q)


def recorded_quantity(q: fs.Quantity) -> Quantity:
    return Quantity(value=q.value, comparator=q.comparator, code=q.code, system=q.system, unit=q.unit)


def raw_status(raw: RawObject) -> str:
    """The status exactly as recorded (a wrong-case 'Active' stays 'Active': it is not a status we expect)."""
    status = raw.get("status")
    return status if isinstance(status, str) else "(no status)"


IGNORED_OBSERVATION_STATUSES = frozenset({"entered-in-error", "cancelled"})


def onset_lasting(start: object, end: object) -> Lasting | None:
    """A symptom's span from its onset (read as early as it can be) to its recorded end."""
    since = as_datetime(start)
    if since is None:
        return None
    return Lasting(f"onset {start}" + (f" to {end}" if end else ""), since=since, until=as_latest(end))


def number_of(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float, Decimal)) else None
