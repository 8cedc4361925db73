"""Dates and names as a patient reads them: "yesterday evening", "on 12 Dec", "yellow fever" (the patient
audience's words: below wording.py and patient/, which both say them)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo

from azaguard.display import format_day

_BEFORE_VACCINE = re.compile(r"^(.+?)(?: virus)? vaccine\b", re.IGNORECASE)


def part_of_day(hour: int) -> str:
    if 5 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


def when(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """A past or future moment relative to now, in the patient's zone: "this morning", "yesterday evening",
    "tomorrow", "on 12 Dec" (with the year when it is not this year's)."""
    zone = tz or UTC
    local, today = moment.astimezone(zone), now.astimezone(zone)
    days = (local.date() - today.date()).days
    part = part_of_day(local.hour)
    if days == 0:
        if moment > now:
            return "today"
        if now - moment < timedelta(hours=1):
            return "in the last hour"
        if part != "night":
            return f"this {part}"
        # Before 05:00 it was last night for someone who has slept since, still tonight for who has not.
        return "last night" if local.hour < 5 and today.hour >= 5 else "tonight"
    if days == -1:
        return "last night" if part == "night" else f"yesterday {part}"
    if days == 1:
        return "tomorrow"
    return "on " + day(moment, now, tz)


def day(moment: datetime, now: datetime, tz: tzinfo | None = None) -> str:
    """"12 Dec", or "12 Dec 2025" in another year."""
    zone = tz or UTC
    text = format_day(moment, zone)  # "12 Dec 2026"
    return text.rsplit(" ", 1)[0] if moment.astimezone(zone).year == now.astimezone(zone).year else text


def within(moment: datetime, now: datetime, days: int) -> bool:
    return abs(now - moment) <= timedelta(days=days)


def vaccine_name(label: str) -> str:
    """"yellow fever vaccine, live" → "yellow fever"; "measles, mumps and rubella virus vaccine" → "measles,
    mumps and rubella"; a name without the word (a brand) stays as recorded."""
    match = _BEFORE_VACCINE.match(label.strip())
    return match.group(1) if match else label.strip()
