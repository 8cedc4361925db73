"""Dates as a patient says them, in their time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from azaguard.plainwords import vaccine_name, when
from tests.patient.conftest import LONDON

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)  # London: GMT in December


@pytest.mark.parametrize(
    ("hours", "now_hour", "words"),
    [
        (-0.5, 12, "in the last hour"),
        (-1.0, 12, "this morning"),
        (-2.0, 18, "this afternoon"),
        (-8.0, 12, "last night"),  # 04:00, seen at noon
        (-1.5, 2, "tonight"),  # 00:30, seen at 02:00: not slept yet
        (-20.0, 12, "yesterday afternoon"),
        (-26.0, 12, "yesterday morning"),
        (-40.0, 12, "on 5 Dec"),
        (30.0, 12, "tomorrow"),
        (5.0, 12, "today"),
        (24 * 30, 12, "on 6 Jan 2027"),
    ],
)
def test_when(hours: float, now_hour: int, words: str) -> None:
    now = NOW.replace(hour=now_hour)
    assert when(now + timedelta(hours=hours), now, LONDON) == words


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("yellow fever vaccine, live", "yellow fever"),
        ("measles, mumps and rubella virus vaccine", "measles, mumps and rubella"),
        ("zoster vaccine recombinant, adjuvanted", "zoster"),
        ("Stamaril", "Stamaril"),
    ],
)
def test_vaccine_name(label: str, name: str) -> None:
    assert vaccine_name(label) == name
