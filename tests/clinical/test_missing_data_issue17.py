"""Issue 17's rules never answer "ok" on data that is missing, undated, unparseable or in an unknown unit
(clinical-rules.md §7): warning signs, infection shown by the lab, pancreatitis (lipase), TPMT activity.

Each row: the issue-17 baseline patient (azathioprine, temperature 36.8 °C, neutrophils 4.0) plus one result
as a lab or an EHR may send it; the rule's headline must be cannot-evaluate, naming what is missing.
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import SNOMED, Resource, azathioprine, for_rule, observation
from tests.clinical.signs_builders import (
    DETECTED,
    cc,
    encounter_diagnosis,
    headline,
    infection,
    lab,
    loinc,
    questionnaire_response,
    symptom_observation,
    yes_no,
)
from tests.words import said


def _undated(resource: Resource, *keys: str) -> Resource:
    for key in keys:
        resource.pop(key, None)
    return resource


# --- warning signs -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("sign", [
    _undated(questionnaire_response([yes_no("sore-throat", "Sore throat?", True)]), "authored"),
    _undated(encounter_diagnosis(SNOMED, "162397003", "Pain in throat"), "recordedDate"),
    _undated(symptom_observation(cc(SNOMED, "49727002", "Cough"), value=True), "effectiveDateTime"),
], ids=["check-in", "diagnosis", "nursing observation"])
def test_an_undated_warning_sign_cannot_be_set_aside(sign: Resource) -> None:
    found = infection(sign)
    assert headline(sign) == ("cannot-evaluate", "warning-sign-undated")
    assert any("date of the warning sign" in m for m in found[0].missing)


def test_an_undated_sign_answered_no_or_resolved_says_nothing() -> None:
    no = _undated(questionnaire_response([yes_no("sore-throat", "Sore throat?", False)]), "authored")
    resolved = _undated(encounter_diagnosis(SNOMED, "162397003", "Pain in throat", clinical="resolved"),
                        "recordedDate", "onsetDateTime")
    assert headline(no) == ("ok", "no-infection-signs")
    assert headline(resolved) == ("ok", "no-infection-signs")


def test_a_sign_with_a_date_that_cannot_be_read_is_not_ok() -> None:
    sign = encounter_diagnosis(SNOMED, "162397003", "Pain in throat")
    sign["recordedDate"] = "yesterday"
    assert headline(sign)[0] == "cannot-evaluate"


# --- infection shown by the lab ------------------------------------------------------------------------------

@pytest.mark.parametrize("result", [
    _undated(lab(loinc("94500-6"), value=DETECTED), "effectiveDateTime"),  # undated
    lab(loinc("94500-6"), value="see comment"),  # a value that says neither
    lab(loinc("72493-0"), value=5000, unit="[IU]/mL"),  # a number without the lab's limit or a flag
], ids=["undated", "unparseable", "no limit"])
def test_a_pathogen_result_that_cannot_be_read_is_not_ok(result: Resource) -> None:
    assert headline(result) == ("cannot-evaluate", "lab-result-undecided")


def test_a_viral_load_whose_limit_is_in_another_unit_is_not_ok() -> None:
    result = lab(loinc("72493-0"), value=5000, unit="[IU]/mL")
    result["referenceRange"] = [{"high": {"value": 2.1, "unit": "log10 IU/mL", "code": "[log_10]"}}]
    assert headline(result) == ("cannot-evaluate", "lab-result-undecided")


# --- pancreatitis ------------------------------------------------------------------------------------------------

def _pancreatitis(*resources: Resource) -> tuple[str, str]:
    first = for_rule("pancreatitis", azathioprine(), *resources)[0]
    return str(first.status), first.code


def test_an_undated_lipase_over_the_limit_is_not_ok() -> None:
    result = _undated(lab(loinc("3040-3"), value=250, unit="U/L", high=60), "effectiveDateTime")
    assert _pancreatitis(result) == ("cannot-evaluate", "lipase-undated")


def test_an_undated_lipase_within_the_limit_is_no_alarm() -> None:
    result = _undated(lab(loinc("3040-3"), value=90, unit="U/L", high=60), "effectiveDateTime")
    assert _pancreatitis(result) == ("ok", "no-pancreatitis")


@pytest.mark.parametrize(("result", "why"), [
    (lab(loinc("3040-3"), value="haemolysed", unit="U/L", high=60), "no value"),
    (lab(loinc("3040-3"), value=250, unit="U/L"), "no upper reference limit"),
])
def test_a_lipase_that_cannot_be_judged_is_not_ok(result: Resource, why: str) -> None:
    (first,) = for_rule("pancreatitis", azathioprine(), result)
    assert (str(first.status), first.code) == ("cannot-evaluate", "lipase-unjudged") and why in said(first).detail


def test_a_lipase_whose_limit_is_in_another_unit_is_not_ok() -> None:
    result = lab(loinc("3040-3"), value=250, unit="U/L", high=60)
    result["referenceRange"][0]["high"].update({"unit": "ukat/L", "code": "ukat/L"})
    assert _pancreatitis(result) == ("cannot-evaluate", "lipase-unjudged")


# --- TPMT activity ---------------------------------------------------------------------------------------------

def _tpmt(result: Resource) -> tuple[str, str]:
    first = for_rule("tpmt", azathioprine(), result)[0]
    return str(first.status), first.code


@pytest.mark.parametrize("result", [
    lab(loinc("21563-2"), value="see report", days_ago=60),  # unparseable
    lab(loinc("21563-2"), value=15, unit="furlongs", days_ago=60),  # unknown unit, no range or flag
    lab(loinc("21563-2"), value=15, unit="U/mL", days_ago=60),  # no range, no flag
], ids=["unparseable", "unknown unit", "no range"])
def test_a_tpmt_activity_that_cannot_be_read_is_not_ok(result: Resource) -> None:
    assert _tpmt(result) == ("cannot-evaluate", "tpmt-unrecognised")


def test_a_tpmt_activity_whose_range_is_in_another_unit_is_not_ok() -> None:
    result = lab(loinc("21563-2"), value=15, unit="U/mL", low=24, high=44, days_ago=60)
    for limit in ("low", "high"):
        result["referenceRange"][0][limit].update({"unit": "nmol/h/mL", "code": "nmol/h/mL"})
    assert _tpmt(result) == ("cannot-evaluate", "tpmt-unrecognised")


def test_an_undated_side_effect_cannot_be_set_aside_on_the_rule_of_its_check() -> None:
    bruising = _undated(questionnaire_response([yes_no("bruising", "Unusual bruising?", True)]), "authored")
    counts = [observation(c, v, "10*9/L", days_ago=2) for c, v in (("6690-2", 6.0), ("751-8", 4.0), ("777-3", 250))]
    (first, *_) = for_rule("blood-counts", azathioprine(), *counts, bruising)
    assert (str(first.status), first.code) == ("cannot-evaluate", "side-effect-undated")
    assert "the date of the side effect Unusual bruising" in first.missing
    # A warning sign's rule is not its check's: infection-hold says nothing of a side effect.
    assert headline(bruising) == ("ok", "no-infection-signs")
