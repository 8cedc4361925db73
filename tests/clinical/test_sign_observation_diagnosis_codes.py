"""A symptom Observation coded only in a diagnosis system (ICD-10 / ICD-10-CM, as some EHRs code a nursing
assessment), with no display the screen knows, is read like the same code on a Condition."""

from __future__ import annotations

import pytest

from tests.clinical.signs_builders import ICD10CM, WHO, cc, headline, symptom_observation


@pytest.mark.parametrize(("system", "code"), [(ICD10CM, "R68.83"), (WHO, "R61.1"), (WHO, "R05")])
def test_a_diagnosis_coded_symptom_observation_is_seen(system: str, code: str) -> None:
    status, _ = headline(symptom_observation(cc(system, code, "Befund"), value=True, days_ago=0.5))
    assert status == "caution"


def test_a_diagnosis_code_that_is_no_sign_stays_quiet() -> None:
    status, _ = headline(symptom_observation(cc(ICD10CM, "J30.1", "Befund"), value=True, days_ago=0.5))
    assert status == "ok"
