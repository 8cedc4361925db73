"""Vaccination hold: one row per clinical situation (clinical-rules.md §2).

Each row: the situation in plain words, the patient's resources, and the findings the
vaccination rule must give: exactly these "code = status/severity" pairs, nothing more.
Everything is evaluated at NOW (2026-11-01 12:00 UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from msgspec.structs import replace

from azaguard.findings import Finding
from azaguard.mappings import Mappings, load_mappings
from azaguard.rules import vaccination
from tests.clinical.builders import (
    CVX,
    NOW,
    PATIENT_REF,
    Resource,
    azathioprine,
    drug,
    immunization,
    medication,
    observation,
    recommendation,
    record_of,
    vaccine_order,
)
from tests.words import said


def run(*resources: Resource, now: datetime = NOW, ordering_context: bool = False) -> list[Finding]:
    """The vaccination rule alone (pure: record + mappings + now)."""
    record = record_of(*resources, ordering_context=ordering_context)
    return vaccination.evaluate(record, load_mappings(), now)


def verdicts(found: list[Finding]) -> set[str]:
    return {f"{f.code} = {f.status}/{f.severity}" for f in found}


def unreadable_immunization() -> Resource:
    # vaccineCode must be a CodeableConcept: this one fails validation.
    return {"resourceType": "Immunization", "id": "bad-imm", "status": "completed", "vaccineCode": "MMR",
            "patient": {"reference": PATIENT_REF}}


def unreadable_recommendation() -> Resource:
    return {"resourceType": "ImmunizationRecommendation", "id": "bad-rec",
            "patient": {"reference": PATIENT_REF}, "date": "not a date",
            "recommendation": [{"forecastStatus": {"text": "due"}}]}


def aza_contained() -> Resource:
    order = azathioprine(medication_reference="#aza")
    order["contained"] = [medication(mid="aza")]
    return order


@dataclass(frozen=True)
class Scenario:
    situation: str
    resources: tuple[Resource, ...]
    expect: frozenset[str]
    ordering_context: bool = False


def S(situation: str, resources: list[Resource], *expect: str, ordering_context: bool = False) -> Scenario:
    return Scenario(situation, tuple(resources), frozenset(expect), ordering_context)


HOLD_LIVE = "live-vaccine-planned = hold/critical"
AMBIGUOUS = "ambiguous-vaccine-planned = caution/high"
INACTIVATED = "inactivated-vaccine-planned = caution/info"
OK = "no-vaccine-planned = ok/info"

SCENARIOS = [
    # --- live vaccines planned or ordered ---
    S("MMR is due while the patient takes azathioprine",
      [azathioprine(), recommendation("03")], HOLD_LIVE),
    S("MMR is overdue while on azathioprine",
      [azathioprine(), recommendation("03", forecast="overdue")], HOLD_LIVE),
    S("Yellow fever vaccine ordered as a medication while on azathioprine",
      [azathioprine(), vaccine_order("37")], HOLD_LIVE),
    S("Live zoster vaccine (Zostavax) ordered as a procedure while on azathioprine",
      [azathioprine(), vaccine_order("121", resource="ServiceRequest")], HOLD_LIVE),
    S("Nasal flu vaccine drafted in an order-sign workflow while on azathioprine",
      [azathioprine(), vaccine_order("111", status="draft")], HOLD_LIVE, ordering_context=True),
    S("Yellow fever vaccine planned by name only (no CVX code) while on azathioprine",
      [azathioprine(), recommendation(None, text="Yellow fever vaccine")], HOLD_LIVE),
    S("MMR due while azathioprine is paused (order on hold)",
      [azathioprine(status="on-hold"), recommendation("03")], HOLD_LIVE),
    S("MMR due; azathioprine identified only through a referenced Medication",
      [medication(mid="aza-ref"), azathioprine(medication_reference="Medication/aza-ref"),
       recommendation("03")], HOLD_LIVE),
    S("MMR due; azathioprine identified through a contained Medication",
      [aza_contained(), recommendation("03")], HOLD_LIVE),
    S("MMR due; azathioprine order recognised by its name Imuran only",
      [azathioprine(code=None, text="Imuran 50 mg tablets"), recommendation("03")], HOLD_LIVE),
    S("MMR recommendation already complete: nothing planned",
      [azathioprine(), recommendation("03", forecast="complete")], OK),
    S("Yellow fever order cancelled: nothing planned",
      [azathioprine(), vaccine_order("37", status="cancelled")], OK),
    # --- after stopping azathioprine ---
    S("MMR due 89 days after azathioprine was stopped (inside the 90-day wait)",
      [azathioprine(status="stopped", started_days_ago=400, ended_days_ago=89), recommendation("03")],
      HOLD_LIVE),
    S("MMR due 91 days after azathioprine was stopped (wait over)",
      [azathioprine(status="stopped", started_days_ago=400, ended_days_ago=91), recommendation("03")],
      "not-on-azathioprine = not-applicable/info"),
    S("MMR due; azathioprine stopped on an unrecorded date",
      [azathioprine(status="stopped"), recommendation("03")],
      "live-vaccine-stop-date-unknown = caution/high"),
    S("Shingrix due 30 days after azathioprine was stopped",
      [azathioprine(status="stopped", started_days_ago=400, ended_days_ago=30), recommendation("187")],
      INACTIVATED),
    # --- products we cannot classify ---
    S("Vaccine planned with a CVX code in no list (999)",
      [azathioprine(), recommendation("999")], AMBIGUOUS),
    S("Zoster vaccine planned without saying which product (CVX 188)",
      [azathioprine(), recommendation("188")], AMBIGUOUS),
    S("'Travel vaccine' planned with no code at all",
      [azathioprine(), recommendation(None, text="Travel vaccine")], AMBIGUOUS),
    # --- non-live vaccines ---
    S("Shingrix (recombinant zoster) due while on azathioprine",
      [azathioprine(), recommendation("187")], INACTIVATED),
    S("JYNNEOS (mpox, non-replicating) ordered while on azathioprine: not a hold",
      [azathioprine(), vaccine_order("206")], INACTIVATED),
    S("Injectable flu vaccine due while on azathioprine",
      [azathioprine(), recommendation("158")], INACTIVATED),
    S("MMR and Shingrix both due while on azathioprine",
      [azathioprine(), recommendation("03"), recommendation("187")], HOLD_LIVE, INACTIVATED),
    # --- vaccines already given ---
    S("MMR given 10 days ago, during azathioprine therapy",
      [azathioprine(started_days_ago=200), immunization("03", days_ago=10)],
      "live-vaccine-given = caution/high"),
    S("MMR recorded as not done during therapy: not a dose",
      [azathioprine(), immunization("03", days_ago=10, status="not-done")], OK),
    S("MMR dose entered in error: ignored",
      [azathioprine(), immunization("03", days_ago=10, status="entered-in-error")], OK),
    S("Azathioprine started 27 days after a varicella vaccine (advised gap 28 days)",
      [azathioprine(started_days_ago=10), immunization("21", days_ago=37)],
      "started-soon-after-live-vaccine = caution/moderate"),
    S("Azathioprine started 29 days after a varicella vaccine: gap respected",
      [azathioprine(started_days_ago=10), immunization("21", days_ago=39)], OK),
    S("Azathioprine started 10 days after yellow fever vaccine (inside the 2-week avoid window)",
      [azathioprine(started_days_ago=5), immunization("37", days_ago=15)],
      "started-soon-after-live-vaccine = caution/high"),
    S("Shingrix given 10 days before azathioprine started: fine",
      [azathioprine(started_days_ago=5), immunization("187", days_ago=15)], OK),
    # --- nothing to do, cannot tell, not applicable ---
    S("On azathioprine, no vaccine planned or ordered",
      [azathioprine()], OK),
    S("Not on azathioprine: MMR due is not this rule's business",
      [recommendation("03")], "not-on-azathioprine = not-applicable/info"),
    S("An active order's medication cannot be found, MMR due: cannot tell whether on azathioprine",
      [drug("x", "unknown", medication_reference="Medication/missing"), recommendation("03")],
      "medication-unknown = cannot-evaluate/moderate"),
    S("On azathioprine, an Immunization record cannot be read",
      [azathioprine(), unreadable_immunization()], "vaccine-record-unreadable = cannot-evaluate/moderate"),
    S("MMR due and an unreadable recommendation: hold, and say what could not be read",
      [azathioprine(), recommendation("03"), unreadable_recommendation()],
      HOLD_LIVE, "vaccine-record-unreadable = cannot-evaluate/moderate"),
]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.situation for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    found = run(*scenario.resources, ordering_context=scenario.ordering_context)
    assert verdicts(found) == set(scenario.expect)


def test_every_finding_belongs_to_the_rule_and_fits_a_card() -> None:
    for scenario in SCENARIOS:
        for f in run(*scenario.resources, ordering_context=scenario.ordering_context):
            assert f.rule == "vaccination-hold"
            assert len(said(f).summary) < 140


# --- what the findings say ------------------------------------------------------------------


def test_live_hold_implicates_azathioprine_and_the_vaccine_plan() -> None:
    aza, rec = azathioprine(rid="aza-1"), recommendation("03")
    (f,) = run(aza, rec)
    assert set(f.implicated) == {"MedicationRequest/aza-1", f"ImmunizationRecommendation/{rec['id']}"}
    assert "MMR" in said(f).summary


def test_name_only_live_match_says_so() -> None:
    (f,) = run(azathioprine(), recommendation(None, text="Yellow fever vaccine"))
    assert "by name only" in said(f).detail
    assert any("by name only" in e.description for e in f.evidence)


def test_unknown_cvx_code_is_named_and_never_auto_cleared() -> None:
    (f,) = run(azathioprine(), recommendation("999"))
    assert "CVX 999 is in no vaccine list" in said(f).detail
    assert "never cleared" in said(f).detail
    assert f.missing


def test_recent_stop_detail_gives_the_stop_date_and_days() -> None:
    (f,) = run(azathioprine(status="stopped", started_days_ago=400, ended_days_ago=89), recommendation("03"))
    assert "89 days ago" in said(f).detail
    assert "4 Aug 2026" in said(f).detail


def test_stop_date_unknown_asks_for_it() -> None:
    aza = azathioprine(status="stopped", rid="aza-stopped")
    (f,) = run(aza, recommendation("03"))
    assert "confirm" in said(f).summary.lower()
    assert f.missing == ("the stop date of the azathioprine 50 MG Oral Tablet order of 15 Apr 2026",)


def test_low_dose_tier_is_context_only_and_keeps_the_hold() -> None:
    # 50 mg twice daily, 70 kg: 1.4 mg/kg/day, low-level immunosuppression.
    weight = observation("29463-7", 70, "kg", days_ago=20)
    (f,) = run(azathioprine(dose_mg=50, per_day=2), weight, recommendation("03"))
    assert (f.status, f.severity) == ("hold", "critical")
    assert "1.4 mg/kg/day: low-level" in said(f).detail


def test_high_dose_tier_is_named() -> None:
    # 150 mg twice daily, 70 kg: 4.3 mg/kg/day.
    weight = observation("29463-7", 70, "kg", days_ago=20)
    (f,) = run(azathioprine(dose_mg=150, per_day=2), weight, recommendation("03"))
    assert "4.3 mg/kg/day: high-level" in said(f).detail


def test_no_tier_without_a_recent_weight() -> None:
    (f,) = run(azathioprine(), observation("29463-7", 70, "kg", days_ago=400), recommendation("03"))
    assert "mg/kg/day" not in said(f).detail


def test_future_dated_weight_gives_no_tier() -> None:
    # A weight dated next month (a typo in the year, a wrong clock) is not this patient's weight today.
    future = observation("29463-7", 70, "kg", days_ago=-30)
    (f,) = run(azathioprine(dose_mg=150, per_day=2), future, recommendation("03"))
    assert (f.status, f.severity) == ("hold", "critical")
    assert "mg/kg/day" not in said(f).detail


def test_implausible_weight_gives_no_tier() -> None:
    # 70 000 "kg" (grams sent as kg) would make 300 mg/day look like a tiny dose.
    (f,) = run(azathioprine(dose_mg=150, per_day=2), observation("29463-7", 70000, "kg", days_ago=5),
               recommendation("03"))
    assert "mg/kg/day" not in said(f).detail


def test_ok_says_only_recorded_plans_were_checked() -> None:
    aza = azathioprine(rid="aza-ok")
    (f,) = run(aza)
    assert "Only recorded plans were checked" in said(f).detail
    assert [e.reference for e in f.evidence] == ["MedicationRequest/aza-ok"]


def test_started_soon_after_live_vaccine_gives_the_gap() -> None:
    (f,) = run(azathioprine(started_days_ago=10), immunization("21", days_ago=37))
    assert "27 days after" in said(f).summary


def test_live_vaccine_given_before_a_second_course_is_judged_against_that_course() -> None:
    # First course ended long ago; varicella 20 days before the new course began.
    old = azathioprine(status="completed", started_days_ago=900, ended_days_ago=700)
    new = azathioprine(started_days_ago=5)
    (f,) = run(old, new, immunization("21", days_ago=25))
    assert f.code == "started-soon-after-live-vaccine"


def test_classify_prefers_the_most_restrictive_of_two_codes() -> None:
    rec = recommendation("187")
    rec["recommendation"][0]["vaccineCode"][0]["coding"].append({"system": CVX, "code": "121"})
    (f,) = run(azathioprine(), rec)
    assert f.code == "live-vaccine-planned"


def test_rule_is_pure_same_input_same_output() -> None:
    resources = (azathioprine(), recommendation("03"), immunization("21", days_ago=400))
    record = record_of(*resources)
    m = load_mappings()
    assert vaccination.evaluate(record, m, NOW) == vaccination.evaluate(record, m, NOW)


def _with_post_stop_wait(days: float) -> Mappings:
    m = load_mappings()
    vacc = m.policy.vaccination
    wait = replace(vacc.post_stop_live_wait_days, value=days)
    vacc = replace(vacc, post_stop_live_wait_days=wait)
    return replace(m, policy=replace(m.policy, vaccination=vacc))


@pytest.mark.parametrize(("stopped_days_ago", "expected"), [
    (59, "live-vaccine-planned = hold/critical"),
    (61, "live-vaccine-after-wait = caution/low"),
])
def test_post_stop_wait_comes_from_mappings(stopped_days_ago: int, expected: str) -> None:
    # A site configuring a 60-day wait: stopped 59 days ago still holds, 61 days ago does not.
    record = record_of(azathioprine(status="stopped", started_days_ago=400, ended_days_ago=stopped_days_ago),
                       recommendation("03"))
    assert verdicts(vaccination.evaluate(record, _with_post_stop_wait(60), NOW)) == {expected}
