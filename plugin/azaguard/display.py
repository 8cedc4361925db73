"""Numbers, units, dates and sources the way a clinician reads them.

Everything here is pure: values and the display table (mappings/display.json) in, text out.
Units: a UCUM code is shown as its display text ("10*9/L" → "×10⁹/L"); a value is rounded to the
unit's clinically meaningful decimals and never shown with more decimals than it was recorded with.
Dates: "20 Nov 2026, 9 days ago", in the EHR user's time zone when known (else UTC).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, tzinfo

from azaguard.fhirtypes import dates
from azaguard.mappings import Mappings

# English month abbreviations, whatever the server's locale (strftime's %b follows it).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def unit_text(code: str | None, m: Mappings) -> str:
    """The display text of a UCUM code; an unknown code is shown as recorded (never guessed)."""
    if not code:
        return ""
    shown = m.display.units.get(code)
    return shown.text if shown else code


def decimals_of(number_text: str) -> int:
    """How many decimals a recorded number carries ("38.60" → 2, "146" → 0)."""
    return len(number_text.split(".", 1)[1]) if "." in number_text else 0


def format_number(value: float, decimals: int) -> str:
    text = f"{value:.{decimals}f}"
    return text.lstrip("-") if float(text) == 0 else text  # no "-0.0"


def format_quantity(
    value: float, unit: str | None, m: Mappings, *, recorded_decimals: int | None = None, comparator: str = ""
) -> str:
    """"38.8 °C": the value rounded to the unit's meaningful decimals (or fewer, as recorded)."""
    shown = m.display.units.get(unit or "")
    decimals = shown.decimals if shown else (recorded_decimals if recorded_decimals is not None else 2)
    if recorded_decimals is not None:
        decimals = min(decimals, recorded_decimals)
    number = format_number(value, decimals)
    text = unit_text(unit, m)
    return f"{comparator}{number} {text}".strip() if text else f"{comparator}{number}"


def format_date(when: datetime | date | str | None, now: datetime, tz: tzinfo | None = None) -> str:
    """"20 Nov 2026, 9 days ago"; "today 06:00"; "yesterday 18:30"; "in 7 days" for the future."""
    moment = parse_when(when)
    if moment is None:
        return "date not recorded"
    zone = tz or UTC
    if isinstance(moment, datetime):
        local = moment.astimezone(zone) if moment.tzinfo else moment.replace(tzinfo=UTC).astimezone(zone)
        day, clock = local.date(), f"{local.hour:02d}:{local.minute:02d}"
    else:
        day, clock = moment, None
    today = now.astimezone(zone).date()
    delta = (today - day).days
    if delta == 0:
        return f"today {clock}" if clock else "today"
    if delta == 1:
        return f"yesterday {clock}" if clock else "yesterday"
    stamp = f"{day.day} {_MONTHS[day.month - 1]} {day.year}"
    if delta > 1:
        return f"{stamp}, {delta} days ago"
    return f"{stamp}, in {-delta} day{'s' if delta != -1 else ''}"


def format_moment(when: datetime | date | str | None, tz: tzinfo | None = None) -> str:
    """"20 Nov 2026 06:00" (absolute, for text that stays in the chart)."""
    moment = parse_when(when)
    if moment is None:
        return "date not recorded"
    if not isinstance(moment, datetime):
        return format_day(moment)
    local = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz or UTC)
    return f"{format_day(local.date())} {local.hour:02d}:{local.minute:02d}"


def format_day(when: datetime | date | str | None, tz: tzinfo | None = None) -> str:
    """"20 Nov 2026" (no relative part), for tables and axes."""
    moment = parse_when(when)
    if moment is None:
        return "date not recorded"
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(tz or UTC).date()
    return f"{moment.day} {_MONTHS[moment.month - 1]} {moment.year}"


def parse_when(when: datetime | date | str | None) -> datetime | date | None:
    if when is None or isinstance(when, datetime | date):
        return when
    text = when.strip()
    moment = dates.earliest(text)  # a partial date (a year, a month) as its first day
    if moment is None:
        return None
    return moment.date() if len(text) <= 10 else moment


def cite(source: str | None, m: Mappings) -> str | None:
    """A mappings `source` as a clinician cites it ("BSR 2017 monitoring guideline"); None if unknown."""
    if not source:
        return None
    for citation in m.display.citations:
        if citation.contains.lower() in source.lower():
            return citation.cite
    return None
