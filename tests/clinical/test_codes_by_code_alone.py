"""Results that carry only a code — no display, no text — as many interfaces send them (issue 17).

TPMT enzyme activity under its LOINC codes (21563-2 per volume, 43421-7 per mass of RBC), primary-care labs
under their SNOMED CT codes (international and UK edition: MCV, eosinophils, albumin, eGFR), and the codes the
verification corrected (influenza antigen 80382-5, RSV RNA 85479-4; 25458004 is acute gastritis, not
pancreatitis). Every scenario: a patient on azathioprine; the rule's first finding is what a clinician sees.
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import SNOMED, Resource, azathioprine, for_rule, observation
from tests.clinical.signs_builders import DETECTED, cc, encounter_diagnosis, headline, lab, loinc


def first(rule_id: str, *resources: Resource) -> str:
    return for_rule(rule_id, azathioprine(), *resources)[0].code


def code_only(system: str, code: str) -> Resource:
    return cc(system, code)  # no display, no text


# --- TPMT activity by LOINC code alone -----------------------------------------------------------------------

@pytest.mark.parametrize("code", ["21563-2", "43421-7"])
@pytest.mark.parametrize(("value", "flag", "expected"), [
    (15.0, None, "tpmt-intermediate"), (15.1, None, "tpmt-normal"), (3.0, "LL", "tpmt-poor"),
])
def test_tpmt_activity_by_its_loinc_code_alone(code: str, value: float, flag: str | None, expected: str) -> None:
    result = lab(loinc(code), value=value, unit="U/mL", low=15.1, high=26.4, interpretation=flag, days_ago=60)
    assert first("tpmt", result) == expected


def test_tpmt_activity_by_code_without_range_or_flag_names_the_result() -> None:
    found = for_rule("tpmt", azathioprine(), lab(loinc("21563-2"), value=12, unit="U/mL", days_ago=60, rid="t9"))
    (f,) = [f for f in found if f.code == "tpmt-unrecognised"]
    assert "Observation/t9" in [e.reference for e in f.evidence]


# --- SNOMED CT lab codes (international and UK edition) ------------------------------------------------------

def _cbc() -> list[Resource]:
    return [observation(c, v, "10*9/L", days_ago=2) for c, v in (("6690-2", 6.0), ("751-8", 4.0), ("777-3", 250))]


@pytest.mark.parametrize("code", ["104133003", "1022491000000106"])
def test_mcv_by_snomed_code_alone(code: str) -> None:
    assert first("blood-counts", *_cbc(), lab(code_only(SNOMED, code), value=110, unit="fL", days_ago=1)) == (
        "mcv-high")


@pytest.mark.parametrize("code", ["71960002", "1022561000000101"])
def test_eosinophils_by_snomed_code_alone(code: str) -> None:
    assert first("blood-counts", *_cbc(), lab(code_only(SNOMED, code), value=0.9, unit="10*9/L", days_ago=1)) == (
        "eosinophils-high")


def test_albumin_by_uk_snomed_code_alone() -> None:
    lft = [observation("1742-6", 30, "U/L", days_ago=2)]
    result = lab(code_only(SNOMED, "1000821000000103"), value=25, unit="g/L", days_ago=1)
    assert first("liver", *lft, result) == "albumin-low"


@pytest.mark.parametrize("code", ["1011481000000105", "1020291000000106", "80274001"])
def test_egfr_by_snomed_code_alone(code: str) -> None:
    creatinine = observation("2160-0", 1.6, "mg/dL", days_ago=1)
    result = lab(code_only(SNOMED, code), value=45, unit="mL/min/{1.73_m2}", days_ago=1)
    assert first("kidney", creatinine, result) == "egfr-low"


# --- codes the verification corrected --------------------------------------------------------------------------

@pytest.mark.parametrize(("code", "expected"), [
    ("80382-5", "lab-proven-infection"), ("80383-3", "lab-proven-infection"), ("85479-4", "lab-proven-infection"),
    ("85477-8", "lab-proven-infection"), ("72493-0", "lab-proven-infection"),
])
def test_corrected_pathogen_codes_by_code_alone(code: str, expected: str) -> None:
    assert headline(lab(loinc(code), value=DETECTED, days_ago=1)) == ("hold", expected)


def test_a_code_with_a_wrong_check_digit_is_not_read_as_a_pathogen() -> None:
    assert headline(lab(loinc("80382-3"), value=DETECTED, days_ago=1)) == ("ok", "no-infection-signs")


def test_acute_gastritis_is_not_pancreatitis() -> None:
    gastritis = encounter_diagnosis(SNOMED, "25458004", "Acute gastritis")
    assert str(for_rule("pancreatitis", azathioprine(), gastritis)[0].status) == "ok"
