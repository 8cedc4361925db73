"""What every part of the builder reads alike: references, concepts, dates, quantities, statuses."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from azaguard import fhirshapes as fs
from azaguard.fhirtypes import dates
from azaguard.fhirtypes.concept import readable_codes
from azaguard.record.model import Code, Concept, Lasting
from azaguard.units import Quantity


def ref_of(raw: Mapping[str, Any]) -> str:
    rid = raw.get("id")
    return f"{raw.get('resourceType')}/{rid}" if isinstance(rid, str) else f"{raw.get('resourceType')}/(no id)"


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


def raw_code_values(cc: object) -> list[str]:
    """The code strings of a raw CodeableConcept (what codes_of reads, no Codes built: the hot path)."""
    codings = cc.get("coding") if isinstance(cc, dict) else None
    if not isinstance(codings, list):
        return []
    return [c["code"] for c in codings if isinstance(c, dict) and isinstance(c.get("code"), str)]


def raw_category_codes(raw: Mapping[str, Any]) -> set[str]:
    categories = raw.get("category")
    return {c for cat in (categories if isinstance(categories, list) else []) for c in raw_code_values(cat)}


def raw_codes(raw: Mapping[str, Any]) -> tuple[Code, ...]:
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


def raw_status(raw: Mapping[str, Any]) -> str:
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
