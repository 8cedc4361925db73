"""Signed but odd CDS input: 400/401 with a sentence, never a 500; the feedback that is valid is kept."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc import jwt
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.store import CdsStore
from azaguard.config import CdsClient, load_app_config
from azaguard.mappings import load_mappings
from tests.cds.conftest import BASE, EHR_ISS, Ehr

FEEDBACK = "/cds-services/azaguard-patient-view/feedback"
HOOK = "/cds-services/azaguard-patient-view"


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[TestClient, Ehr, CdsStore]]:
    ehr = Ehr()
    store = CdsStore(f"sqlite:///{tmp_path / 'cds.sqlite'}")
    config = load_app_config(public_base=BASE).model_copy(
        update={"cds_clients": (CdsClient(iss=EHR_ISS, jwks=ehr.jwks),)})
    service = CdsService(config, mappings=load_mappings(), store=store)
    with TestClient(Starlette(routes=cds_routes(service)), raise_server_exceptions=False) as client:
        yield client, ehr, store
    store.close()


def _signed(ehr: Ehr, path: str, **claims: Any) -> dict[str, str]:
    now = int(time.time())
    body = {"iss": EHR_ISS, "aud": BASE + path, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4()), **claims}
    token = jwt.encode({"alg": "ES384", "typ": "JWT", "kid": ehr.ec.kid}, body, ehr.ec, algorithms=["ES384"])
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


@pytest.mark.parametrize("claims", [{"exp": float("nan")}, {"iat": float("nan")}, {"exp": float("inf")},
                                    {"exp": 1e300}, {"iat": -1e300}])
def test_odd_time_claims_are_401(setup: tuple[TestClient, Ehr, CdsStore], claims: dict[str, Any]) -> None:
    client, ehr, _ = setup
    r = client.post(FEEDBACK, content=b'{"feedback": []}', headers=_signed(ehr, FEEDBACK, **claims))
    assert r.status_code == 401, r.text


def _feedback(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"feedback": items}).encode()


@pytest.mark.parametrize("timestamp", ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+14:00",
                                       "0001-01-01", "2026-02-30T00:00:00Z", "+275760-09-13T00:00:00Z"])
def test_timestamps_at_the_edge_of_the_calendar_are_400(setup: tuple[TestClient, Ehr, CdsStore],
                                                        timestamp: str) -> None:
    client, ehr, _ = setup
    item = {"card": "c1", "outcome": "overridden", "outcomeTimestamp": timestamp}
    r = client.post(FEEDBACK, content=_feedback([item]), headers=_signed(ehr, FEEDBACK))
    assert r.status_code == 400, r.text
    assert "outcomeTimestamp" in r.json()["message"]


@pytest.mark.parametrize("reason", [["a", "b"], {"code": {"nested": 1}, "display": ["x"], "system": 5},
                                    "just text", {"code": "x" * 10_000}])
def test_an_odd_override_reason_is_no_500_and_the_feedback_is_kept(setup: tuple[TestClient, Ehr, CdsStore],
                                                                   reason: Any) -> None:
    client, ehr, store = setup
    item = {"card": "c1", "outcome": "overridden", "outcomeTimestamp": "2026-11-01T10:00:00Z",
            "overrideReason": {"reason": reason, "userComment": {"not": "a string"}}}
    r = client.post(FEEDBACK, content=_feedback([item]), headers=_signed(ehr, FEEDBACK))
    assert r.status_code == 200, r.text
    from datetime import UTC, datetime

    rows = store.feedback_since(datetime(2026, 1, 1, tzinfo=UTC))
    assert [(row.card, row.outcome) for row in rows] == [("c1", "overridden")]
    assert all(isinstance(v, str | None) for v in (rows[0].reason_code, rows[0].reason_display))
    assert rows[0].reason_code is None or len(rows[0].reason_code) <= 200
