"""Infection proven by the laboratory before anyone codes a diagnosis (clinical-rules.md §9).

Each scenario: azathioprine 50 mg twice daily, temperature 36.8 °C six hours ago, neutrophils 4.0 two days ago,
and one or more lab results as labs send them (LOINC codes in common use, lab-local codes, values coded, as
text, as numbers against the lab's own limit).
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import SNOMED, Resource
from tests.clinical.signs_builders import (
    DETECTED,
    NEGATIVE,
    NOT_DETECTED,
    POSITIVE,
    cc,
    headline,
    infection,
    lab,
    local,
    loinc,
)
from tests.words import said

HBV = loinc("42595-9", "Hepatitis B virus DNA [Units/volume] (viral load) in Serum or Plasma by NAA")
IU = "[IU]/mL"


@pytest.mark.parametrize(("days_ago", "expected"), [
    (13.9, "hold"), (14.0, "hold"), (14.1, "ok"),  # the 14-day window, inclusive
])
def test_window(days_ago: float, expected: str) -> None:
    assert headline(lab(loinc("94500-6"), value=DETECTED, days_ago=days_ago))[0] == expected


@pytest.mark.parametrize(("value", "expected"), [
    (DETECTED, "hold"), (POSITIVE, "hold"), ((SNOMED, "11214006", "Reactive"), "hold"),
    (NOT_DETECTED, "ok"), (NEGATIVE, "ok"),
    ((SNOMED, "82334004", "Indeterminate"), "cannot-evaluate"),
    ("Detected", "hold"), ("NOT DETECTED", "ok"), ("Target not detected", "ok"), ("Inconclusive", "cannot-evaluate"),
])
def test_value_coded_or_as_text(value: object, expected: str) -> None:
    assert headline(lab(loinc("92142-9"), value=value))[0] == expected


@pytest.mark.parametrize(("flag", "expected"), [
    ("POS", "hold"), ("DET", "hold"), ("A", "hold"), ("H", "hold"), ("NEG", "ok"), ("N", "ok"),
    ("IND", "cannot-evaluate"),
])
def test_interpretation_flags(flag: str, expected: str) -> None:
    assert headline(lab(loinc("72493-0"), value=400, unit=IU, interpretation=flag))[0] == expected


@pytest.mark.parametrize(("value", "comparator", "high", "expected"), [
    (136, None, 137, "ok"), (137, None, 137, "ok"), (138, None, 137, "hold"),  # against the lab's own limit
    (137, "<", None, "ok"),  # "<137": below the limit
    (0, None, None, "ok"),
    (2400, None, None, "cannot-evaluate"),  # a number without the lab's limit or a flag: cannot tell
])
def test_viral_load_against_the_labs_limit(value: float, comparator: str | None, high: float | None,
                                           expected: str) -> None:
    result = lab(loinc("72493-0"), value=value, unit=IU, comparator=comparator, high=high)
    assert headline(result)[0] == expected


def test_a_limit_written_only_as_text() -> None:
    assert headline(lab(loinc("72493-0"), value=400, unit=IU, range_text="<137 IU/mL"))[0] == "hold"


def test_the_newest_result_decides() -> None:
    earlier = lab(loinc("94500-6"), value=DETECTED, days_ago=6)
    later = lab(loinc("94500-6"), value=NOT_DETECTED, days_ago=1)
    assert headline(earlier, later)[0] == "ok"
    assert headline(lab(loinc("94500-6"), value=NOT_DETECTED, days_ago=6),
                    lab(loinc("94500-6"), value=DETECTED, days_ago=1))[0] == "hold"


# --- recognised by analyte, never by antibody --------------------------------------------------------------

@pytest.mark.parametrize("code", [
    loinc("94309-2"), loinc("94534-5"), local("COVPCR", "SARS-CoV-2 RNA PCR, nasopharyngeal"),
    local("C19AG", "COVID-19 antigen rapid test"),
    cc(None, None, text="SARS-CoV-2 PCR"),
])
def test_sars_cov_2_under_codes_labs_use(code: Resource) -> None:
    assert headline(lab(code, value=DETECTED)) == ("hold", "lab-proven-infection")


@pytest.mark.parametrize("code", [
    local("CMVG", "CMV IgG antibody"), local("COVAB", "SARS-CoV-2 Ab [Presence] in Serum"),
    local("HBSAB", "Hepatitis B surface antibody"), local("FLUVAC", "Influenza vaccine given"),
])
def test_antibodies_and_vaccines_are_not_proof(code: Resource) -> None:
    assert headline(lab(code, value=POSITIVE))[0] == "ok"


def test_a_culture_that_grew_an_organism_named_only_as_text() -> None:
    culture = lab(loinc("630-4", "Bacteria identified in Urine by Culture"), value=">100,000 CFU/mL Escherichia coli")
    assert headline(culture)[0] == "hold"


def test_the_alert_names_the_pathogen_the_result_and_how_it_was_recognised() -> None:
    found = infection(lab(local("CMVQNT", "CMV DNA PCR Quant"), value=5000, unit=IU, interpretation="A"))
    (f,) = [f for f in found if f.code == "lab-proven-infection"]
    assert said(f).summary == "Hold azathioprine — CMV shown by the lab 31 Oct 2026 12:00; contact the prescriber."
    assert "CMV" in said(f).detail and "Consider holding azathioprine; contact the prescriber" in said(f).detail
    assert "recognised by name 'cmv' (CMV DNA PCR Quant)" in f.evidence[0].description


# --- hepatitis B: detected is a caution, a rise is reactivation ------------------------------------------------

@pytest.mark.parametrize(("before", "now", "expected"), [
    (30, 300, ("hold", "hbv-reactivation")),  # exactly 1 log10
    (30, 299, ("caution", "viraemia")),
    (30, 31, ("caution", "viraemia")),
])
def test_hbv_rise(before: float, now: float, expected: tuple[str, str]) -> None:
    assert headline(lab(HBV, value=before, unit=IU, interpretation="H", days_ago=90),
                    lab(HBV, value=now, unit=IU, interpretation="H", days_ago=2)) == expected


def test_hbv_detected_after_undetectable_is_reactivation() -> None:
    found = infection(lab(HBV, value=10, unit=IU, comparator="<", days_ago=120),
                      lab(HBV, value=85, unit=IU, interpretation="H", days_ago=2))
    assert found[0].code == "hbv-reactivation" and "refer to hepatology" in said(found[0]).summary


def test_hbv_baseline_older_than_a_year_is_not_a_baseline() -> None:
    assert headline(lab(HBV, value=30, unit=IU, interpretation="H", days_ago=400),
                    lab(HBV, value=48000, unit=IU, interpretation="H", days_ago=2)) == ("caution", "viraemia")


def test_hcv_rna_detected_is_a_caution() -> None:
    assert headline(lab(loinc("11011-4"), value=250000, unit=IU, interpretation="H")) == ("caution", "viraemia")
