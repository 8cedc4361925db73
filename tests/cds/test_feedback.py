"""Feedback: stored durably (SQLAlchemy) and queried with `azaguard feedback --since` (table, CSV)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from azaguard.cli import main
from tests.cds.conftest import Caller, Ehr
from tests.cds.hookdata import body, draft_vaccine, retarget, sandbox_chart

SIGN = "azaguard-order-sign"


def _feedback(client: TestClient, ehr: Ehr, entries: list[dict[str, Any]], service: str = SIGN) -> Any:
    path = f"/cds-services/{service}/feedback"
    return client.post(path, content=json.dumps({"feedback": entries}),
                       headers={**ehr.headers(path), "Content-Type": "application/json"})


def test_feedback_is_stored_joined_to_its_card_and_reported(
    call: Caller, client: TestClient, ehr: Ehr, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    drafts = [retarget(draft_vaccine("03", "MMR"), "aza-stable")]
    cards = call(SIGN, body("order-sign", sandbox_chart("aza-stable"), patient_id="aza-stable", drafts=drafts)).json()
    card = cards["cards"][0]
    suggestion = card["suggestions"][0]["uuid"]
    reason = card["overrideReasons"][0]
    r = _feedback(client, ehr, [
        {"card": card["uuid"], "outcome": "accepted", "acceptedSuggestions": [{"id": suggestion}],
         "outcomeTimestamp": "2026-11-01T12:05:00Z"},
        {"card": card["uuid"], "outcome": "overridden", "overrideReason": {"reason": reason, "userComment": "travel"},
         "outcomeTimestamp": "2026-11-01T12:06:00Z"},
        {"card": "unknown-card", "outcome": "overridden", "outcomeTimestamp": "2026-10-01T00:00:00Z"},
    ])
    assert r.status_code == 200 and r.json() == {"stored": 3}

    db = f"sqlite:///{tmp_path / 'cds.sqlite'}"
    assert main(["feedback", "--since", "2026-11-01", "--database", db]) == 0
    table = capsys.readouterr().out
    assert "vaccination-hold" in table and "Prescriber approved" in table and "travel" in table
    assert "2 feedback entries: 1 accepted, 1 overridden" in table
    assert main(["feedback", "--since", "2026-09-01", "--format", "csv", "--database", db]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["outcome"] for r in rows] == ["overridden", "accepted", "overridden"]
    assert rows[0]["rule"] == "(unknown card)"
    assert rows[2]["reason"] == "Prescriber approved" and rows[2]["code"] == "live-vaccine-planned"


def test_malformed_or_unsigned_feedback_is_refused(client: TestClient, ehr: Ehr) -> None:
    path = f"/cds-services/{SIGN}/feedback"
    assert client.post(path, content=b"{}").status_code == 401
    for bad in ([], [{"outcome": "accepted"}], [{"card": "c", "outcome": "ignored"}],
                [{"card": "c", "outcome": "accepted", "outcomeTimestamp": "yesterday"}]):
        assert _feedback(client, ehr, bad).status_code == 400, bad
