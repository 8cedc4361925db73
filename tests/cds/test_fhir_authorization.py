"""Partial prefetch + fhirAuthorization against the real local FHIR server (sekmet-fhir): what the
prefetch left out is fetched in one round trip, and the cards are those of a full prefetch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from azaguard.cds.app import CdsService
from azaguard.cds.discovery import SERVICES
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.hooks import run_hook
from azaguard.cds.request import parse_request
from azaguard.fhir.client import FhirClient
from tests.cds.conftest import FHIR_LISTED, Caller
from tests.cds.hookdata import body, draft_vaccine, full_prefetch, retarget, sandbox_chart
from tests.clinical.builders import NOW

pytestmark = pytest.mark.integration
# Own ids ("cdsit-…"), so other tests' copies of the sandbox patients are left alone.
PID = "cdsit-mmr-due"


def _chart() -> list[dict[str, Any]]:
    return [json.loads(json.dumps(r).replace("aza-mmr-due", PID)) for r in sandbox_chart("aza-mmr-due")]


@pytest.fixture(scope="module")
def fhir_base(fhir_server: Any) -> Iterator[str]:
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in _chart()]
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(entries)
    yield fhir_server.base_url


def _auth(base: str) -> dict[str, Any]:
    return {"fhirServer": base, "fhirAuthorization": {
        "access_token": "opaque-token", "token_type": "Bearer", "expires_in": 300,
        "scope": "patient/*.read", "subject": "azaguard"}}


def _summaries(cards: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted((c["indicator"], c["summary"]) for c in cards)


@pytest.mark.parametrize(("service", "hook"), [
    ("azaguard-patient-view", "patient-view"),
    ("azaguard-order-select", "order-select"),
    ("azaguard-order-sign", "order-sign"),
])
def test_partial_prefetch_is_completed_from_the_fhir_server(call: Caller, fhir_base: str, service: str,
                                                            hook: str) -> None:
    chart = _chart()
    drafts = [retarget(draft_vaccine("21", "varicella"), PID)] if hook != "patient-view" else None
    selections = ["MedicationRequest/draft-vax"] if hook == "order-select" else None
    full = call(service, body(hook, chart, patient_id=PID, drafts=drafts, selections=selections))
    partial_prefetch = full_prefetch(chart, leave_out=("observations", "medicationOrders",
                                                       "immunizationRecommendations"))
    partial = call(service, body(hook, chart, patient_id=PID, drafts=drafts, selections=selections,
                                 prefetch=partial_prefetch, **_auth(fhir_base)))
    assert partial.status_code == 200, partial.text
    assert _summaries(partial.json()["cards"]) == _summaries(full.json()["cards"])
    assert any(c["indicator"] == "critical" for c in partial.json()["cards"])
    none = call(service, body(hook, chart, patient_id=PID, drafts=drafts, selections=selections,
                              prefetch={}, **_auth(fhir_base)))
    assert _summaries(none.json()["cards"]) == _summaries(full.json()["cards"])


def test_one_round_trip_per_call(make_service: Any, fhir_base: str) -> None:
    service: CdsService = make_service()
    request = parse_request(json.dumps(body("patient-view", _chart(), patient_id=PID, prefetch={},
                                            **_auth(fhir_base))).encode(), SERVICES["azaguard-patient-view"])
    results = [run_hook(SERVICES["azaguard-patient-view"], request, templates=service.templates,
                        mappings=service.mappings, now=NOW, clients=service.clients, links=service.links,
                        policy=FetchPolicy((FHIR_LISTED,)))
               for _ in range(2)]
    assert [r.requests for r in results] == [1, 1]  # one batch, no CapabilityStatement on the hot path
    assert "observations" in results[1].fetched


def test_an_unreachable_fhir_server_is_412(call: Caller) -> None:
    r = call("azaguard-patient-view", body("patient-view", _chart(), patient_id=PID, prefetch={},
                                           **_auth("http://127.0.0.1:9/fhir")))
    assert r.status_code == 412
