"""FHIR date, dateTime and instant: read in one place, with one supported range.

A date may be partial ('2026', '2026-08'): read as the earliest moment it can mean (`earliest`) or
the latest (`latest`), and `partial_note` says which for the finding. A time without a zone is read
as UTC. Every moment is kept within SUPPORTED (years 1900 to 2999): the rules look years back and days
ahead, and at the edges of the calendar that arithmetic overflows; no real evaluation happens there.
A value outside it is refused where values come in (`moment`, `fhir_date`, `fhir_datetime`: the
command line, the CDS service, the record's readers) and read as no date by the lenient readers.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from azaguard.errors import FhirDataError, InputError

SUPPORTED = (datetime(1900, 1, 1, tzinfo=UTC), datetime(2999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC))
_PARTIAL = re.compile(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?")
_MAX_TEXT = 64


def moment(text: str) -> datetime:
    """An ISO-8601 date or date-time given as input (--now, --since, a CDS timestamp), in UTC; a time without
    a zone is UTC. InputError (one phrase, e.g. "outside the supported range ...") when it is not one."""
    if len(text) > _MAX_TEXT:
        raise InputError("not an ISO-8601 date-time (too long)")
    try:
        parsed = _iso(text)
    except ValueError as exc:
        raise InputError("not an ISO-8601 date-time") from exc
    if not _supported(parsed):
        raise InputError("outside the supported range (years 1900 to 2999)")
    return parsed.astimezone(UTC)


def fhir_date(text: str) -> date:
    """A full FHIR date (YYYY-MM-DD, already matched by the reader's pattern) on the calendar and in range."""
    try:
        found = date.fromisoformat(text)
    except ValueError as exc:  # 2026-02-30
        raise FhirDataError(f"{text} is not a calendar date") from exc
    _require_supported(datetime(found.year, found.month, found.day, tzinfo=UTC), text)
    return found


def fhir_datetime(text: str) -> datetime:
    """A FHIR dateTime/instant with its time and zone (already matched by the reader's pattern) as an aware
    datetime; at most 6 fractional digits are kept (as fhir.resources does)."""
    head, dot, frac = text.partition(".")
    if dot:
        digits = len(frac) - len(frac.lstrip("0123456789"))
        text = head + "." + frac[: min(digits, 6)] + frac[digits:]
    try:
        found = _iso(text)
    except ValueError as exc:  # 2026-02-30T..., a leap second
        raise FhirDataError(f"{text} is not a valid date and time") from exc
    _require_supported(found, text)
    return found


def partial_year(text: str) -> None:
    """A partial date's year ('2026', '2026-08'), in range (FhirDataError otherwise)."""
    _require_supported(datetime(int(text[:4]), 1, 1, tzinfo=UTC), text)


def earliest(value: object) -> datetime | None:
    """A FHIR date/dateTime/instant (a string, or a date or datetime already read) as an aware datetime; a partial
    date as its first moment. None when absent, unreadable or outside SUPPORTED."""
    if value is None:
        return None
    found: datetime | None = None
    if isinstance(value, datetime):
        found = value if value.tzinfo else value.replace(tzinfo=UTC)
    elif isinstance(value, date):
        found = datetime(value.year, value.month, value.day, tzinfo=UTC)
    elif isinstance(value, str):
        m = _PARTIAL.fullmatch(value)
        try:
            found = (datetime(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1), tzinfo=UTC) if m
                     else _iso(value))
        except ValueError:
            return None
    return found if found is not None and _supported(found) else None


def latest(value: object) -> datetime | None:
    """As earliest(), but a partial date ('2026', '2026-08') is its last moment: the cautious reading of an end."""
    if isinstance(value, str):
        m = _PARTIAL.fullmatch(value)
        if m and not m.group(3) and earliest(value) is not None:
            year, month = int(m.group(1)), int(m.group(2) or 12)
            if year == SUPPORTED[1].year and month == 12:
                return SUPPORTED[1]
            first_of_next = datetime(year + (month == 12), month % 12 + 1, 1, tzinfo=UTC)
            return first_of_next - timedelta(seconds=1)
    return earliest(value)


def zoned(value: object) -> datetime | None:
    """A dateTime that places a moment in a day (a time with its zone); None for a date alone or anything else."""
    if not isinstance(value, str) or "T" not in value:
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None and _supported(found) else None


def is_partial(value: object) -> bool:
    """A year or a year and month only."""
    if not isinstance(value, str):
        return False
    m = _PARTIAL.fullmatch(value)
    return m is not None and not m.group(3)


def partial_note(value: object, reading: Literal["earliest", "latest"]) -> str | None:
    """What a partial date was read as, for the finding: None for a full date."""
    if not is_partial(value):
        return None
    assert isinstance(value, str)  # noqa: S101 - is_partial said so
    when = earliest(value) if reading == "earliest" else latest(value)
    precision = "year only" if len(value) == 4 else "month only"
    why = ("the oldest it can be, so it is never taken as more recent than it is" if reading == "earliest"
           else "the latest it can be, the cautious reading")
    return f"date recorded as {value} ({precision}): read as {when:%d %b %Y} ({why})" if when else None


def _iso(text: str) -> datetime:
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _supported(when: datetime) -> bool:
    try:
        return SUPPORTED[0] <= when <= SUPPORTED[1]
    except OverflowError:  # an offset that carries the moment past year 1 or 9999
        return False


def _require_supported(when: datetime, text: str) -> None:
    if not _supported(when):
        raise FhirDataError(f"{text} is outside the supported range (years 1900 to 2999)")
