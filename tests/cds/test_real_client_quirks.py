"""Recorded requests in the shapes the reference CDS Hooks sandbox sends: draftOrders Bundle without
type, a first draft MedicationRequest without intent or medication, category as an object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from azaguard.cds.discovery import prefetch_templates
from azaguard.mappings import load_mappings
from tests.cds.conftest import Caller

RECORDED = Path(__file__).parent / "recorded"


def _recorded(name: str) -> dict[str, Any]:
    """A recorded request; prefetch keys the service advertised after it was recorded are sent as null ("no
    data"), as an EHR that knows them but holds nothing would."""
    data: dict[str, Any] = json.loads((RECORDED / name).read_text())
    for key in prefetch_templates(load_mappings()):
        data.setdefault("prefetch", {}).setdefault(key, None)
    return data


def test_sandbox_order_select_is_evaluated_what_is_readable(call: Caller) -> None:
    r = call("azaguard-order-select", _recorded("sandbox-order-select.json"))
    assert r.status_code == 200, r.text
    cards = r.json()["cards"]
    critical = [c for c in cards if c["indicator"] == "critical"]
    assert len(critical) == 1, cards  # the MMR vaccine, named and coded in RxNorm only
    assert critical[0]["suggestions"][0]["actions"][0]["resourceId"] == "MedicationRequest/request-456"


def test_an_empty_draft_gets_no_card(call: Caller) -> None:
    """The sandbox sends a draft with no medication whenever its order screen opens, and again after a remove
    suggestion was taken: nothing is ordered, so there is nothing to say."""
    body = _recorded("sandbox-order-select.json")
    body["hook"] = "order-sign"
    r = call("azaguard-order-sign", body)
    assert r.status_code == 200, r.text
    assert [c for c in r.json()["cards"] if c["indicator"] == "info"] == []
    only_empty = _recorded("sandbox-order-select.json")
    only_empty["context"]["draftOrders"]["entry"] = only_empty["context"]["draftOrders"]["entry"][:1]
    only_empty["context"]["selections"] = ["MedicationRequest/request-123"]
    for service in ("azaguard-order-select", "azaguard-order-sign"):
        r = call(service, {**only_empty, "hook": service.removeprefix("azaguard-")})
        assert r.status_code == 200 and r.json()["cards"] == [], r.text
    # An empty medication element is as empty as an absent one.
    blank = _recorded("sandbox-order-select.json")
    blank["context"]["draftOrders"]["entry"][0]["resource"]["medicationCodeableConcept"] = {"coding": []}
    assert [c for c in call("azaguard-order-sign", {**blank, "hook": "order-sign"}).json()["cards"]
            if c["indicator"] == "info"] == []


def test_a_draft_whose_medication_cannot_be_read_is_still_said(call: Caller) -> None:
    body = _recorded("sandbox-order-select.json")
    body["hook"] = "order-sign"
    body["context"]["draftOrders"]["entry"][0]["resource"]["medicationReference"] = {"reference": "Medication/gone"}
    r = call("azaguard-order-sign", body)
    info = [c for c in r.json()["cards"] if c["indicator"] == "info"]
    assert len(info) == 1 and "- the draft medication order: its medication cannot be read" in info[0]["detail"]
    assert "request-123" not in info[0]["detail"] and "Medication/gone" not in info[0]["detail"]  # no ids to people


def test_a_bare_array_of_drafts_and_a_patient_id_as_reference_are_read(call: Caller) -> None:
    body = _recorded("sandbox-order-select.json")
    body["context"]["draftOrders"] = [e["resource"] for e in body["context"]["draftOrders"]["entry"]]
    body["context"]["patientId"] = "Patient/smart-1288992"
    r = call("azaguard-order-select", body)
    assert r.status_code == 200 and any(c["indicator"] == "critical" for c in r.json()["cards"])


def test_a_draft_for_another_patient_is_left_out(call: Caller) -> None:
    body = _recorded("sandbox-order-select.json")
    body["context"]["draftOrders"]["entry"][1]["resource"]["subject"] = {"reference": "Patient/other"}
    r = call("azaguard-order-select", body)
    assert r.status_code == 200 and r.json()["cards"] == []
