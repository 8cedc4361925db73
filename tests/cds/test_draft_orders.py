"""order-select / order-sign: draft vaccines for patients on azathioprine, and azathioprine started now."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cds.conftest import Caller
from tests.cds.hookdata import body, draft_azathioprine, draft_vaccine, retarget, sandbox_chart
from tests.clinical import builders as b

SELECT, SIGN = "azaguard-order-select", "azaguard-order-sign"


def _draft(resource: dict[str, Any], pid: str) -> dict[str, Any]:
    return retarget(resource, pid)


def _cards(call: Caller, service: str, pid: str, drafts: list[dict[str, Any]], *,
           chart: list[dict[str, Any]] | None = None, selections: list[str] | None = None) -> list[dict[str, Any]]:
    hook = "order-select" if service == SELECT else "order-sign"
    r = call(service, body(hook, chart if chart is not None else sandbox_chart(pid), patient_id=pid,
                           drafts=[_draft(d, pid) for d in drafts], selections=selections))
    assert r.status_code == 200, r.text
    cards: list[dict[str, Any]] = r.json()["cards"]
    return cards


@pytest.mark.parametrize(("vaccine", "resource"), [
    (("03", "MMR"), "MedicationRequest"),
    (("21", "varicella"), "ServiceRequest"),
    (("37", "yellow fever"), "Immunization"),
    ((None, "Varivax varicella vaccine live"), "MedicationRequest"),  # named, not coded
    (("111", "influenza, live, intranasal"), "MedicationRequest"),
    (("90716", "varicella virus vaccine, live", "http://www.ama-assn.org/go/cpt"), "ServiceRequest"),  # CPT
])
def test_live_vaccine_draft_on_azathioprine_is_critical_with_a_delete_suggestion(
    call: Caller, vaccine: tuple[str | None, ...], resource: str
) -> None:
    code, name = vaccine[0], str(vaccine[1])
    draft = (draft_vaccine(code, name, resource=resource, system=str(vaccine[2])) if len(vaccine) > 2
             else draft_vaccine(code, name, resource=resource))
    ref = f"{resource}/draft-vax"
    cards = _cards(call, SELECT, "aza-stable", [draft], selections=[ref])
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert len(critical) == 1, cards
    card = critical[0]
    assert card["source"]["topic"]["code"] == "vaccination-hold"
    assert card["selectionBehavior"] == "at-most-one"
    [suggestion] = card["suggestions"]
    assert suggestion["actions"] == [{"type": "delete", "description": suggestion["actions"][0]["description"],
                                      "resourceId": ref}]
    assert suggestion["uuid"]
    codes = {r["code"] for r in card["overrideReasons"]}
    assert codes == {"prescriber-approved", "azathioprine-stopped-long-enough", "other"}
    assert all(r["display"] for r in card["overrideReasons"])


def test_live_vaccine_within_the_post_stop_window_is_critical(call: Caller) -> None:
    cards = _cards(call, SIGN, "aza-stopped", [draft_vaccine("03", "MMR")])
    assert any(c["indicator"] == "critical" and c.get("suggestions") for c in cards), cards


def test_live_vaccine_for_a_patient_never_on_azathioprine_gives_no_card(call: Caller) -> None:
    assert _cards(call, SIGN, "aza-not-on", [draft_vaccine("03", "MMR")]) == []


def test_inactivated_vaccine_draft_is_a_warning_without_suggestion(call: Caller) -> None:
    cards = _cards(call, SIGN, "aza-stable", [draft_vaccine("187", "zoster recombinant (Shingrix)")])
    assert [c["indicator"] for c in cards] == ["warning"]
    assert "suggestions" not in cards[0] and "prescriber" in cards[0]["summary"]


def test_ambiguous_vaccine_draft_is_a_warning_offering_removal(call: Caller) -> None:
    cards = _cards(call, SIGN, "aza-stable", [draft_vaccine("188", "zoster, unspecified formulation")])
    assert [c["indicator"] for c in cards] == ["warning"]
    assert cards[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/draft-vax"


def test_order_select_reacts_to_selections_only_and_order_sign_to_all(call: Caller) -> None:
    drafts = [draft_vaccine("03", "MMR", rid="mmr"), draft_vaccine("187", "Shingrix", rid="shingrix")]
    selected = _cards(call, SELECT, "aza-stable", drafts, selections=["MedicationRequest/shingrix"])
    assert [c["indicator"] for c in selected] == ["warning"]
    absolute = _cards(call, SELECT, "aza-stable", drafts,
                      selections=["https://ehr.example.org/fhir/MedicationRequest/mmr"])
    assert [c["indicator"] for c in absolute] == ["critical"]
    signed = _cards(call, SIGN, "aza-stable", drafts)
    assert sorted(c["indicator"] for c in signed) == ["critical", "warning"]


FRESH = "aza-stable"


def _fresh(*extra: dict[str, Any]) -> list[dict[str, Any]]:
    return sandbox_chart(FRESH, without_azathioprine=True) + [retarget(x, FRESH) for x in extra]


def test_new_azathioprine_order_on_a_clean_chart_gives_no_card(call: Caller) -> None:
    assert _cards(call, SIGN, FRESH, [draft_azathioprine()], chart=_fresh()) == []


@pytest.mark.parametrize(("extra", "rule", "indicator"), [
    (b.immunization("03", days_ago=10), "vaccination-hold", "warning"),
    (b.drug("519", "allopurinol 100 MG Oral Tablet", started_days_ago=100), "interactions", "warning"),
    (b.drug("73689", "febuxostat 40 MG Oral Tablet", started_days_ago=100), "interactions", "critical"),
    (b.observation("8310-5", 38.6, "Cel", days_ago=0, hours_ago=3), "infection-hold", "critical"),
    (b.condition("233604007", "Pneumonia"), "infection-hold", "critical"),
    (b.observation("6690-2", 2.4, "10*3/uL", days_ago=0.5), "blood-counts", "critical"),
    (b.coded_observation("79713-4", "LA9657-3", "Poor metabolizer", days_ago=1), "tpmt", "critical"),
    (b.coded_observation("79713-4", "LA10317-8", "Intermediate metabolizer", days_ago=1), "tpmt", "warning"),
])
def test_new_azathioprine_order_is_checked_as_therapy_starting_now(
    call: Caller, extra: dict[str, Any], rule: str, indicator: str
) -> None:
    cards = _cards(call, SELECT, FRESH, [draft_azathioprine(), draft_vaccine("187", "Shingrix", rid="other")],
                   chart=_fresh(extra), selections=["MedicationRequest/draft-aza"])
    mine = [c for c in cards if c["source"]["topic"]["code"] == rule]
    assert mine and mine[0]["indicator"] == indicator, cards
    if indicator == "critical":
        actions = mine[0]["suggestions"][0]["actions"]
        assert actions[0]["resourceId"] == "MedicationRequest/draft-aza"
        assert {r["code"] for r in mine[0]["overrideReasons"]} >= {"prescriber-approved", "other"}



def test_a_new_azathioprine_order_with_a_live_vaccine_says_before_starting(call: Caller) -> None:
    """Not yet on azathioprine: the live vaccine must wait for the start, not "the patient is on azathioprine"."""
    cards = _cards(call, SIGN, FRESH, [draft_azathioprine(), draft_vaccine("03", "MMR", rid="mmr")], chart=_fresh())
    vaccine = [c for c in cards if c["source"]["topic"]["code"] == "vaccination-hold"]
    assert vaccine, cards
    for card in vaccine:
        text = f"{card['summary']} {card['detail']}".lower()
        assert "before starting azathioprine" in text and "the patient is on azathioprine" not in text, card


@pytest.mark.parametrize("unit", ["{pill}", "{tbl}"])
def test_a_draft_dosed_in_tablets_is_worked_out_from_the_product_strength(call: Caller, unit: str) -> None:
    """The sandbox doses its orders as "Number" x {pill}: the dose is that many 50 mg tablets, not an unknown
    unit. Two a day is within the maximum (no card); eight a day (400 mg) is over it, and the card says so."""
    def tablets(n: int) -> dict[str, Any]:
        draft = draft_azathioprine()
        draft["dosageInstruction"][0]["doseAndRate"] = [
            {"doseQuantity": {"value": n, "system": "http://unitsofmeasure.org", "code": unit}}]
        return draft

    assert _cards(call, SIGN, FRESH, [tablets(2)], chart=_fresh()) == []
    cards = _cards(call, SIGN, FRESH, [tablets(8)], chart=_fresh())
    dose = [c for c in cards if c["source"]["topic"]["code"] == "dose"]
    assert len(dose) == 1 and "mg/kg/day" in dose[0]["summary"], cards
    assert "unit" not in dose[0]["summary"].lower()


@pytest.mark.parametrize("code", [3, 197388.0, ["03"]])
def test_a_draft_whose_code_is_not_a_string_is_never_passed_as_safe(call: Caller, code: object) -> None:
    # FHIR codes are strings: 3 is not CVX "03" nor "3"; the draft is reported as unreadable, never as safe.
    draft = draft_vaccine("03", "MMR")
    draft["medicationCodeableConcept"]["coding"][0]["code"] = code
    [card] = _cards(call, SIGN, "aza-stable", [draft])
    assert "could not check 1 draft order" in card["summary"]
    assert "its medication cannot be read" in card["detail"]
