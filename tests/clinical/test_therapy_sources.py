"""Therapy from every medication resource (issue 7, clinical-rules.md section 8): MedicationStatement,
MedicationDispense and MedicationAdministration show azathioprine, an anti-infective or an interacting drug
as well as an order does; a status the rules do not expect makes therapy uncertain (cannot-evaluate),
never "not on azathioprine".
"""

from __future__ import annotations

import pytest

from tests.clinical.builders import (
    RXNORM,
    Resource,
    azathioprine,
    for_rule,
    medication_administration,
    medication_dispense,
    medication_request,
    medication_statement,
    observation,
    recommendation,
    status_of,
)
from tests.words import said


def normal_temp() -> Resource:
    return observation("8310-5", 36.8, "Cel", hours_ago=2, days_ago=0)


# --- azathioprine shown by a statement, dispense or administration ---------------------------------

@pytest.mark.parametrize(
    ("story", "evidence", "expected"),
    [
        ("medication list (Cerner 'home meds'): statement active", medication_statement(), "hold"),
        ("statement 'intended': about to start", medication_statement(status="intended"), "hold"),
        ("statement on-hold during a procedure", medication_statement(status="on-hold"), "hold"),
        ("statement completed 30 days ago: recent therapy still blocks a live vaccine",
         medication_statement(status="completed", started_days_ago=300, ended_days_ago=30), "hold"),
        ("statement not-taken: the patient never took it", medication_statement(status="not-taken"), "not-applicable"),
        ("pharmacy dispense 10 days ago for 30 days: supply covers today", medication_dispense(), "hold"),
        ("dispense without daysSupply 5 days ago: assumed supply covers today",
         medication_dispense(days_supply=None, handed_over_days_ago=5), "hold"),
        ("dispense 60 days ago for 30 days: supply ran out 30 days ago, recent therapy",
         medication_dispense(handed_over_days_ago=60), "hold"),
        ("dispense 400 days ago: long past", medication_dispense(handed_over_days_ago=400), "not-applicable"),
        ("ward administration given this morning", medication_administration(), "hold"),
        ("administration in progress", medication_administration(status="in-progress"), "hold"),
        ("administration not-done is not a dose", medication_administration(status="not-done"), "not-applicable"),
    ],
)
def test_azathioprine_from_other_medication_resources_holds_a_live_vaccine(
    story: str, evidence: Resource, expected: str
) -> None:
    assert status_of("vaccination-hold", evidence, recommendation("03")) == expected, story


@pytest.mark.parametrize(
    ("story", "evidence"),
    [
        ("statement status 'unknown' (Epic: patient unsure)", medication_statement(status="unknown")),
        ("order status 'unknown'", medication_request(status="unknown")),
        ("wrong-case status 'Active' from an interface engine", medication_request(status="Active")),
        ("dispense status 'unknown'", medication_dispense(status="unknown")),
        ("administration with an unlisted status 'given'", medication_administration(status="given")),
    ],
)
def test_an_unexpected_status_makes_therapy_uncertain_never_not_applicable(story: str, evidence: Resource) -> None:
    for rule_id in ("vaccination-hold", "infection-hold", "dose"):
        found = for_rule(rule_id, evidence, recommendation("03"))
        assert found[0].status == "cannot-evaluate", (story, rule_id)
        assert found[0].code == "medication-unknown"
        assert any(e.reference.endswith("/" + evidence["id"]) for e in found[0].evidence)  # linked, not in text
        assert evidence["id"] not in said(found[0]).detail


def test_infection_rule_applies_to_a_patient_shown_on_azathioprine_by_dispense_only() -> None:
    f = for_rule("infection-hold", medication_dispense(), observation("8310-5", 38.6, "Cel", days_ago=0, hours_ago=3))
    assert f[0].status == "hold" and f[0].code == "fever"


# --- anti-infectives and interacting drugs from other resources ------------------------------------

def test_an_iv_antibiotic_given_on_the_ward_is_an_infection_hold() -> None:
    given = medication_administration("29561", display="meropenem 1 GM Injection", days_ago=0.2)
    assert status_of("infection-hold", azathioprine(), normal_temp(), given) == "hold"


def test_an_antibiotic_course_dispensed_last_year_is_not_an_infection_hold() -> None:
    old = medication_dispense("308192", display="Amoxicillin 500 MG Oral Capsule", handed_over_days_ago=300,
                              days_supply=7)
    assert status_of("infection-hold", azathioprine(), normal_temp(), old) == "ok"


def test_an_antibiotic_statement_with_unknown_status_cannot_clear_infection() -> None:
    unsure = medication_statement("2551", display="ciprofloxacin", status="unknown")
    f = for_rule("infection-hold", azathioprine(), normal_temp(), unsure)
    assert [x.status for x in f] == ["cannot-evaluate"]
    assert any(e.reference.endswith("/" + unsure["id"]) for e in f[0].evidence)
    assert unsure["id"] not in said(f[0]).detail


def test_allopurinol_dispensed_this_week_is_an_interaction_hold() -> None:
    allo = medication_dispense("519", display="allopurinol", handed_over_days_ago=3, days_supply=90)
    assert status_of("interactions", azathioprine(), allo) == "hold"


def test_allopurinol_with_unknown_status_is_cannot_evaluate_not_ok() -> None:
    allo = medication_statement("519", system=RXNORM, display="allopurinol", status="unknown")
    f = for_rule("interactions", azathioprine(), allo)
    assert [x.code for x in f] == ["interaction-status-uncertain"] and f[0].status == "cannot-evaluate"


def test_a_statement_beside_the_order_does_not_double_the_dose() -> None:
    weight = observation("29463-7", 70, "kg", days_ago=10)
    only_order = for_rule("dose", azathioprine(), weight)
    with_statement = for_rule("dose", azathioprine(), medication_statement(), weight)
    assert said(only_order[0]).summary == said(with_statement[0]).summary  # 100 mg/day / 70 kg either way
