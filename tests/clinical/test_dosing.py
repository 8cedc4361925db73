"""Dose per kg, TPMT phenotype and interacting drugs: clinical scenarios in plain words."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from azaguard.findings import Finding, Status
from azaguard.mappings import load_mappings
from azaguard.rules import dosing
from azaguard.rules.common import RuleFn
from tests.clinical.builders import (
    LOINC,
    NOW,
    PATIENT_REF,
    RXNORM,
    Resource,
    azathioprine,
    coded_observation,
    drug,
    observation,
    record_of,
)
from tests.words import said

WEIGHT, TPMT, PGX = "29463-7", "79713-4", "84413-4"


def run(fn: RuleFn, *resources: Resource, now: datetime = NOW) -> list[Finding]:
    return fn(record_of(*resources), load_mappings(), now)


def by_code(findings: list[Finding]) -> dict[str, Status]:
    return {f.code: f.status for f in findings}


def weighs(kg: float, unit: str = "kg", days_ago: float = 10) -> Resource:
    return observation(WEIGHT, kg, unit, days_ago=days_ago, rid="weight")


def aza(**kw: Any) -> Resource:
    kw.setdefault("rid", "aza")
    return azathioprine(**kw)


# --- dose in mg/kg/day ------------------------------------------------------------------------

DOSES = [
    # situation, azathioprine order, weight, expected code, expected status, mg/kg/day shown
    ("50 mg twice daily for 70 kg: 1.43", aza(), weighs(70), "dose-within-max", Status.OK, "1.43"),
    (
        "150 mg twice daily for 70 kg: 4.29",
        aza(dose_mg=150),
        weighs(70),
        "dose-above-max",
        Status.CAUTION,
        "4.29",
    ),
    ("exactly 3 mg/kg/day is not above", aza(dose_mg=105), weighs(70), "dose-within-max", Status.OK, "3.00"),
    ("just above 3 mg/kg/day", aza(dose_mg=106), weighs(70), "dose-above-max", Status.CAUTION, "3.03"),
    (
        "weight in pounds: 154 lb, 100 mg/day",
        aza(),
        weighs(154, "[lb_av]"),
        "dose-within-max",
        Status.OK,
        "1.43",
    ),
    (
        "weight in pounds: 110 lb, 150 mg/day",
        aza(dose_mg=75),
        weighs(110, "[lb_av]"),
        "dose-above-max",
        Status.CAUTION,
        "3.01",
    ),
    (
        "weight with the lab alias lbs",
        aza(dose_mg=75),
        weighs(110, "lbs"),
        "dose-above-max",
        Status.CAUTION,
        "3.01",
    ),
    ("weight in grams", aza(), weighs(70000, "g"), "dose-within-max", Status.OK, "1.43"),
    (
        "three 50 mg tablets once daily for 45 kg",
        aza(dose_mg=3, dose_unit="{tbl}", per_day=1),
        weighs(45),
        "dose-above-max",
        Status.CAUTION,
        "3.33",
    ),
    (
        "one 100 mg tablet (unit TAB) once daily for 70 kg",
        aza(code="359228", display="azathioprine 100 MG Oral Tablet", dose_mg=1, dose_unit="TAB", per_day=1),
        weighs(70),
        "dose-within-max",
        Status.OK,
        "1.43",
    ),
    (
        "two Imuran 50 mg tablets twice daily for 60 kg",
        aza(code="105611", display="Imuran 50 MG Oral Tablet", dose_mg=2, dose_unit="tablet"),
        weighs(60),
        "dose-above-max",
        Status.CAUTION,
        "3.33",
    ),
    (
        "dose written in grams",
        aza(dose_mg=0.1, dose_unit="g", per_day=1),
        weighs(70),
        "dose-within-max",
        Status.OK,
        "1.43",
    ),
]


@pytest.mark.parametrize(
    ("situation", "order", "weight", "code", "status", "shown"), DOSES, ids=[d[0] for d in DOSES]
)
def test_dose_per_kg(
    situation: str, order: Resource, weight: Resource, code: str, status: Status, shown: str
) -> None:
    found = run(dosing.dose, order, weight)
    assert by_code(found) == {code: status}
    assert f"{shown} mg/kg/day" in said(found[0]).summary
    assert found[0].implicated == ("MedicationRequest/aza",)
    assert {e.reference for e in found[0].evidence} == {"MedicationRequest/aza", "Observation/weight"}


def test_dose_above_max_mentions_the_label_ra_maximum() -> None:
    f = run(dosing.dose, aza(dose_mg=150), weighs(70))[0]
    assert f.severity == "moderate"
    assert "RA maximum is 2.5 mg/kg/day" in said(f).detail


def test_weight_evidence_shows_recorded_and_normalised_values() -> None:
    f = run(dosing.dose, aza(), weighs(154, "[lb_av]"))[0]
    weight = next(e for e in f.evidence if e.reference == "Observation/weight")
    assert weight.value == "154 [lb_av]"
    assert weight.normalised == "69.85 kg"


def _as_needed() -> Resource:
    order = aza()
    order["dosageInstruction"][0]["asNeededBoolean"] = True
    return order


CANNOT = [
    ("no weight on file", [aza()], "body weight"),
    ("weight older than six months", [aza(), weighs(70, days_ago=200)], "recent body weight"),
    ("weight in an unknown unit", [aza(), weighs(70, "stone")], "readable body weight"),
    ("no dose on the order", [aza(dose_mg=None), weighs(70)], "dosage instructions"),
    ("dose without a frequency", [aza(per_day=None), weighs(70)], "administrations per day"),
    ("dose in millilitres of a tablet product", [aza(dose_unit="mL"), weighs(70)], "concentration"),
    ("dose in an unknown unit", [aza(dose_unit="{puff}"), weighs(70)], "known dose unit"),
    (
        "tablets of an unknown strength (ingredient code only)",
        [aza(code="1256", display="azathioprine", dose_mg=2, dose_unit="{tbl}"), weighs(70)],
        "tablet strength",
    ),
    ("azathioprine as needed", [_as_needed(), weighs(70)], "as needed"),
]


@pytest.mark.parametrize(("situation", "resources", "missing"), CANNOT, ids=[c[0] for c in CANNOT])
def test_dose_cannot_be_evaluated(situation: str, resources: list[Resource], missing: str) -> None:
    found = run(dosing.dose, *resources)
    assert by_code(found) == {"dose-cannot-evaluate": Status.CANNOT_EVALUATE}
    assert any(missing in m for m in found[0].missing), found[0].missing
    assert missing in said(found[0]).detail


def test_tablets_of_a_product_coded_with_two_strengths_cannot_be_converted() -> None:
    order = aza(dose_mg=1, dose_unit="{tbl}", per_day=1)
    order["medicationCodeableConcept"]["coding"].append({"system": RXNORM, "code": "359228"})  # also 100 mg
    found = run(dosing.dose, order, weighs(70))
    assert by_code(found) == {"dose-cannot-evaluate": Status.CANNOT_EVALUATE}
    assert "tablet strength" in said(found[0]).detail


def test_two_current_orders_are_added_up() -> None:
    found = run(
        dosing.dose,
        aza(dose_mg=100, per_day=1),
        azathioprine(code="199310", display="azathioprine 25 MG Oral Tablet", dose_mg=25, per_day=1),
        weighs(40),
    )
    assert by_code(found) == {"dose-above-max": Status.CAUTION}  # 125 mg / 40 kg = 3.13
    assert "3.12 mg/kg/day" in said(found[0]).summary or "3.13 mg/kg/day" in said(found[0]).summary


def test_unreadable_weight_observation_blocks_the_dose_check() -> None:
    broken = weighs(70)
    broken["valueQuantity"]["value"] = "seventy"
    found = run(dosing.dose, aza(), broken, observation(WEIGHT, 70, "kg", days_ago=30))
    assert by_code(found) == {"dose-cannot-evaluate": Status.CANNOT_EVALUATE}
    assert "Observation/weight" in [e.reference for e in found[0].evidence]  # linked, never written in text
    assert "Observation/" not in said(found[0]).detail


def test_dose_not_applicable_without_azathioprine() -> None:
    assert by_code(run(dosing.dose, weighs(70))) == {"not-on-azathioprine": Status.NOT_APPLICABLE}


# --- TPMT -----------------------------------------------------------------------------------


def text_observation(loinc: str, text: str) -> Resource:
    return {
        "resourceType": "Observation",
        "id": "tpmt-text",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]},
        "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": NOW.isoformat(),
        "valueString": text,
    }


TPMT_CASES = [
    (
        "normal TPMT activity",
        coded_observation(TPMT, "LA25391-6", "Normal metabolizer"),
        "tpmt-normal",
        Status.OK,
        "info",
    ),
    (
        "intermediate TPMT",
        coded_observation(TPMT, "LA10317-8", "Intermediate metabolizer"),
        "tpmt-intermediate",
        Status.CAUTION,
        "moderate",
    ),
    ("poor TPMT", coded_observation(TPMT, "LA9657-3", "Poor metabolizer"), "tpmt-poor", Status.HOLD, "high"),
    (
        "answer code wins over an odd display",
        coded_observation(TPMT, "LA9657-3", "see lab report"),
        "tpmt-poor",
        Status.HOLD,
        "high",
    ),
    (
        "no code, text says low activity",
        text_observation(TPMT, "Low TPMT activity"),
        "tpmt-poor",
        Status.HOLD,
        "high",
    ),
    (
        "no code, text says intermediate",
        text_observation(TPMT, "Intermediate activity"),
        "tpmt-intermediate",
        Status.CAUTION,
        "moderate",
    ),
    (
        "unrecognised free text",
        text_observation(TPMT, "see scanned report"),
        "tpmt-unrecognised",
        Status.CANNOT_EVALUATE,
        "moderate",
    ),
    (
        "text naming two phenotypes is ambiguous",
        text_observation(TPMT, "normal or intermediate"),
        "tpmt-unrecognised",
        Status.CANNOT_EVALUATE,
        "moderate",
    ),
]


@pytest.mark.parametrize(
    ("situation", "result", "code", "status", "severity"), TPMT_CASES, ids=[c[0] for c in TPMT_CASES]
)
def test_tpmt(situation: str, result: Resource, code: str, status: Status, severity: str) -> None:
    found = run(dosing.tpmt, aza(), result)
    assert by_code(found) == {code: status}
    assert found[0].severity == severity
    assert found[0].evidence[0].reference == f"Observation/{result['id']}"


def test_no_tpmt_result_on_file() -> None:
    found = run(dosing.tpmt, aza())
    assert by_code(found) == {"tpmt-no-result": Status.CANNOT_EVALUATE}
    assert found[0].severity == "info"
    assert "NUDT15 not on file" in said(found[0]).detail


def test_genotype_is_read_as_cpic_says() -> None:
    # TPMT *1/*3A: one no-function allele -> intermediate metaboliser (CPIC), not a note under "no result".
    found = run(dosing.tpmt, aza(), coded_observation(PGX, "x", "TPMT *1/*3A"))
    assert by_code(found) == {"tpmt-intermediate": Status.CAUTION}
    # A genotype naming no gene cannot be read: it is pointed out, never ignored.
    found = run(dosing.tpmt, aza(), coded_observation(PGX, "x", "*1/*3A"))
    assert by_code(found)["pgx-gene-unknown"] == Status.CANNOT_EVALUATE


def test_newest_tpmt_result_decides() -> None:
    found = run(
        dosing.tpmt,
        aza(),
        coded_observation(TPMT, "LA25391-6", "Normal", days_ago=400),
        coded_observation(TPMT, "LA10317-8", "Intermediate", days_ago=20),
    )
    assert by_code(found) == {"tpmt-intermediate": Status.CAUTION}


def test_unreadable_tpmt_observation() -> None:
    broken = coded_observation(TPMT, "LA25391-6", "Normal")
    broken["effectiveDateTime"] = "last spring"
    found = run(dosing.tpmt, aza(), broken)
    assert by_code(found) == {
        "observation-unreadable": Status.CANNOT_EVALUATE,
        "tpmt-no-result": Status.CANNOT_EVALUATE,
    }


def test_tpmt_not_applicable_without_azathioprine() -> None:
    found = run(dosing.tpmt, coded_observation(TPMT, "LA9657-3", "Poor"))
    assert by_code(found) == {"not-on-azathioprine": Status.NOT_APPLICABLE}


# --- interactions ----------------------------------------------------------------------------

INTERACTIONS = [
    (
        "allopurinol at full azathioprine dose",
        drug("519", "allopurinol 100 MG Oral Tablet", rid="other"),
        "allopurinol",
        Status.HOLD,
        "critical",
    ),
    (
        "febuxostat",
        drug("73689", "febuxostat 40 MG Oral Tablet", rid="other"),
        "febuxostat",
        Status.HOLD,
        "critical",
    ),
    (
        "co-trimoxazole recognised by name",
        drug("198335", "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet", rid="other"),
        "co-trimoxazole",
        Status.CAUTION,
        "moderate",
    ),
    (
        "trimethoprim by ingredient code",
        drug("10829", "trimethoprim", rid="other"),
        "co-trimoxazole",
        Status.CAUTION,
        "moderate",
    ),
    (
        "ACE inhibitor lisinopril",
        drug("29046", "lisinopril", rid="other"),
        "ace-inhibitor",
        Status.CAUTION,
        "moderate",
    ),
    (
        "ACE inhibitor ramipril by name only",
        drug("999999", "Ramipril 5 mg capsule", rid="other"),
        "ace-inhibitor",
        Status.CAUTION,
        "moderate",
    ),
    ("ribavirin", drug("9344", "ribavirin", rid="other"), "ribavirin", Status.CAUTION, "moderate"),
    (
        "allopurinol on hold still counts",
        drug("519", "allopurinol", status="on-hold", rid="other"),
        "allopurinol",
        Status.HOLD,
        "critical",
    ),
]


@pytest.mark.parametrize(
    ("situation", "order", "code", "status", "severity"), INTERACTIONS, ids=[i[0] for i in INTERACTIONS]
)
def test_interaction(situation: str, order: Resource, code: str, status: Status, severity: str) -> None:
    found = run(dosing.interactions, aza(), order, weighs(70))
    assert by_code(found) == {code: status}
    assert found[0].severity == severity
    assert found[0].implicated == ("MedicationRequest/aza", "MedicationRequest/other")
    assert "MedicationRequest/other" in {e.reference for e in found[0].evidence}


def test_allopurinol_with_an_already_reduced_azathioprine_dose() -> None:
    # 25 mg once daily for 70 kg = 0.36 mg/kg/day, below 0.34 x 2.5 = 0.85 mg/kg/day.
    found = run(dosing.interactions, aza(dose_mg=25, per_day=1), drug("519", "allopurinol"), weighs(70))
    assert by_code(found) == {"allopurinol-dose-reduced": Status.CAUTION}
    assert "0.36 mg/kg/day" in said(found[0]).detail


def test_allopurinol_when_the_dose_cannot_be_checked_stays_a_hold() -> None:
    found = run(dosing.interactions, aza(dose_mg=25, per_day=1), drug("519", "allopurinol"))
    assert by_code(found) == {"allopurinol": Status.HOLD}
    assert "cannot be checked" in said(found[0]).detail


def test_stopped_allopurinol_does_not_interact() -> None:
    found = run(
        dosing.interactions,
        aza(),
        drug("519", "allopurinol", status="stopped"),
        drug("723", "amoxicillin 500 MG"),
    )
    assert by_code(found) == {"no-interaction": Status.OK}
    assert "amoxicillin 500 MG" in said(found[0]).detail
    assert "allopurinol" in said(found[0]).detail  # names what was checked against


def test_two_interacting_drugs_give_two_findings() -> None:
    found = run(dosing.interactions, aza(), drug("73689", "febuxostat"), drug("29046", "lisinopril"))
    assert by_code(found) == {"febuxostat": Status.HOLD, "ace-inhibitor": Status.CAUTION}


def test_unidentifiable_medication_order_blocks_ok() -> None:
    found = run(
        dosing.interactions, aza(), drug("", "", medication_reference="Medication/missing", rid="other")
    )
    assert by_code(found) == {"medication-unreadable": Status.CANNOT_EVALUATE}


def test_interactions_not_applicable_without_azathioprine() -> None:
    found = run(dosing.interactions, drug("519", "allopurinol"))
    assert by_code(found) == {"not-on-azathioprine": Status.NOT_APPLICABLE}


@pytest.mark.parametrize(
    "fn", [dosing.dose, dosing.tpmt, dosing.interactions], ids=["dose", "tpmt", "interactions"]
)
def test_stopped_azathioprine_is_not_current(fn: RuleFn) -> None:
    found = run(fn, azathioprine(status="stopped", ended_days_ago=10), weighs(70))
    assert by_code(found) == {"not-current": Status.NOT_APPLICABLE}
