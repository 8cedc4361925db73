"""Numbers, units, dates and sources the way a clinician reads them.

Everything here is pure: values and the display table (mappings/display.json) in, text out.
Units: a UCUM code is shown as its display text ("10*9/L" → "×10⁹/L"); a value is rounded to the
unit's clinically meaningful decimals and never shown with more decimals than it was recorded with.
Dates: "20 Nov 2026, 9 days ago", in the EHR user's time zone when known (else UTC).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, tzinfo
from functools import lru_cache

from azaguard.mappings import Mappings

# A number followed by a unit in text written by the rules: "3.1 10*9/L", "<0.5 10*3/uL", "38.78 Cel".
_NUMBER = r"(?P<cmp>[<>]=?)?(?P<num>-?\d+(?:\.\d+)?)"
_ISO_DATETIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b"
)
_ECHO = re.compile(r"\s*\(=\s*[^()]*\)")  # "(= 146 U/L)": the same value again
_POWER = re.compile(r"\bx ?10\^(\d+)/(L|uL)\b")  # "x10^9/L" written by hand in a source
_SUPERSCRIPT = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")
# English month abbreviations, whatever the server's locale (strftime's %b follows it).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_QUANTITY = re.compile(rf"^\s*{_NUMBER}\s*(?P<unit>\S.*?)?\s*$")


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


def humanise_quantity(text: str | None, m: Mappings) -> str:
    """An evidence value as recorded ("101.8 [degF]", "3.1 10*3/uL") in display form; other text as is."""
    if not text:
        return ""
    match = _QUANTITY.match(text)
    if match is None or (match["unit"] and match["unit"] not in m.display.units):
        return text
    value = float(match["num"])
    return format_quantity(
        value, match["unit"], m, recorded_decimals=decimals_of(match["num"]), comparator=match["cmp"] or ""
    )


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
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        if len(text) in (4, 7):  # FHIR partial dates: a year, a month
            return date.fromisoformat(text + ("-01-01" if len(text) == 4 else "-01"))
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def cite(source: str | None, m: Mappings) -> str | None:
    """A mappings `source` as a clinician cites it ("BSR 2017 monitoring guideline"); None if unknown."""
    if not source:
        return None
    for citation in m.display.citations:
        if citation.contains.lower() in source.lower():
            return citation.cite
    return None


def humanise_text(text: str, m: Mappings, now: datetime | None = None, tz: tzinfo | None = None) -> str:
    """Rule text for clinicians: display units, rounded numbers, readable dates, no value echoes.

    A safety net over the rules' wording: it only rewrites what it recognises (a number followed by
    a UCUM code from the display table, an ISO date) and leaves everything else as written.
    """
    out = _ECHO.sub("", text)
    pattern = _quantity_pattern(tuple(m.display.units))

    def quantity(match: re.Match[str]) -> str:
        return format_quantity(
            float(match["num"]), match["unit"], m,
            recorded_decimals=decimals_of(match["num"]), comparator=match["cmp"] or "",
        )

    out = pattern.sub(quantity, out)
    out = _POWER.sub(lambda mt: "×10" + mt[1].translate(_SUPERSCRIPT) + "/" + mt[2].replace("u", "µ"), out)
    out = _ISO_DATETIME.sub(lambda mt: format_day(mt.group(0), tz), out)
    return out


@lru_cache(maxsize=8)
def _quantity_pattern(codes: tuple[str, ...]) -> re.Pattern[str]:
    """A number followed by one of the display table's UCUM codes (longest code first)."""
    unit_alt = "|".join(re.escape(c) for c in sorted(codes, key=len, reverse=True))
    return re.compile(rf"{_NUMBER}\s?(?P<unit>{unit_alt})(?![\w*\[{{/^])")


def sentence(text: str, limit: int = 139) -> str:
    """One whole sentence under `limit` characters: cut at a clause boundary, never mid-word."""
    text = " ".join(text.split()).strip()
    if not text:
        return text
    if len(text) > limit:
        cut = text[: limit - 1]
        for mark in (". ", "; ", " — ", ": ", ", "):
            i = cut.rfind(mark)
            if i > limit // 2:
                cut = cut[:i]
                break
        else:
            cut = cut.rsplit(" ", 1)[0]
        text = cut.rstrip(" ,;:—-")
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]
