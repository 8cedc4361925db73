"""A card speaks the verdict's words: its summary is the verdict action's summary."""

from __future__ import annotations

from datetime import UTC, datetime

from azaguard.cds.cards import Links, finding_card
from azaguard.findings import Finding, Severity, Status
from azaguard.mappings import load_mappings
from azaguard.verdict import action_of


def test_hold_card_summary_is_the_verdict_action_summary() -> None:
    m = load_mappings()
    now = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    f = Finding(rule="infection-hold", code="fever", status=Status.HOLD, severity=Severity.HIGH,
                mappings_version=m.version)
    card = finding_card(f, card_uuid="u", links=Links(None, None), now=now, mappings=m)
    action = action_of(f, now, m, relative_dates=False)
    assert card["summary"] == action.summary and card["detail"].startswith(action.detail[:40])
    assert card["indicator"] == "critical" and len(card["summary"]) < 140
