"""When do the rules apply at all? Therapy status, name-only matches, unreadable orders."""

from __future__ import annotations

import pytest

from azaguard.findings import RULE_IDS
from tests.clinical.builders import azathioprine, drug, findings, medication_request


def headlines(*resources: dict[str, object], ordering_context: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    for f in findings(*resources, ordering_context=ordering_context):
        out.setdefault(f.rule, str(f.status))
    return out


def test_no_azathioprine_means_not_applicable_for_every_rule() -> None:
    assert set(headlines(drug("316049", "Hydrochlorothiazide 25 MG")).values()) == {"not-applicable"}


@pytest.mark.parametrize("status", ["entered-in-error", "cancelled"])
def test_orders_entered_in_error_or_cancelled_never_count(status: str) -> None:
    assert set(headlines(azathioprine(status=status)).values()) == {"not-applicable"}


def test_an_on_hold_order_is_current_therapy() -> None:
    assert headlines(azathioprine(status="on-hold"))["infection-hold"] != "not-applicable"


def test_a_draft_order_counts_only_inside_an_ordering_workflow() -> None:
    assert set(headlines(azathioprine(status="draft")).values()) == {"not-applicable"}
    assert headlines(azathioprine(status="draft"), ordering_context=True)["infection-hold"] != "not-applicable"


def test_an_order_known_only_by_its_brand_name_counts_and_says_so() -> None:
    order = medication_request(None, text="Imuran 50mg tablets (local formulary)")
    found = [f for f in findings(order) if f.rule == "vaccination-hold"]
    assert found[0].status != "not-applicable"
    assert any("matched by name only" in e.description for e in found[0].evidence)


def test_an_active_order_whose_medication_cannot_be_found_makes_every_rule_cannot_evaluate() -> None:
    # It might be azathioprine: "not on azathioprine" cannot be concluded.
    order = medication_request(medication_reference="Medication/missing")
    heads = headlines(order)
    assert set(heads) == set(RULE_IDS)
    assert set(heads.values()) == {"cannot-evaluate"}


def test_an_unreadable_medication_request_that_may_be_azathioprine_is_not_ignored() -> None:
    broken = azathioprine()
    broken["dosageInstruction"] = "twice daily"  # invalid: must be a list of Dosage
    assert set(headlines(broken).values()) == {"cannot-evaluate"}
