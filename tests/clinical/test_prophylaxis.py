"""Prophylaxis is not infection (clinical-rules.md §9): the reason, the regimen (through the dosage module) and
the drug decide. Recognised prophylaxis -> caution "prophylaxis: confirm there is no active infection";
treatment or doubt -> hold as before. Regimen limits at the boundary and one step above."""

from __future__ import annotations

from typing import Any

import pytest

from tests.clinical.test_medicines_independent_pass import (
    ICD10CM,
    RX,
    aza,
    dosage,
    other,
    reason,
    run,
    temp,
    transaction,
)
from tests.clinical.test_medicines_independent_pass import Case as _Case
from tests.words import said

Resource = dict[str, Any]


def infection_statuses(*resources: Resource) -> dict[str, str]:
    result = run(_Case("x", lambda: transaction(aza(), *resources, temp(36.8)), "infection-hold", "ok"))
    return {f.code: str(f.status) for f in result.findings if f.rule == "infection-hold"}


VALGAN = "valganciclovir 450 MG Oral Tablet"


@pytest.mark.parametrize(("mg", "per_day", "expected"), [
    (900, 1, "caution"),  # CMV prophylaxis: 900 mg once daily
    (450, 1, "caution"),  # renal dose
    (900, 2, "hold"),  # treatment: twice daily
    (1350, 1, "hold"),  # above 900 mg/day
])
def test_valganciclovir_regimen_without_a_reason(mg: float, per_day: int, expected: str) -> None:
    found = infection_statuses(other(VALGAN, "275891", RX, dosage(mg, per_day=per_day)))
    assert expected in found.values() and not ({"hold", "caution"} - {expected}) & set(found.values()), found


@pytest.mark.parametrize(("mg", "expected"), [(100, "caution"), (150, "hold")])
def test_nitrofurantoin_at_night_up_to_100_mg(mg: float, expected: str) -> None:
    found = infection_statuses(other("Nitrofurantoin 50 mg capsules", None, RX, dosage(mg, repeat={"when": ["HS"]})))
    assert set(found.values()) == {expected}, found


@pytest.mark.parametrize(("per_day", "expected"), [(1, "caution"), (2, "hold")])
def test_oseltamivir_once_daily_is_post_exposure(per_day: int, expected: str) -> None:
    found = infection_statuses(other("oseltamivir 75 MG Oral Capsule", None, RX, dosage(75, per_day=per_day)))
    assert set(found.values()) == {expected}, found


def test_a_prophylaxis_reason_with_a_treatment_dose_is_doubt_and_holds() -> None:
    found = infection_statuses(other(VALGAN, "275891", RX, dosage(900, per_day=2),
                                     **reason(None, None, "CMV prophylaxis")))
    assert found == {"anti-infective": "hold"}


def test_a_reason_that_is_an_infection_is_treatment() -> None:
    found = infection_statuses(other("amoxicillin 500 MG Oral Capsule", "308191", RX, dosage(2000, repeat={"count": 1}),
                                     **reason("J18.9", ICD10CM, "Pneumonia, unspecified organism")))
    assert found == {"anti-infective": "hold"}


def test_a_latent_state_reason_is_prophylaxis_for_a_drug_given_alike_for_both() -> None:
    """Isoniazid has no distinctive prophylaxis regimen: without a reason it holds, with latent TB it cautions."""
    assert infection_statuses(other("isoniazid 300 MG Oral Tablet", "6038", RX, dosage(300, per_day=1))) == {
        "anti-infective": "hold"}
    assert infection_statuses(other("isoniazid 300 MG Oral Tablet", "6038", RX, dosage(300, per_day=1),
                                    **reason("R76.11", ICD10CM, "Positive tuberculin skin test"))) == {
        "anti-infective-prophylaxis": "caution"}


def test_a_course_of_a_single_dose_drug_is_treatment() -> None:
    found = infection_statuses(other("amoxicillin 500 MG Oral Capsule", "308191", RX, dosage(500, per_day=3)))
    assert found == {"anti-infective": "hold"}


def test_co_trimoxazole_without_a_dosage_still_holds_and_says_it_may_be_prophylaxis() -> None:
    result = run(_Case("x", lambda: transaction(aza(), other("Bactrim DS"), temp(36.8)), "infection-hold", "ok"))
    (finding,) = [f for f in result.findings if f.rule == "infection-hold"]
    assert str(finding.status) == "hold" and "prophylaxis" in said(finding).summary


def test_a_non_systemic_route_on_the_dosage_is_no_hold() -> None:
    drops = dosage(1, "{drop}", per_day=4, route={"coding": [{"system": "http://snomed.info/sct", "code": "54485002",
                                                            "display": "Ophthalmic route"}]})
    found = infection_statuses(other("tobramycin 3 MG/ML", None, RX, drops))
    assert "hold" not in found.values(), found


def test_a_prophylaxis_and_a_treatment_order_together_hold() -> None:
    found = infection_statuses(other(VALGAN, "275891", RX, dosage(900, per_day=1)),
                               other("ciprofloxacin 500 MG Oral Tablet", None, RX, dosage(500, per_day=2)))
    assert found == {"anti-infective": "hold", "anti-infective-prophylaxis": "caution"}


def test_a_non_infective_use_of_the_drug_is_no_hold() -> None:
    """Doxycycline 40 mg daily for rosacea (L71) is not an infection being treated; for cellulitis it is."""
    rosacea = infection_statuses(other("doxycycline 40 MG", None, RX, dosage(40, per_day=1),
                                       **reason("L71.9", ICD10CM, "Rosacea, unspecified")))
    assert "hold" not in rosacea.values(), rosacea
    cellulitis = infection_statuses(other("doxycycline 100 MG", None, RX, dosage(100, per_day=2),
                                          **reason("L03.115", ICD10CM, "Cellulitis of right lower limb")))
    assert cellulitis == {"anti-infective": "hold"}
