"""Kidney function without a reported eGFR: CKD-EPI 2021 (race-free) from creatinine, age and sex.

clinical-rules.md §8: eGFR = 142 × min(Scr/κ, 1)^α × max(Scr/κ, 1)^−1.200 × 0.9938^age × 1.012 (female);
κ 0.7 (F) / 0.9 (M); α −0.241 (F) / −0.302 (M); Scr in mg/dL; adults only. Never "within limits" for
want of a threshold on creatinine. NOW is 2026-11-01.
"""

from __future__ import annotations

import re

import pytest

from azaguard.findings import Finding
from tests.clinical.builders import Resource, azathioprine, findings_for, observation, person
from tests.words import said


def kidney(patient: Resource | None, *resources: Resource) -> list[Finding]:
    return [f for f in findings_for(patient, azathioprine(), *resources) if f.rule == "kidney"]


def creatinine(umol_l: float, unit: str = "umol/L", days_ago: float = 5) -> Resource:
    return observation("2160-0", umol_l, unit, days_ago=days_ago)


def ckd_epi_2021(scr_mg_dl: float, age: int, female: bool) -> float:
    """The published equation, written out independently of the mappings."""
    k, a = (0.7, -0.241) if female else (0.9, -0.302)
    return 142 * min(scr_mg_dl / k, 1) ** a * max(scr_mg_dl / k, 1) ** -1.2 * 0.9938**age * (1.012 if female else 1)


def estimated(found: list[Finding]) -> float:
    match = re.search(r"eGFR(?: \(CKD-EPI 2021 from creatinine\))? (\d+)", said(found[0]).summary)
    assert match, said(found[0]).summary
    return float(match.group(1))


def test_woman_aged_46_with_normal_creatinine_is_estimated_and_ok() -> None:
    found = kidney(person(gender="female", birth_date="1980-05-01"), creatinine(80))
    assert (found[0].code, found[0].status) == ("kidney-ok", "ok")
    assert "CKD-EPI 2021" in said(found[0]).summary
    assert estimated(found) == pytest.approx(ckd_epi_2021(80 / 88.4, 46, True), abs=0.5)


def test_man_aged_70_with_high_creatinine_has_a_low_estimated_egfr() -> None:
    found = kidney(person(gender="male", birth_date="1956-01-10"), creatinine(2.2, "mg/dL"))
    assert (found[0].code, found[0].status) == ("egfr-low", "caution")
    assert estimated(found) == pytest.approx(ckd_epi_2021(2.2, 70, False), abs=0.5)


def test_age_is_taken_at_the_time_of_the_result() -> None:
    # Born 1 October 1967: 58 when the creatinine was taken (2 September 2026), 59 now.
    found = kidney(person(gender="female", birth_date="1967-10-01"), creatinine(100, days_ago=60))
    assert estimated(found) == pytest.approx(ckd_epi_2021(100 / 88.4, 58, True), abs=0.5)


@pytest.mark.parametrize(
    ("situation", "patient", "why"),
    [
        ("no sex on record", person(gender=None), "sex"),
        ("sex recorded as unknown", person(gender="unknown"), "sex"),
        ("no birth date", person(birth_date=None), "birth date"),
        ("a child (CKD-EPI is for adults)", person(birth_date="2015-03-01"), "adults only"),
        ("no Patient resource at all", None, "sex"),
    ],
)
def test_without_age_and_sex_it_cannot_be_evaluated(situation: str, patient: Resource | None, why: str) -> None:
    found = kidney(patient, creatinine(80))
    assert (found[0].code, found[0].status) == ("egfr-not-computable", "cannot-evaluate"), situation
    assert why in said(found[0]).detail


def test_a_reported_egfr_is_used_as_reported() -> None:
    found = kidney(person(), creatinine(80), observation("33914-3", 45, "mL/min/{1.73_m2}", days_ago=5))
    assert found[0].code == "egfr-low" and "CKD-EPI" not in said(found[0]).summary


def test_unreadable_creatinine_is_not_estimated() -> None:
    found = kidney(person(), creatinine(80, "mmol/mol"))
    assert found[0].status == "cannot-evaluate"
    assert "egfr-not-computable" not in {f.code for f in found}
