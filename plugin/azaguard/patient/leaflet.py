"""The leaflet's standing guidance for this patient: the project's own words, with when they last had each
test (from the record; no result → "we could not find your last blood count", never "all fine")."""

from __future__ import annotations

from datetime import datetime, tzinfo

from msgspec import Struct

from azaguard import plainwords
from azaguard.patient.content import PatientContent
from azaguard.record import PatientRecord
from azaguard.wording import fill


class GuidanceSection(Struct, frozen=True, kw_only=True):
    id: str
    heading: str
    paragraphs: tuple[str, ...]
    tests: tuple[str, ...] = ()  # "Your last blood count was on 22 Oct."


def last_tests(record: PatientRecord, now: datetime, content: PatientContent, tz: tzinfo | None) -> tuple[str, ...]:
    """One line per test: its latest dated result (never one dated after now), or that none was found."""
    lines = []
    for test in content.tests.values():
        dated = [
            x.effective for a in test.analytes for x in record.measurements_of(a)
            if x.effective is not None and x.effective <= now
        ]
        if dated:
            facts = {"test": test.name, "date": plainwords.when(max(dated), now, tz)}
            line = fill(content.test_lines.found, facts, content.fallbacks)
        else:
            line = fill(content.test_lines.missing, {"test": test.name}, content.fallbacks)
        lines.append(line)
    return tuple(lines)


def guidance(record: PatientRecord, now: datetime, content: PatientContent, tz: tzinfo | None) -> list[GuidanceSection]:
    tests = last_tests(record, now, content, tz)
    return [
        GuidanceSection(id=s.id, heading=s.heading, paragraphs=s.paragraphs, tests=tests if s.shows_tests else ())
        for s in content.guidance
    ]
