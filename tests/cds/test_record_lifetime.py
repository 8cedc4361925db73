"""Nothing process-wide keeps a patient's record once its check is answered (a server process answers many
patients: the last one's data must not stay in memory until the next request)."""

from __future__ import annotations

import gc
import json
import weakref
from datetime import UTC, datetime
from pathlib import Path

from azaguard.mappings import load_mappings
from azaguard.record import PatientRecord, build_record
from azaguard.resources import resource_set_from_json
from azaguard.rules import evaluate
from tests.cds.conftest import Caller
from tests.cds.hookdata import body, full_prefetch, sandbox_chart

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aza-leukopenic.json"


def _records() -> list[PatientRecord]:
    gc.collect()
    return [o for o in gc.get_objects() if isinstance(o, PatientRecord)]


def _new_records(before: list[weakref.ref[PatientRecord]]) -> list[PatientRecord]:
    """Records alive now that were not alive before (other tests' fixtures may hold theirs)."""
    old = {id(r()) for r in before if r() is not None}
    return [o for o in _records() if id(o) not in old]


def test_a_record_is_collectable_once_its_rules_have_run() -> None:
    m = load_mappings()
    before = [weakref.ref(o) for o in _records()]
    record = build_record(resource_set_from_json(json.loads(EXAMPLE.read_text())), m)
    assert _new_records(before) == [record]
    findings = evaluate(record, m, datetime(2026, 12, 7, tzinfo=UTC))
    assert findings
    del record
    assert _new_records(before) == []


def test_no_record_outlives_the_hook_request_that_built_it(call: Caller) -> None:
    before = [weakref.ref(o) for o in _records()]
    chart = sandbox_chart("aza-mmr-due")
    r = call("azaguard-patient-view", body("patient-view", chart, patient_id="aza-mmr-due",
                                           prefetch=full_prefetch(chart)))
    assert r.status_code == 200, r.text
    assert r.json()["cards"]
    assert _new_records(before) == []
