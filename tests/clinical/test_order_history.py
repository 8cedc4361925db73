"""Fewer false alarms from order history: a renewal is not a new start; the same order twice is one order.

The monitoring schedule reads the therapy's start: a renewal counted as a start would ask for weekly
blood counts in a patient treated for years. Boundaries of the renewal gap (7 days, mappings) each side.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import resource_set_from_json
from azaguard.rules.common import therapy
from tests.clinical.builders import NOW, when
from tests.clinical.test_medicines_independent_pass import aza, transaction

M = load_mappings()


def start_of(*orders: dict[str, Any]) -> datetime | None:
    record = build_record(resource_set_from_json(transaction(*orders)), M)
    return therapy(record, M, NOW).start


def old_order(ended_days_ago: float, **kw: Any) -> dict[str, Any]:
    return aza(status="completed", days_ago=400, dispenseRequest={
        "validityPeriod": {"start": when(days_ago=400), "end": when(days_ago=ended_days_ago)}}, **kw)


@pytest.mark.parametrize(("gap_days", "renewal"), [(0, True), (6, True), (7, True), (8, False), (-3, True)])
def test_an_order_begun_within_the_gap_of_the_last_ones_end_renews_it(gap_days: float, renewal: bool) -> None:
    """The old order ended (5 + gap) days ago; the new one began 5 days ago."""
    start = start_of(old_order(5 + gap_days), aza(days_ago=5))
    assert start == NOW - timedelta(days=400 if renewal else 5)


def test_prior_prescription_links_a_renewal_whatever_the_gap() -> None:
    old = old_order(60, rid="aza-first")
    new = aza(days_ago=5, priorPrescription={"reference": "MedicationRequest/aza-first"})
    assert start_of(old, new) == start_of(old_order(5), aza(days_ago=5))


def test_a_chain_of_renewals_goes_back_to_the_first() -> None:
    first = aza(status="completed", days_ago=400, dispenseRequest={
        "validityPeriod": {"start": when(days_ago=400), "end": when(days_ago=200)}})
    second = aza(status="completed", days_ago=200, dispenseRequest={
        "validityPeriod": {"start": when(days_ago=200), "end": when(days_ago=5)}})
    assert start_of(first, second, aza(days_ago=5)) == start_of(old_order(5), aza(days_ago=5))


def test_an_order_stopped_long_ago_does_not_make_a_restart_old() -> None:
    """Stopped 6 months ago, restarted 5 days ago: a new start (weekly monitoring again)."""
    assert start_of(old_order(180), aza(days_ago=5)) == start_of(aza(days_ago=5))


def test_an_entered_in_error_order_is_no_predecessor() -> None:
    bad = aza(status="entered-in-error", days_ago=400)
    assert start_of(bad, aza(days_ago=5)) == start_of(aza(days_ago=5))
