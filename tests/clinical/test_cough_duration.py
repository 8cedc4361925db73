"""'A cough lasting more than two days' (the leaflets; clinical-rules.md §9), read as the EHR records it.

A cough counts as a warning sign once it has lasted more than 2 days: from its onset (a Condition's
onsetDateTime/onsetPeriod, an Observation's effectivePeriod) to its end, or to now while it has not ended; or by
a length stated as the Observation's value or a questionnaire answer. A cough of 2 days or less is not the
leaflet's sign and says nothing (no finding: the leaflet draws the line; an open Condition's span grows each day,
so the next check sees it once it is longer). A cough whose length is not recorded, or cannot be read, counts —
it cannot be shown to be short — and the evidence says so.

Every scenario: the issue-17 baseline patient (azathioprine, temperature 36.8 °C, neutrophils 4.0).
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.clinical.builders import NOW, SNOMED, UCUM, Resource, when
from tests.clinical.signs_builders import (
    WHO,
    cc,
    encounter_diagnosis,
    headline,
    infection,
    questionnaire_response,
    symptom_observation,
)

COUGH = cc(SNOMED, "49727002", "Cough")
SIGN = ("caution", "warning-signs")
NONE = ("ok", "no-infection-signs")


def cough_since(hours_ago: float, *, ended_hours_ago: float | None = None) -> Resource:
    """A problem-list cough whose onset was `hours_ago` (recorded today), open or ended."""
    r = encounter_diagnosis(SNOMED, "49727002", "Cough", clinical="active", days_ago=0)
    if ended_hours_ago is None:
        r["onsetDateTime"] = when(hours_ago=hours_ago)
    else:
        del r["onsetDateTime"]
        r["onsetPeriod"] = {"start": when(hours_ago=hours_ago), "end": when(hours_ago=ended_hours_ago)}
    return r


def cough_value(value: float, unit: str) -> Resource:
    r = symptom_observation(COUGH, days_ago=0.1)
    r["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return r


def cough_checkin(length: Resource) -> Resource:
    """A check-in: 'Cough?' yes, and nested under it how long (an answer dict)."""
    return questionnaire_response([{
        "linkId": "cough", "text": "Cough?",
        "answer": [{"valueBoolean": True, "item": [{**length, "answer": length["answer"]}]}],
    }], days_ago=0.1)


# --- the onset: 2 days exact, one hour each side -----------------------------------------------------------

@pytest.mark.parametrize(("hours", "expected"), [(47, NONE), (48, NONE), (49, SIGN)])
def test_open_cough_counts_once_it_has_lasted_more_than_two_days(hours: float, expected: tuple[str, str]) -> None:
    assert headline(cough_since(hours)) == expected


def test_an_open_cough_becomes_the_sign_as_the_days_pass() -> None:
    cough = cough_since(24)
    assert headline(cough) == NONE
    assert headline(cough, now=NOW + timedelta(days=1, hours=1)) == SIGN


@pytest.mark.parametrize(("start", "end", "expected"), [(96, 48, NONE), (96, 47, SIGN), (100, 96, NONE)])
def test_an_onset_period_with_an_end(start: float, end: float, expected: tuple[str, str]) -> None:
    assert headline(cough_since(start, ended_hours_ago=end)) == expected


def test_an_observation_over_a_period() -> None:
    r = symptom_observation(COUGH, days_ago=0)
    del r["effectiveDateTime"]
    r["effectivePeriod"] = {"start": when(days_ago=3)}
    assert headline(r) == SIGN
    r["effectivePeriod"] = {"start": when(days_ago=3), "end": when(days_ago=1.5)}
    assert headline(r) == NONE


# --- a stated length: the Observation's value, a questionnaire answer ------------------------------------------

@pytest.mark.parametrize(("value", "unit", "expected"), [
    (2, "d", NONE), (3, "d", SIGN), (1, "d", NONE), (2.1, "d", SIGN),
    (47, "h", NONE), (48, "h", NONE), (49, "h", SIGN), (1, "wk", SIGN),
])
def test_a_length_as_the_observation_value(value: float, unit: str, expected: tuple[str, str]) -> None:
    assert headline(cough_value(value, unit)) == expected


@pytest.mark.parametrize(("days", "expected"), [(1, NONE), (2, NONE), (3, SIGN)])
def test_a_length_nested_under_the_checkin_answer(days: int, expected: tuple[str, str]) -> None:
    length = {"linkId": "cough-days", "text": "For how many days?", "answer": [{"valueInteger": days}]}
    assert headline(cough_checkin(length)) == expected


def test_a_length_answered_as_a_quantity() -> None:
    length = {"linkId": "cough-length", "text": "How long?",
              "answer": [{"valueQuantity": {"value": 60, "unit": "hours", "system": UCUM, "code": "h"}}]}
    assert headline(cough_checkin(length)) == SIGN
    answered = questionnaire_response([{"linkId": "cough", "text": "Cough: for how long?",
                                        "answer": [{"valueQuantity": {"value": 1, "unit": "day"}}]}], days_ago=0.1)
    assert headline(answered) == NONE


def test_the_evidence_says_how_long() -> None:
    found = infection(cough_value(3, "d"))[0]
    assert "lasted 3 days (value 3 d): more than 2 days" in found.evidence[0].description


# --- missing or unreadable length: counts (safety first), and says so -------------------------------------------

def test_a_cough_without_a_recorded_length_counts_and_says_so() -> None:
    found = infection(encounter_diagnosis(WHO, "R05", "Cough"))[0]
    assert (str(found.status), found.code) == SIGN
    assert "its length is not recorded: counted, as it may have lasted more than 2 days" in (
        found.evidence[0].description)


def test_a_length_that_cannot_be_read_counts_and_says_so() -> None:
    found = infection(cough_value(3, "{episodes}"))[0]
    assert (str(found.status), found.code) == SIGN
    assert "its length (value 3 {episodes}) cannot be read: counted" in found.evidence[0].description


def test_a_nested_length_in_an_unknown_unit_counts() -> None:
    length = {"linkId": "cough-length", "text": "How long?",
              "answer": [{"valueQuantity": {"value": 1, "unit": "fortnight"}}]}
    assert headline(cough_checkin(length)) == SIGN


def test_the_length_applies_to_the_cough_only() -> None:
    throat = encounter_diagnosis(SNOMED, "162397003", "Pain in throat", clinical="active", days_ago=0)
    throat["onsetDateTime"] = when(hours_ago=3)
    assert headline(throat) == SIGN
