"""What every part of the builder reads alike: references, concepts, dates, quantities, statuses."""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from azaguard import fhirshapes as fs
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


def raw_code_values(cc: object) -> list[str]:
    """The code strings of a raw CodeableConcept (what codes_of reads, without building Codes)."""
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


def short_error(exc: Exception) -> str:
    # pydantic is loaded only by full validation (the fast path never imports it); its errors are summarised.
    core = sys.modules.get("pydantic_core")
    if core is not None and isinstance(exc, core.ValidationError):
        errs = exc.errors()
        first = errs[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        more = f" (+{len(errs) - 1} more)" if len(errs) > 1 else ""
        return f"invalid {where}: {first.get('msg')}{more}"
    return str(exc) or type(exc).__name__


PARTIAL_DATE = re.compile(r"^(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?$")


def as_datetime(value: object) -> datetime | None:
    """FHIR date/dateTime/instant (also partial '2020' or '2020-01') as an aware datetime; naive = UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        m = PARTIAL_DATE.match(value)
        if m:
            return datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1), tzinfo=UTC)
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def as_latest(value: object) -> datetime | None:
    """As as_datetime, but a partial date ('2026', '2026-08') is read as the last moment it can mean."""
    if isinstance(value, str):
        m = PARTIAL_DATE.match(value)
        if m and not m.group(3):
            year, month = int(m.group(1)), int(m.group(2) or 12)
            first_of_next = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return first_of_next - timedelta(seconds=1)
    return as_datetime(value)


def partial_date_note(value: object, reading: Literal["earliest", "latest"]) -> str | None:
    """What a partial date was read as, for the finding: None for a full date."""
    if not isinstance(value, str):
        return None
    m = PARTIAL_DATE.match(value)
    if not m or m.group(3):
        return None
    when = as_datetime(value) if reading == "earliest" else as_latest(value)
    precision = "year only" if not m.group(2) else "month only"
    why = ("the oldest it can be, so it is never taken as more recent than it is" if reading == "earliest"
           else "the latest it can be, the cautious reading")
    return f"date recorded as {value} ({precision}): read as {when:%d %b %Y} ({why})" if when else None


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
