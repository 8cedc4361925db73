"""History Bundles whose newest entry for a resource is a DELETE (issue 24, "which version").

FHIR R4 RESTful API, history: "The return content is a Bundle with type set to history containing the specified
version history, sorted with oldest versions last, and including deleted resources. ... Deleted resources are
included with request.method DELETE and no resource" — a deleted resource is gone: none of its earlier versions is
evidence. A version created after the DELETE (the resource recreated) counts again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import RECORD_TYPES
from azaguard.resources import load_json_file, resource_set_from_json
from azaguard.service import check_resources
from tests.clinical.builders import NOW, azathioprine, drug, observation, patient, when

Resource = dict[str, Any]


def version(resource: Resource, vid: str, days_ago: float | None) -> dict[str, Any]:
    r = {**resource, "meta": {"versionId": vid, **({"lastUpdated": when(days_ago)} if days_ago is not None else {})}}
    return {"fullUrl": f"https://ehr.example/fhir/{r['resourceType']}/{r['id']}", "resource": r,
            "request": {"method": "PUT" if vid != "1" else "POST", "url": f"{r['resourceType']}/{r['id']}"}}


def delete(rtype: str, rid: str, vid: str, days_ago: float | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"request": {"method": "DELETE", "url": f"{rtype}/{rid}/_history/{vid}"}}
    if days_ago is not None:
        entry["response"] = {"status": "204", "lastModified": when(days_ago)}
    return entry


def history(*entries: dict[str, Any]) -> Resource:
    head = [{"fullUrl": "https://ehr.example/fhir/Patient/p1", "resource": patient()}, {
        "fullUrl": "https://ehr.example/fhir/MedicationRequest/aza", "resource": azathioprine(rid="aza")}]
    return {"resourceType": "Bundle", "type": "history", "entry": [*head, *entries]}


ALLOPURINOL = drug("519", "allopurinol", rid="allo")
LOW_WBC = observation("6690-2", 2.0, "10*3/uL", rid="wbc", days_ago=3)


def interactions(bundle: Resource) -> str:
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    return str(next(f for f in result.findings if f.rule == "interactions").status)


def test_an_allopurinol_order_deleted_last_is_not_read() -> None:
    bundle = history(delete("MedicationRequest", "allo", "2", days_ago=1), version(ALLOPURINOL, "1", 10))
    assert interactions(bundle) != "hold"
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    assert any(d.ref == "MedicationRequest/allo" and "DELETE" in d.reason for d in result.record.dropped)


def test_the_same_order_not_deleted_still_holds() -> None:
    assert interactions(history(version(ALLOPURINOL, "1", 10))) == "hold"


def test_recreated_after_the_delete_counts_again() -> None:
    bundle = history(version(ALLOPURINOL, "3", 1), delete("MedicationRequest", "allo", "2", days_ago=5),
                     version(ALLOPURINOL, "1", 10))
    assert interactions(bundle) == "hold"


def test_order_by_time_when_every_entry_has_one() -> None:
    """Entries out of order: the times decide (the DELETE, 5 days ago, is newer than the version of 10 days ago)."""
    bundle = history(version(ALLOPURINOL, "1", 10), delete("MedicationRequest", "allo", "2", days_ago=5))
    assert interactions(bundle) != "hold"
    # ... and a version newer than the DELETE by time, listed after it, still counts.
    bundle = history(delete("MedicationRequest", "allo", "2", days_ago=5), version(ALLOPURINOL, "3", 1))
    assert interactions(bundle) == "hold"


def test_without_times_entry_order_decides() -> None:
    bundle = history(delete("MedicationRequest", "allo", "2"), version(ALLOPURINOL, "1", None))
    assert interactions(bundle) != "hold"


@pytest.mark.parametrize("url", ["Observation/wbc", "https://ehr.example/fhir/Observation/wbc/_history/2"])
def test_a_deleted_low_wbc_is_not_a_result_also_from_a_file(tmp_path: Path, url: str) -> None:
    """The fast file path (record_from_bytes) reads history Bundles in full too."""
    bundle = history({"request": {"method": "DELETE", "url": url}}, version(LOW_WBC, "1", 3))
    path = tmp_path / "history.json"
    path.write_text(json.dumps(bundle))
    record_set = load_json_file(path, RECORD_TYPES)
    result = check_resources(record_set, mappings=load_mappings(), now=NOW)
    assert not result.record.measurements_of("wbc")
    assert "Observation/wbc" in {d.ref for d in result.record.dropped}
    kept = history(version(LOW_WBC, "1", 3))
    path.write_text(json.dumps(kept))
    assert check_resources(load_json_file(path, RECORD_TYPES), mappings=load_mappings(), now=NOW
                           ).record.measurements_of("wbc")


def test_a_delete_in_a_transaction_bundle_is_not_history() -> None:
    """Only a history Bundle reports what happened; a transaction's DELETE is a request, read as before."""
    bundle = history(delete("MedicationRequest", "allo", "2"), version(ALLOPURINOL, "1", 10)) | {"type": "transaction"}
    assert interactions(bundle) == "hold"
