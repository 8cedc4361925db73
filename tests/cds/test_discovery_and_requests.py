"""Discovery, patient-view with full prefetch, 412 without data, 400 for malformed calls."""

from __future__ import annotations

import json
from typing import Any

from starlette.testclient import TestClient

from tests.cds.conftest import Caller, Ehr
from tests.cds.hookdata import body, full_prefetch, sandbox_chart

PV = "azaguard-patient-view"


def test_discovery_lists_the_three_services_with_prefetch(client: TestClient, ehr: Ehr) -> None:
    r = client.get("/cds-services", headers=ehr.headers("/cds-services"))
    assert r.status_code == 200
    services = {s["id"]: s for s in r.json()["services"]}
    assert {k: s["hook"] for k, s in services.items()} == {
        "azaguard-patient-view": "patient-view", "azaguard-order-select": "order-select",
        "azaguard-order-sign": "order-sign"}
    prefetch = services[PV]["prefetch"]
    assert prefetch["patient"] == "Patient/{{context.patientId}}"
    assert set(prefetch) >= {"medicationOrders", "observations", "conditions", "immunizations",
                             "immunizationRecommendations", "serviceRequests"}
    assert "_include=MedicationRequest:medication" in prefetch["medicationOrders"]
    assert all("{{context.patientId}}" in t for t in prefetch.values())
    assert all(s["description"] and s["usageRequirements"] for s in services.values())


def test_discovery_unsigned_is_refused(client: TestClient) -> None:
    assert client.get("/cds-services").status_code == 401


def test_patient_view_on_azathioprine_with_a_live_vaccine_due(call: Caller) -> None:
    r = call(PV, body("patient-view", sandbox_chart("aza-mmr-due"), patient_id="aza-mmr-due"))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    assert [c["indicator"] for c in cards] == ["critical"]
    card = cards[0]
    assert "MMR" in card["summary"] and len(card["summary"]) < 140
    assert card["source"]["label"] == "azaguard" and card["source"]["topic"]["code"] == "vaccination-hold"
    assert card["links"][0]["type"] == "smart" and card["links"][0]["url"].endswith("/app/launch")
    assert "**Evidence**" in card["detail"] and "Live vaccine planned: MMR" in card["detail"]
    assert "ImmunizationRecommendation/" not in card["detail"]  # no FHIR id in text for people
    assert "suggestions" not in card and "selectionBehavior" not in card
    _no_empty(cards)


def test_patient_view_cards_are_warning_for_caution_and_none_for_stable_or_not_on(call: Caller) -> None:
    stable = call(PV, body("patient-view", sandbox_chart("aza-stable"), patient_id="aza-stable"))
    assert stable.json() == {"cards": []}
    not_on = call(PV, body("patient-view", sandbox_chart("aza-not-on"), patient_id="aza-not-on"))
    assert not_on.json() == {"cards": []}  # febrile and MMR due, but not on azathioprine
    tpmt = call(PV, body("patient-view", sandbox_chart("aza-cbc-overdue"), patient_id="aza-cbc-overdue"))
    indicators = {c["indicator"] for c in tpmt.json()["cards"]}
    assert indicators == {"warning"}


def test_card_uuids_are_stable_for_one_hook_instance(call: Caller) -> None:
    b = body("patient-view", sandbox_chart("aza-febrile-c"), patient_id="aza-febrile-c")
    first = [c["uuid"] for c in call(PV, b).json()["cards"]]
    second = [c["uuid"] for c in call(PV, b).json()["cards"]]
    assert first and first == second
    b["hookInstance"] = "another-instance"
    assert [c["uuid"] for c in call(PV, b).json()["cards"]] != first


def test_null_prefetch_means_no_data_but_a_missing_key_without_fhir_access_is_412(call: Caller) -> None:
    chart = sandbox_chart("aza-stable")
    nulls = {k: (v if k in ("patient", "medicationOrders") else None) for k, v in full_prefetch(chart).items()}
    r = call(PV, body("patient-view", chart, patient_id="aza-stable", prefetch=nulls))
    assert r.status_code == 200
    assert any(c["indicator"] == "warning" for c in r.json()["cards"])  # no labs: cannot evaluate, said
    r = call(PV, body("patient-view", chart, patient_id="aza-stable",
                      prefetch=full_prefetch(chart, leave_out=("observations",))))
    assert r.status_code == 412 and "observations" in r.json()["message"]
    r = call(PV, body("patient-view", chart, patient_id="aza-stable", prefetch={}))
    assert r.status_code == 412


def test_malformed_calls_are_400_never_500(call: Caller) -> None:
    chart = sandbox_chart("aza-stable")
    good = body("patient-view", chart, patient_id="aza-stable")
    bad: list[Any] = [
        b"not json", b"[1, 2]",
        {k: v for k, v in good.items() if k != "context"},
        {k: v for k, v in good.items() if k != "hook"},
        {**good, "hook": "order-sign"},
        {**good, "context": {"userId": "x"}},
        {**good, "context": {"patientId": "../etc"}},
        {**good, "prefetch": ["x"]},
        {**good, "prefetch": {**good["prefetch"], "patient": {"resourceType": "Patient", "id": "someone-else"}}},
        {**good, "fhirAuthorization": "token"},
    ]
    for b in bad:
        r = call(PV, b)
        assert r.status_code == 400, (b if isinstance(b, bytes) else json.dumps(b)[:200], r.text)
        assert r.json()["message"]
    assert call("no-such-service", good).status_code == 404


def _no_empty(value: Any) -> None:
    """CDS Hooks JSON omits empty optional fields: no null, "", [], {}."""
    if isinstance(value, dict):
        for v in value.values():
            assert v not in (None, "", [], {}), value
            _no_empty(v)
    elif isinstance(value, list):
        for v in value:
            _no_empty(v)


def test_the_observation_date_bound_the_template_cannot_carry_is_applied_on_arrival() -> None:
    from azaguard.cds.discovery import SERVICES
    from azaguard.cds.prefetch import Templates, assemble, default_client_factory
    from azaguard.cds.request import parse_request
    from azaguard.mappings import load_mappings
    from tests.clinical import builders as b

    m = load_mappings()
    old = b.observation("6690-2", 2.0, "10*3/uL", days_ago=900, rid="old-wbc")
    recent = b.observation("6690-2", 6.0, "10*3/uL", days_ago=3, rid="recent-wbc")
    undated = {k: v for k, v in b.observation("6690-2", 6.0, "10*3/uL", rid="undated-wbc").items()
               if k != "effectiveDateTime"}
    chart = [b.patient(), b.azathioprine(), old, recent, undated]
    request = parse_request(json.dumps(body("patient-view", chart)).encode(), SERVICES[PV])
    got = assemble(request, Templates(m), m, b.NOW, default_client_factory())
    refs = {f"{r['resourceType']}/{r['id']}" for r in got.resources.resources}
    assert {"Observation/recent-wbc", "Observation/undated-wbc"} <= refs
    assert "Observation/old-wbc" not in refs
