"""Blood counts, liver and kidney: clinical scenarios, each named in plain words.

Every scenario is a patient on azathioprine 50 mg twice daily (started 200 days ago)
with a full recent set of normal results, changed in the one way the scenario names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from azaguard.findings import Finding, Status
from azaguard.mappings import Threshold, load_mappings
from azaguard.rules import labs
from azaguard.rules.common import RuleFn, crosses
from tests.clinical.builders import NOW, Resource, azathioprine, observation, record_of
from tests.words import said

WBC, NEUT, LYMPH, EOS, PLT, MCV = "6690-2", "751-8", "731-0", "711-2", "777-3", "787-2"
ALT, AST, ALB, EGFR, CREAT = "1742-6", "1920-8", "1751-7", "33914-3", "2160-0"

# Normal, recent values for every analyte, in canonical units.
NORMAL: dict[str, tuple[float, str]] = {
    WBC: (6.0, "10*9/L"),
    NEUT: (3.5, "10*9/L"),
    LYMPH: (1.5, "10*9/L"),
    EOS: (0.2, "10*9/L"),
    PLT: (250, "10*9/L"),
    MCV: (90, "fL"),
    ALT: (30, "U/L"),
    AST: (28, "U/L"),
    ALB: (42, "g/L"),
    EGFR: (85, "mL/min/{1.73_m2}"),
    CREAT: (80, "umol/L"),
}


def run(fn: RuleFn, *resources: Resource, now: datetime = NOW) -> list[Finding]:
    return fn(record_of(*resources), load_mappings(), now)


def normal_labs(*, without: tuple[str, ...] = (), days_ago: float = 3) -> list[Resource]:
    return [
        observation(code, v, unit, days_ago=days_ago)
        for code, (v, unit) in NORMAL.items()
        if code not in without
    ]


def patient_with(*changed: Resource, without: tuple[str, ...] = ()) -> list[Resource]:
    """Azathioprine + normal labs, where the analytes of `changed` replace the normal ones."""
    replaced = {r["code"]["coding"][0]["code"] for r in changed}
    return [azathioprine(rid="aza"), *normal_labs(without=tuple(replaced) + without), *changed]


def codes(findings: list[Finding]) -> dict[str, Status]:
    return {f.code: f.status for f in findings}


FAMILY: dict[str, RuleFn] = {"blood-counts": labs.blood_counts, "liver": labs.liver, "kidney": labs.kidney}


# --- every row of the threshold table, on both sides of its threshold ----------------------


@dataclass(frozen=True)
class Row:
    situation: str
    loinc: str
    unit: str
    crossing: float
    within: float
    rule: str
    code: str
    status: Status


THRESHOLD_ROWS = [
    Row("WBC just below 3.5 x10^9/L", WBC, "10*9/L", 3.4, 3.5, "blood-counts", "wbc-low", Status.HOLD),
    Row(
        "neutrophils just below 1.6", NEUT, "10*9/L", 1.5, 1.6, "blood-counts", "neutrophils-low", Status.HOLD
    ),
    Row("lymphocytes below 0.5", LYMPH, "10*9/L", 0.4, 0.5, "blood-counts", "lymphocytes-low", Status.HOLD),
    Row("eosinophils above 0.5", EOS, "10*9/L", 0.6, 0.5, "blood-counts", "eosinophils-high", Status.HOLD),
    Row("platelets below 140", PLT, "10*9/L", 139, 140, "blood-counts", "platelets-low", Status.HOLD),
    Row("macrocytosis, MCV above 105 fL", MCV, "fL", 106, 105, "blood-counts", "mcv-high", Status.CAUTION),
    Row("ALT above 100 U/L", ALT, "U/L", 101, 100, "liver", "alt-high", Status.HOLD),
    Row("AST above 100 U/L", AST, "U/L", 101, 100, "liver", "ast-high", Status.HOLD),
    Row("unexplained albumin below 30 g/L", ALB, "g/L", 29, 30, "liver", "albumin-low", Status.CAUTION),
    Row("eGFR below 60", EGFR, "mL/min/{1.73_m2}", 59, 60, "kidney", "egfr-low", Status.CAUTION),
]


@pytest.mark.parametrize("row", THRESHOLD_ROWS, ids=[r.situation for r in THRESHOLD_ROWS])
def test_threshold_crossed(row: Row) -> None:
    found = run(FAMILY[row.rule], *patient_with(observation(row.loinc, row.crossing, row.unit, rid="x")))
    assert codes(found) == {row.code: row.status}
    f = found[0]
    assert f.implicated == ("MedicationRequest/aza",)
    assert [e.reference for e in f.evidence] == ["Observation/x"]
    assert "Source: BSR 2017 monitoring guideline" in said(f).detail or "Commonly cited" in said(f).detail


@pytest.mark.parametrize("row", THRESHOLD_ROWS, ids=[r.situation for r in THRESHOLD_ROWS])
def test_threshold_not_crossed_at_the_limit(row: Row) -> None:
    found = run(FAMILY[row.rule], *patient_with(observation(row.loinc, row.within, row.unit)))
    assert codes(found) == {f"{row.rule}-ok": Status.OK}


def test_threshold_finding_carries_severity_and_action_from_mappings() -> None:
    mcv = run(labs.blood_counts, *patient_with(observation(MCV, 110, "fL")))[0]
    assert (mcv.status, mcv.severity) == ("caution", "moderate")
    assert "B12" in said(mcv).detail
    lymph = run(labs.blood_counts, *patient_with(observation(LYMPH, 0.3, "10*9/L")))[0]
    assert "UNVERIFIED" in said(lymph).detail
    neut = run(labs.blood_counts, *patient_with(observation(NEUT, 1.0, "10*9/L")))[0]
    assert (neut.status, neut.severity) == ("hold", "high")
    assert "2.0" in said(neut).detail  # the alternative threshold is named


# --- units ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitCase:
    situation: str
    resource: Resource
    expected: dict[str, Status]


def _wbc(value: float | None, unit: str | None, **kw: Any) -> Resource:
    return observation(WBC, value, unit, rid="wbc", **kw)


UNIT_CASES = [
    UnitCase("low WBC reported in 10*3/uL", _wbc(3.0, "10*3/uL"), {"wbc-low": Status.HOLD}),
    UnitCase("low WBC reported in 10*9/L", _wbc(3.0, "10*9/L"), {"wbc-low": Status.HOLD}),
    UnitCase("low WBC reported per microlitre (/uL)", _wbc(3000, "/uL"), {"wbc-low": Status.HOLD}),
    UnitCase("normal WBC reported per microlitre (/uL)", _wbc(4000, "/uL"), {"blood-counts-ok": Status.OK}),
    UnitCase("low WBC reported in {cells}/uL", _wbc(3000, "{cells}/uL"), {"wbc-low": Status.HOLD}),
    UnitCase("low WBC with the lab alias K/uL", _wbc(3.0, "K/uL"), {"wbc-low": Status.HOLD}),
    UnitCase("normal WBC with the lab alias K/uL", _wbc(7.1, "K/uL"), {"blood-counts-ok": Status.OK}),
    UnitCase("WBC in an unknown unit", _wbc(3.0, "giga/L"), {"wbc-unreadable": Status.CANNOT_EVALUATE}),
    UnitCase(
        "WBC in a unit of another dimension", _wbc(6.0, "g/L"), {"wbc-unreadable": Status.CANNOT_EVALUATE}
    ),
    UnitCase(
        "WBC with only a text unit that is an alias",
        _wbc(3.0, None, unit_text="K/uL"),
        {"wbc-low": Status.HOLD},
    ),
    UnitCase(
        "WBC with only free text as its unit",
        _wbc(6.0, None, unit_text="thousand per microlitre"),
        {"wbc-unreadable": Status.CANNOT_EVALUATE},
    ),
    UnitCase("WBC with no unit at all", _wbc(6.0, None), {"wbc-unreadable": Status.CANNOT_EVALUATE}),
    UnitCase("WBC with no value", _wbc(None, "10*9/L"), {"wbc-unreadable": Status.CANNOT_EVALUATE}),
    UnitCase("low platelets per microlitre", observation(PLT, 139000, "/uL"), {"platelets-low": Status.HOLD}),
]


@pytest.mark.parametrize("case", UNIT_CASES, ids=[c.situation for c in UNIT_CASES])
def test_blood_count_units(case: UnitCase) -> None:
    found = run(labs.blood_counts, *patient_with(case.resource))
    assert codes(found) == case.expected
    if "wbc-unreadable" in case.expected:
        assert "Observation/wbc" in [e.reference for e in found[0].evidence]  # linked from the evidence
        assert "Observation/" not in said(found[0]).detail
        assert "Observation/" not in said(found[0]).summary
        assert found[0].missing


def test_low_albumin_in_g_per_dl_is_converted() -> None:
    found = run(labs.liver, *patient_with(observation(ALB, 2.9, "g/dL", rid="alb")))
    assert codes(found) == {"albumin-low": Status.CAUTION}
    assert found[0].evidence[0].value == "2.9 g/dL"
    assert found[0].evidence[0].normalised == "29 g/L"


def test_high_alt_in_international_units() -> None:
    found = run(labs.liver, *patient_with(observation(ALT, 150, "[IU]/L")))
    assert codes(found) == {"alt-high": Status.HOLD}


# --- comparators -----------------------------------------------------------------------------

COMPARATORS = [
    (
        "WBC '<1.0' is certainly below 3.5",
        observation(WBC, 1.0, "10*9/L", comparator="<"),
        {"wbc-low": Status.HOLD},
    ),
    (
        "WBC '>3' might be below 3.5",
        observation(WBC, 3, "10*9/L", comparator=">"),
        {"wbc-undecidable": Status.CANNOT_EVALUATE},
    ),
    (
        "WBC '>5' is certainly above 3.5",
        observation(WBC, 5, "10*9/L", comparator=">"),
        {"blood-counts-ok": Status.OK},
    ),
    (
        "ALT '<200' might be above 100",
        observation(ALT, 200, "U/L", comparator="<"),
        {"alt-undecidable": Status.CANNOT_EVALUATE},
    ),
    (
        "ALT '<50' is certainly within 100",
        observation(ALT, 50, "U/L", comparator="<"),
        {"liver-ok": Status.OK},
    ),
    (
        "ALT '>150' is certainly above 100",
        observation(ALT, 150, "U/L", comparator=">"),
        {"alt-high": Status.HOLD},
    ),
]


@pytest.mark.parametrize(("situation", "resource", "expected"), COMPARATORS, ids=[c[0] for c in COMPARATORS])
def test_comparators_decide_only_when_they_can(
    situation: str, resource: Resource, expected: dict[str, Status]
) -> None:
    rule = labs.liver if resource["code"]["coding"][0]["code"] == ALT else labs.blood_counts
    assert codes(run(rule, *patient_with(resource))) == expected


@pytest.mark.parametrize(
    ("direction", "value", "comparator", "expected"),
    [
        ("below", 3.0, None, True),
        ("below", 3.5, None, False),
        ("below", 3.5, "<", True),
        ("below", 3.6, "<", None),
        ("below", 3.4, "<=", True),
        ("below", 3.5, "<=", None),
        ("below", 3.5, ">", False),
        ("below", 3.4, ">", None),
        ("below", 3.5, ">=", False),
        ("below", 3.4, ">=", None),
        ("above", 100, ">", True),
        ("above", 99, ">", None),
        ("above", 101, ">=", True),
        ("above", 100, ">=", None),
        ("above", 100, "<", False),
        ("above", 101, "<", None),
        ("above", 100, "<=", False),
        ("above", 101, "<=", None),
        ("below", 1.0, "ad", None),
    ],
)
def test_crosses_truth_table(
    direction: str, value: float, comparator: str | None, expected: bool | None
) -> None:
    limit = 3.5 if direction == "below" else 100
    threshold = Threshold(direction=direction, value=limit, source="test")  # type: ignore[arg-type]
    assert crosses(value, comparator, threshold) is expected


# --- stale, preliminary, entered-in-error, undated --------------------------------------------


def test_stale_wbc_cannot_clear_the_threshold() -> None:
    found = run(labs.blood_counts, *patient_with(observation(WBC, 6.0, "10*9/L", days_ago=100)))
    assert codes(found) == {"wbc-stale": Status.CANNOT_EVALUATE}
    assert "WBC" in said(found[0]).summary and "24 Jul 2026" in said(found[0]).detail


def test_wbc_just_within_the_age_limit_is_used() -> None:
    found = run(labs.blood_counts, *patient_with(observation(WBC, 6.0, "10*9/L", days_ago=91)))
    assert codes(found) == {"blood-counts-ok": Status.OK}


def test_newest_result_decides_even_when_an_older_one_was_low() -> None:
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(WBC, 2.0, "10*9/L", days_ago=40), observation(WBC, 5.0, "10*9/L", days_ago=2)
        ),
    )
    assert codes(found) == {"blood-counts-ok": Status.OK}


def test_preliminary_low_result_is_used_and_said_so() -> None:
    found = run(labs.blood_counts, *patient_with(observation(WBC, 3.0, "10*9/L", status="preliminary")))
    assert codes(found) == {"wbc-low": Status.HOLD}
    assert "preliminary" in said(found[0]).summary
    assert "preliminary" in found[0].evidence[0].description


def test_preliminary_normal_result_is_used_and_said_so() -> None:
    found = run(labs.blood_counts, *patient_with(observation(WBC, 6.0, "10*9/L", status="preliminary")))
    assert codes(found) == {"blood-counts-ok": Status.OK}
    assert "preliminary" in said(found[0]).detail


def test_low_result_entered_in_error_is_ignored() -> None:
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(WBC, 6.0, "10*9/L", days_ago=3),
            observation(WBC, 1.0, "10*9/L", days_ago=1, status="entered-in-error"),
        ),
    )
    assert codes(found) == {"blood-counts-ok": Status.OK}


def test_only_wbc_entered_in_error_means_wbc_missing() -> None:
    found = run(labs.blood_counts, *patient_with(observation(WBC, 6.0, "10*9/L", status="entered-in-error")))
    assert codes(found) == {"wbc-missing": Status.CANNOT_EVALUATE}


def test_undated_result_cannot_be_judged_current() -> None:
    undated = observation(WBC, 6.0, "10*9/L")
    del undated["effectiveDateTime"]
    assert codes(run(labs.blood_counts, *patient_with(undated))) == {"wbc-undated": Status.CANNOT_EVALUATE}


# --- trends -------------------------------------------------------------------------------------


def test_wbc_falling_over_30_percent_in_three_results() -> None:
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(WBC, 9.0, "10*9/L", days_ago=60),
            observation(WBC, 7.0, "10*9/L", days_ago=30),
            observation(WBC, 5.0, "10*9/L", days_ago=2),
        ),
    )
    assert codes(found) == {"wbc-falling": Status.CAUTION}
    assert found[0].severity == "moderate"
    assert len(found[0].evidence) == 3
    assert "44 %" in said(found[0]).detail


def test_wbc_drifting_down_under_30_percent_is_not_a_trend() -> None:
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(WBC, 9.0, "10*9/L", days_ago=60),
            observation(WBC, 8.0, "10*9/L", days_ago=30),
            observation(WBC, 7.0, "10*9/L", days_ago=2),
        ),
    )
    assert codes(found) == {"blood-counts-ok": Status.OK}


def test_trend_uses_only_the_last_three_results() -> None:
    # A high value four results ago must not make the recent stable counts look like a fall.
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(WBC, 15.0, "10*9/L", days_ago=90),
            observation(WBC, 7.0, "10*9/L", days_ago=60),
            observation(WBC, 6.8, "10*9/L", days_ago=30),
            observation(WBC, 6.5, "10*9/L", days_ago=2),
        ),
    )
    assert codes(found) == {"blood-counts-ok": Status.OK}


def test_falling_platelets_that_cross_the_threshold_give_both_findings() -> None:
    found = run(
        labs.blood_counts,
        *patient_with(
            observation(PLT, 300, "10*9/L", days_ago=60),
            observation(PLT, 200, "10*9/L", days_ago=30),
            observation(PLT, 130, "10*9/L", days_ago=2),
        ),
    )
    assert codes(found) == {"platelets-low": Status.HOLD, "platelets-falling": Status.CAUTION}


def test_creatinine_rise_over_30_percent_within_a_year() -> None:
    found = run(
        labs.kidney,
        *patient_with(
            observation(CREAT, 80, "umol/L", days_ago=300), observation(CREAT, 110, "umol/L", days_ago=2)
        ),
    )
    assert codes(found) == {"creatinine-rising": Status.CAUTION}


def test_creatinine_rise_in_mg_per_dl() -> None:
    found = run(
        labs.kidney,
        *patient_with(
            observation(CREAT, 0.9, "mg/dL", days_ago=200), observation(CREAT, 1.3, "mg/dL", days_ago=2)
        ),
    )
    assert codes(found) == {"creatinine-rising": Status.CAUTION}


def test_creatinine_rise_under_30_percent_is_ok() -> None:
    found = run(
        labs.kidney,
        *patient_with(
            observation(CREAT, 80, "umol/L", days_ago=300), observation(CREAT, 100, "umol/L", days_ago=2)
        ),
    )
    assert codes(found) == {"kidney-ok": Status.OK}


def test_creatinine_baseline_older_than_a_year_is_not_compared() -> None:
    found = run(
        labs.kidney,
        *patient_with(
            observation(CREAT, 60, "umol/L", days_ago=400), observation(CREAT, 100, "umol/L", days_ago=2)
        ),
    )
    assert codes(found) == {"kidney-ok": Status.OK}


# --- missing analytes -------------------------------------------------------------------------


def test_missing_neutrophils_cannot_be_cleared() -> None:
    found = run(labs.blood_counts, *patient_with(without=(NEUT,)))
    assert codes(found) == {"neutrophils-missing": Status.CANNOT_EVALUATE}
    assert found[0].missing == ("Neutrophils result",)


def test_no_results_at_all_names_every_core_analyte() -> None:
    found = run(labs.blood_counts, azathioprine())
    assert codes(found) == {
        c: Status.CANNOT_EVALUATE for c in ("wbc-missing", "neutrophils-missing", "platelets-missing")
    }


def test_missing_optional_analytes_are_listed_not_blocking() -> None:
    found = run(labs.blood_counts, *patient_with(without=(LYMPH, EOS, MCV)))
    assert codes(found) == {"blood-counts-ok": Status.OK}
    assert "Not on file (optional): Lymphocytes, Eosinophils, MCV" in said(found[0]).detail


def test_missing_alt_for_liver() -> None:
    assert codes(run(labs.liver, *patient_with(without=(ALT,)))) == {"alt-missing": Status.CANNOT_EVALUATE}


def test_kidney_with_creatinine_but_no_egfr_is_evaluable() -> None:
    found = run(labs.kidney, *patient_with(without=(EGFR,)))
    assert codes(found) == {"kidney-ok": Status.OK}
    assert "eGFR" in said(found[0]).detail


def test_kidney_with_neither_egfr_nor_creatinine() -> None:
    found = run(labs.kidney, *patient_with(without=(EGFR, CREAT)))
    assert codes(found) == {"egfr-or-creatinine-missing": Status.CANNOT_EVALUATE}


def test_ok_rests_on_positive_evidence_for_each_checked_result() -> None:
    found = run(labs.blood_counts, *patient_with())
    assert codes(found) == {"blood-counts-ok": Status.OK}
    described = {e.description for e in found[0].evidence}
    assert {"WBC", "Neutrophils", "Platelets", "Lymphocytes", "Eosinophils", "MCV"} <= described
    assert all(e.value and e.normalised and e.date for e in found[0].evidence)
    assert found[0].implicated == ("MedicationRequest/aza",)


# --- applicability and unreadable resources -----------------------------------------------------


@pytest.mark.parametrize("family", sorted(FAMILY))
def test_not_applicable_when_not_on_azathioprine(family: str) -> None:
    found = run(FAMILY[family], *normal_labs())
    assert codes(found) == {"not-on-azathioprine": Status.NOT_APPLICABLE}


def test_not_applicable_when_azathioprine_was_stopped() -> None:
    found = run(
        labs.blood_counts, azathioprine(status="stopped", ended_days_ago=20), observation(WBC, 2.0, "10*9/L")
    )
    assert codes(found) == {"not-current": Status.NOT_APPLICABLE}


def test_unreadable_wbc_observation_makes_blood_counts_cannot_evaluate() -> None:
    broken = observation(WBC, 6.0, "10*9/L", rid="broken")
    broken["valueQuantity"]["value"] = "six"  # fails validation: not a decimal
    found = run(labs.blood_counts, *patient_with(), broken)
    assert codes(found) == {"observation-unreadable": Status.CANNOT_EVALUATE}
    assert found[0].evidence[0].reference == "Observation/broken"
    # ...but it does not concern the liver.
    assert codes(run(labs.liver, *patient_with(), broken)) == {"liver-ok": Status.OK}
