"""Issue 17's findings as the clinician reads them (one wording layer): what to do, about what, and why."""

from __future__ import annotations

import pytest

from azaguard.mappings import load_mappings
from azaguard.verdict import action_of
from tests.clinical.builders import NOW, SNOMED, Resource, azathioprine, findings, immunization, observation
from tests.clinical.signs_builders import DETECTED, ICD10CM, encounter_diagnosis, lab, loinc

M = load_mappings()


def _summary(code: str, *resources: Resource) -> str:
    base = [azathioprine(), observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6),
            observation("751-8", 4.0, "10*9/L", days_ago=2), observation("6690-2", 6.0, "10*9/L", days_ago=2),
            observation("777-3", 250, "10*9/L", days_ago=2)]
    (f,) = [f for f in findings(*base, *resources) if f.code == code]
    return action_of(f, NOW, M).summary


@pytest.mark.parametrize(("code", "resources", "expected"), [
    ("warning-signs", [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat")],
     "Assess for infection before the next dose — warning sign of infection: Pain in throat, recorded yesterday "
     "12:00."),
    ("warning-sign-neutropenic", [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat"),
                                  observation("751-8", 1.2, "10*9/L", days_ago=0, hours_ago=2)],
     "Hold azathioprine — warning sign of infection (Pain in throat, yesterday 12:00) with low neutrophils; "
     "assess today."),
    ("leaflet-fever", [observation("8310-5", 37.9, "Cel", days_ago=0, hours_ago=1)],
     "Recheck the temperature — 37.9 °C today 11:00 is above the leaflet's 100 °F."),
    ("lab-proven-infection", [lab(loinc("94500-6"), value=DETECTED)],
     "Hold azathioprine — SARS-CoV-2 shown by the lab yesterday 12:00; contact the prescriber."),
    ("side-effect-reported", [encounter_diagnosis(ICD10CM, "R23.3", "Spontaneous ecchymoses")],
     "Check platelets and a full blood count — unusual bruising reported yesterday 12:00."),
    ("lipase-high", [lab(loinc("3040-3"), value=250, unit="U/L", low=13, high=60)],
     "Stop azathioprine — lipase 250 U/L yesterday 12:00, over 3× the lab's upper limit of 60; contact the "
     "prescriber."),
    ("pancreatitis-diagnosed", [encounter_diagnosis(SNOMED, "197456007", "Acute pancreatitis")],
     "Stop azathioprine — acute pancreatitis recorded yesterday 12:00; contact the prescriber."),
])
def test_summary(code: str, resources: list[Resource], expected: str) -> None:
    assert _summary(code, *resources) == expected


def test_live_vaccine_after_stop() -> None:
    (f,) = [f for f in findings(azathioprine(status="stopped", started_days_ago=400, ended_days_ago=40),
                                immunization("03", days_ago=5)) if f.code == "live-vaccine-given-after-stop"]
    action = action_of(f, NOW, M)
    assert action.summary == ("Tell the prescriber about the MMR vaccine (live) — given 27 Oct 2026, 5 days ago, "
                              "35 days after azathioprine stopped.")  # the advice does not fit the 140 characters
    assert action.advice == "watch for vaccine-strain infection"
