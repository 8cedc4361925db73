"""Infection hold: one row per clinical situation (clinical-rules.md §3).

Each row: the situation in plain words, the patient's resources, and the findings the
infection rule must give: exactly these "code = status/severity" pairs, nothing more.
Everything is evaluated at NOW (2026-11-01 12:00 UTC). Unless a row says otherwise the
patient takes azathioprine 50 mg twice daily.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from azaguard.findings import Finding
from azaguard.mappings import load_mappings
from azaguard.rules import infection
from azaguard.rules.infection import certainly_below
from tests.clinical.builders import (
    ICD10,
    LOINC,
    NOW,
    PATIENT_REF,
    Resource,
    azathioprine,
    condition,
    drug,
    medication,
    observation,
    record_of,
    status_of,
)
from tests.words import said


def run(*resources: Resource, ordering_context: bool = False) -> list[Finding]:
    """The infection rule alone (pure: record + mappings + now)."""
    return infection.evaluate(record_of(*resources, ordering_context=ordering_context), load_mappings(), NOW)


def verdicts(found: list[Finding]) -> set[str]:
    return {f"{f.code} = {f.status}/{f.severity}" for f in found}


# --- readable builders for this table ---------------------------------------------------------


def temp(value: float | None, unit: str | None = "Cel", *, hours_ago: float = 6, **kw: object) -> Resource:
    """A body temperature (LOINC 8310-5) taken `hours_ago` before NOW."""
    return observation("8310-5", value, unit, days_ago=0, hours_ago=hours_ago, **kw)  # type: ignore[arg-type]


def normal_temp() -> Resource:
    return temp(36.8)


def neutrophils(value: float, unit: str = "10*9/L", *, days_ago: float = 2) -> Resource:
    return observation("751-8", value, unit, days_ago=days_ago)


def amoxicillin(**kw: object) -> Resource:
    return drug("308192", "Amoxicillin 500 MG Oral Tablet", **kw)


def contained_antibiotic() -> Resource:
    order = drug("x", "x", medication_reference="#abx")
    # A contained Medication with only a name, as some EHRs send for compounded or local items.
    order["contained"] = [{"resourceType": "Medication", "id": "abx",
                           "code": {"text": "Doxycycline 100 mg capsule"}}]
    return order


def unreadable_temperature() -> Resource:
    return {"resourceType": "Observation", "id": "bad-temp", "status": "final",
            "code": {"coding": [{"system": LOINC, "code": "8310-5"}]}, "subject": {"reference": PATIENT_REF},
            "valueQuantity": {"value": "hot"}}


def unreadable_condition() -> Resource:
    return {"resourceType": "Condition", "id": "bad-cond", "clinicalStatus": "active",
            "subject": {"reference": PATIENT_REF}}


@dataclass(frozen=True)
class Scenario:
    situation: str
    resources: tuple[Resource, ...]
    expect: frozenset[str]
    ordering_context: bool = False


def S(situation: str, resources: list[Resource], *expect: str, ordering_context: bool = False) -> Scenario:
    return Scenario(situation, tuple(resources), frozenset(expect), ordering_context)


OK = "no-infection-signs = ok/info"
FEVER = "fever = hold/high"
INFECTION = "active-infection = hold/high"
ANTI_INFECTIVE = "anti-infective = hold/high"
NO_TEMP = "no-temperature = cannot-evaluate/moderate"
TEMP_UNREADABLE = "temperature-unreadable = cannot-evaluate/moderate"
RECORD_UNREADABLE = "record-unreadable = cannot-evaluate/moderate"

SCENARIOS = [
    # --- fever threshold, both sides, both units ---
    S("Temperature 37.9 °C this morning: no fever, but above the leaflet's 100 °F (§9: caution)",
      [azathioprine(), temp(37.9)], "leaflet-fever = caution/moderate"),
    S("Temperature 37.7 °C this morning: no fever, under the leaflet's line", [azathioprine(), temp(37.7)], OK),
    S("Temperature 38.0 °C this morning: fever (threshold is inclusive)",
      [azathioprine(), temp(38.0)], FEVER),
    S("Temperature 100.3 °F: just under 38.0 °C (above the leaflet's 100 °F: caution)",
      [azathioprine(), temp(100.3, "[degF]")], "leaflet-fever = caution/moderate"),
    S("Temperature 99.9 °F (37.7 °C): under the leaflet's line", [azathioprine(), temp(99.9, "[degF]")], OK),
    S("Temperature 100.4 °F: exactly 38.0 °C, fever", [azathioprine(), temp(100.4, "[degF]")], FEVER),
    S("A fever yesterday and a normal reading this morning: still a fever in the last 72 h",
      [azathioprine(), temp(38.6, hours_ago=30), temp(36.9, hours_ago=2)], FEVER),
    # --- the 72-hour window ---
    S("Fever 38.4 °C measured 71 hours ago: inside the window",
      [azathioprine(), temp(38.4, hours_ago=71)], FEVER),
    S("Fever 38.4 °C measured 73 hours ago and nothing since: cannot rule out fever now",
      [azathioprine(), temp(38.4, hours_ago=73)], NO_TEMP),
    S("No temperature recorded at all", [azathioprine()], NO_TEMP),
    # --- units written in other ways ---
    S("Fever with the unit only in the text ('Cel', no UCUM code)",
      [azathioprine(), temp(38.5, None, unit_text="Cel")], FEVER),
    S("Fever written with the non-UCUM alias 'degF' (101.2)",
      [azathioprine(), temp(101.2, "degF", system=None)], FEVER),
    S("Normal temperature with the alias '°C' as text only",
      [azathioprine(), temp(36.9, None, unit_text="°C")], OK),
    S("Temperature 38.5 in an unknown unit 'deg': cannot tell",
      [azathioprine(), temp(38.5, "deg")], TEMP_UNREADABLE),
    S("A normal reading and another in an unknown unit: the unknown one could be a fever",
      [azathioprine(), normal_temp(), temp(39.0, "deg", hours_ago=1)], TEMP_UNREADABLE),
    S("Temperature recorded with no value", [azathioprine(), temp(None)], TEMP_UNREADABLE),
    S("Temperature Observation that cannot be read at all",
      [azathioprine(), normal_temp(), unreadable_temperature()], TEMP_UNREADABLE),
    # --- comparators ---
    S("Temperature '>38.5 °C': decides fever", [azathioprine(), temp(38.5, comparator=">")], FEVER),
    S("Temperature '<39 °C': could be a fever or not",
      [azathioprine(), temp(39, comparator="<")], TEMP_UNREADABLE),
    S("Temperature '<37.5 °C': decidedly no fever", [azathioprine(), temp(37.5, comparator="<")], OK),
    # --- status of the temperature Observation ---
    S("Preliminary fever reading 38.2 °C: used", [azathioprine(), temp(38.2, status="preliminary")], FEVER),
    S("Fever 39.0 °C entered in error, normal reading otherwise",
      [azathioprine(), temp(39.0, status="entered-in-error"), normal_temp()], OK),
    # --- neutropenic fever ---
    S("Fever 38.6 °C with neutrophils 0.9 ×10⁹/L two days ago: neutropenic fever",
      [azathioprine(), temp(38.6), neutrophils(0.9)], "neutropenic-fever = hold/critical"),
    S("Fever with neutrophils 900 /uL (= 0.9 ×10⁹/L): neutropenic fever",
      [azathioprine(), temp(38.6), neutrophils(900, "/uL")], "neutropenic-fever = hold/critical"),
    S("Fever with normal neutrophils 3.0 ×10⁹/L: fever only",
      [azathioprine(), temp(38.6), neutrophils(3.0)], FEVER),
    S("Fever; the only low neutrophil count is 20 days old: fever only",
      [azathioprine(), temp(38.6), neutrophils(0.9, days_ago=20)], FEVER),
    S("Low neutrophils without fever: not this rule's hold",
      [azathioprine(), normal_temp(), neutrophils(0.9)], OK),
    # --- active infection on the problem list ---
    S("Active pneumonia (SNOMED), temperature normal",
      [azathioprine(), normal_temp(), condition("233604007", "Pneumonia")],
      INFECTION),
    S("Active urinary tract infection coded ICD-10-CM N39.0",
      [azathioprine(), normal_temp(), condition("N39.0", "UTI, site not specified", system=ICD10)],
      INFECTION),
    S("Active upper respiratory infection ICD-10-CM J06.9 (inside J00-J22)",
      [azathioprine(), normal_temp(), condition("J06.9", "Acute URI", system=ICD10)], INFECTION),
    S("Active 'chest infection' with a local code only: recognised by name",
      [azathioprine(), normal_temp(), condition("L-17", "Chest infection", system="http://example.org/local")],
      INFECTION),
    S("Pneumonia that has resolved",
      [azathioprine(), normal_temp(), condition("233604007", "Pneumonia", clinical="resolved")], OK),
    S("Pneumonia suspected then refuted",
      [azathioprine(), normal_temp(), condition("233604007", "Pneumonia", verification="refuted")], OK),
    S("Active diabetes: not an infection",
      [azathioprine(), normal_temp(), condition("44054006", "Diabetes mellitus type 2")], OK),
    S("Active pneumonia and no temperature recorded: hold, and fever still cannot be ruled out",
      [azathioprine(), condition("233604007", "Pneumonia")], INFECTION, NO_TEMP),
    S("Condition record that cannot be read", [azathioprine(), normal_temp(), unreadable_condition()],
      RECORD_UNREADABLE),
    # --- anti-infective treatment ---
    S("Amoxicillin tablets ordered (clinical drug code, matched by ingredient name)",
      [azathioprine(), normal_temp(), amoxicillin()], ANTI_INFECTIVE),
    S("Amoxicillin ordered by its RxNorm ingredient code 723",
      [azathioprine(), normal_temp(), drug("723", "amoxicillin")], ANTI_INFECTIVE),
    S("Amoxicillin ordered through a referenced Medication resource",
      [azathioprine(), normal_temp(), medication("308192", "Amoxicillin 500 MG Oral Tablet", mid="amox"),
       drug("x", "x", medication_reference="Medication/amox")], ANTI_INFECTIVE),
    S("Penicillin V tablets ordered (as in the sandbox records)",
      [azathioprine(), normal_temp(), drug("834061", "Penicillin V Potassium 250 MG Oral Tablet")],
      ANTI_INFECTIVE),
    S("Doxycycline ordered through a contained Medication named only in text",
      [azathioprine(), normal_temp(), contained_antibiotic()], ANTI_INFECTIVE),
    S("Co-trimoxazole ordered (may be PJP prophylaxis): hold, with a note",
      [azathioprine(), normal_temp(),
       drug("198335", "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet")],
      ANTI_INFECTIVE),
    S("Antibiotic course stopped", [azathioprine(), normal_temp(), amoxicillin(status="stopped")], OK),
    S("Antibiotic drafted outside an ordering workflow: not yet an order",
      [azathioprine(), normal_temp(), amoxicillin(status="draft")], OK),
    S("Antibiotic drafted while the clinician is signing orders",
      [azathioprine(), normal_temp(), amoxicillin(status="draft")], ANTI_INFECTIVE, ordering_context=True),
    S("An active order's medication cannot be found: it might be an antibiotic",
      [azathioprine(), normal_temp(), drug("x", "x", medication_reference="Medication/missing")],
      RECORD_UNREADABLE),
    # --- who this rule is for ---
    S("Not on azathioprine, fever: not applicable",
      [temp(39.0)], "not-on-azathioprine = not-applicable/info"),
    S("Azathioprine stopped 30 days ago, fever: the infection hold is for current therapy",
      [azathioprine(status="stopped", started_days_ago=400, ended_days_ago=30), temp(39.0)],
      "not-current = not-applicable/info"),
    S("Azathioprine on hold, fever: still counts", [azathioprine(status="on-hold"), temp(38.5)], FEVER),
    S("Azathioprine recognised by name only, fever",
      [azathioprine(code=None, text="Azasan 75 mg"), temp(38.5)], FEVER),
    # --- everything at once ---
    S("Fever, pneumonia and amoxicillin together: each reported",
      [azathioprine(), temp(38.9), condition("233604007", "Pneumonia"), amoxicillin()],
      FEVER, INFECTION, ANTI_INFECTIVE),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.situation for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    found = run(*scenario.resources, ordering_context=scenario.ordering_context)
    assert verdicts(found) == set(scenario.expect)


def test_every_finding_belongs_to_the_rule_and_fits_a_card() -> None:
    for scenario in SCENARIOS:
        for f in run(*scenario.resources, ordering_context=scenario.ordering_context):
            assert f.rule == "infection-hold"
            assert len(said(f).summary) < 140


# --- what the findings say -------------------------------------------------------------------


def test_fever_summary_names_value_date_and_action() -> None:
    (f,) = run(azathioprine(), temp(38.4, hours_ago=3), neutrophils(3.0))
    assert said(f).summary == "Hold azathioprine — fever 38.4 °C 1 Nov 2026 09:00; contact the prescriber."
    assert "consider holding azathioprine; contact the prescriber" in said(f).detail


def test_fahrenheit_evidence_shows_original_and_normalised_values() -> None:
    obs = temp(101.2, "[degF]", rid="t-f")
    (f,) = run(azathioprine(), obs, neutrophils(3.0))
    ev = next(e for e in f.evidence if e.reference == "Observation/t-f")
    assert ev.value == "101.2 [degF]"
    assert ev.normalised == "38.44 Cel"


def test_fever_implicates_the_azathioprine_order() -> None:
    (f,) = run(azathioprine(rid="aza-7"), temp(38.5))
    assert f.implicated == ("MedicationRequest/aza-7",)


def test_fever_without_a_recent_neutrophil_count_asks_for_one() -> None:
    (f,) = run(azathioprine(), temp(38.5))
    assert f.missing == ("a current neutrophil count (to exclude neutropenic fever)",)
    (g,) = run(azathioprine(), temp(38.5), neutrophils(3.0))
    assert g.missing == ()


def test_neutropenic_fever_lists_both_readings() -> None:
    (f,) = run(azathioprine(), temp(38.6, rid="t-n"), neutrophils(0.9))
    assert "with low neutrophils" in said(f).summary and "medical emergency" in said(f).detail
    descriptions = " | ".join(e.description for e in f.evidence)
    assert "Neutrophils" in descriptions and "temperature" in descriptions


def test_preliminary_reading_is_marked_in_the_evidence() -> None:
    (f,) = run(azathioprine(), temp(38.2, status="preliminary", rid="t-p"))
    ev = next(e for e in f.evidence if e.reference == "Observation/t-p")
    assert "preliminary" in ev.description
    assert "preliminary" in said(f).detail


def test_text_only_unit_is_marked_in_the_evidence() -> None:
    (f,) = run(azathioprine(), temp(38.5, None, unit_text="Cel", rid="t-x"))
    ev = next(e for e in f.evidence if e.reference == "Observation/t-x")
    assert "unit read from text" in ev.description


def test_unknown_unit_names_the_observation() -> None:
    (f,) = run(azathioprine(), temp(38.5, "deg", rid="t-u"))
    assert "Observation/t-u" in [e.reference for e in f.evidence] and "Observation/" not in said(f).detail
    assert f.missing == ("a readable temperature value",)


def test_no_temperature_says_when_the_last_one_was() -> None:
    (f,) = run(azathioprine(), temp(37.0, hours_ago=100))
    assert said(f).summary == "Cannot check for infection — needs a body temperature from the last 72 hours."
    assert "No temperature in the last 72 h" in said(f).detail and "fever cannot be excluded" in said(f).detail
    assert "28 Oct 2026" in said(f).detail


def test_name_only_condition_says_so() -> None:
    (f,) = run(azathioprine(), normal_temp(), condition("L-17", "Chest infection", system="http://example.org/local"))
    assert any("matched by name only" in e.description for e in f.evidence)


def test_co_trimoxazole_carries_the_prophylaxis_note() -> None:
    (f,) = run(azathioprine(), normal_temp(),
               drug("198335", "sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet"))
    assert "it may be prophylaxis" in said(f).detail
    assert load_mappings().medications.anti_infectives.prophylaxis_false_positive_note in said(f).detail


def test_anti_infective_evidence_says_how_it_was_matched() -> None:
    (by_code,) = run(azathioprine(), normal_temp(), drug("723", "Amoxil", rid="abx-code"))
    (by_name,) = run(azathioprine(), normal_temp(), amoxicillin(rid="abx-name"))
    # Wording changed with the terminology seam (issue 7): "<ingredient> by <code or name>".
    assert "amoxicillin by RxNorm 723" in by_code.evidence[0].description
    assert "amoxicillin by name 'amoxicillin'" in by_name.evidence[0].description.lower()


def test_real_antibiotic_has_no_prophylaxis_note() -> None:
    (f,) = run(azathioprine(), normal_temp(), amoxicillin())
    assert "prophylaxis" not in said(f).summary + said(f).detail


def test_ok_shows_the_temperature_that_proves_it() -> None:
    (f,) = run(azathioprine(), temp(36.8, rid="t-ok"))
    assert "Observation/t-ok" in [e.reference for e in f.evidence]
    assert "36.8 °C" in said(f).summary


@pytest.mark.parametrize(("value", "comparator", "expected"), [
    (37.9, None, True), (38.0, None, False),
    (38.5, ">", False), (37.0, ">", None), (38.0, ">=", False),
    (39.0, "<", None), (38.0, "<", True), (37.5, "<=", True), (38.0, "<=", None),
    (38.0, "ad", None),
    # 100.4 [degF] converts to 38.00000000000001 and some values land a hair below: rounded first.
    (37.999999999999995, None, False),
])
def test_comparators_decide_only_when_they_can(
    value: float, comparator: str | None, expected: bool | None
) -> None:
    assert certainly_below(value, comparator, 38.0) is expected


# --- false positives seen on real sandbox data ----------------------------------------------------


def test_chronic_sinusitis_on_the_problem_list_is_not_an_acute_infection() -> None:
    # Synthea keeps "Chronic sinusitis" active for years; holding azathioprine for it would be wrong.
    assert status_of("infection-hold", azathioprine(), condition("40055000", "Chronic sinusitis"),
                     observation("8310-5", 36.8, "Cel", hours_ago=3, days_ago=0)) == "ok"


def test_a_name_only_chronic_condition_is_not_matched_but_an_acute_one_is() -> None:
    chronic = condition("999999", "Chronic bronchitis", system="http://example.org/local")
    acute = condition("999998", "Acute bronchitis", system="http://example.org/local")
    temp = observation("8310-5", 36.8, "Cel", hours_ago=3, days_ago=0)
    assert status_of("infection-hold", azathioprine(), chronic, temp) == "ok"
    assert status_of("infection-hold", azathioprine(), acute, temp) == "hold"


def test_a_topical_antibiotic_is_not_a_systemic_anti_infective() -> None:
    temp = observation("8310-5", 36.8, "Cel", hours_ago=3, days_ago=0)
    gel = drug("999001", "Clindamycin 10 MG/ML Topical Gel")
    tablet = drug("999002", "Clindamycin 300 MG Oral Capsule")
    assert status_of("infection-hold", azathioprine(), gel, temp) == "ok"
    assert status_of("infection-hold", azathioprine(), tablet, temp) == "hold"
