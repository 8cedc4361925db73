"""Write-back cannot jam: concurrent writers, planted duplicates and foreign alerts, against the real
local FHIR server (sekmet-fhir, `fhir_server` fixture)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import httpx
import pytest

from azaguard import report
from azaguard.alerts import ALERT_ID_SYSTEM, SOURCE_TAG, device_resource, plan_alerts
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.service import chart_verdict, check_on_server
from tests.hardening.common import NOW, chart_alerts, live_counts, load_patient

pytestmark = pytest.mark.integration
MAPPINGS = load_mappings()


def _planned(base_url: str, pid: str) -> list[Any]:
    """What azaguard would write for this patient (its alerts' identifiers and resources)."""
    with FhirClient(base_url) as client:
        result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW)
    author = {"identifier": device_resource(MAPPINGS.version)["identifier"][0]}
    return plan_alerts(result.patient_ref, result.findings, [], NOW, author, verdict=chart_verdict(result, MAPPINGS))


def _post(base_url: str, resource: dict[str, Any]) -> str:
    with FhirClient(base_url) as client:
        body = {k: v for k, v in resource.items() if k != "id"}
        result = client.create(body)
    assert result.resource is not None
    return str(result.resource["id"])


def test_five_concurrent_writers_converge_on_one_alert_each(fhir_server: Any) -> None:
    pid = "i8-concurrent"
    load_patient(fhir_server.base_url, pid)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [sys.executable, "-m", "azaguard.cli", "check", "--fhir-url", fhir_server.base_url, "--patient", pid,
           "--write", "--now", NOW.isoformat(), "--format", "json"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env) for _ in range(5)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [err.decode()[-500:] for _, err in outputs]
    outcomes = [w["outcome"] for out, _ in outputs for w in json.loads(out)["written"]]
    assert "failed" not in outcomes
    issues, flags = live_counts(fhir_server.base_url, pid)
    planned = _planned(fhir_server.base_url, pid)
    want_issues = {p.identifier for p in planned if p.resource_type == "DetectedIssue"}
    want_flags = {p.identifier for p in planned if p.resource_type == "Flag"}
    assert want_flags, "the scenario must hold (an active Flag)"
    assert dict(issues) == dict.fromkeys(want_issues, 1)
    assert dict(flags) == dict.fromkeys(want_flags, 1)
    device = device_resource(MAPPINGS.version)
    with FhirClient(fhir_server.base_url) as client:
        ident = device["identifier"][0]
        devices = client.search("Device", {"identifier": f"{ident['system']}|{ident['value']}"})
    assert len(devices) == 1


def test_planted_duplicates_are_adopted_and_retired_never_a_jam(fhir_server: Any) -> None:
    pid = "i8-duplicate"
    load_patient(fhir_server.base_url, pid)
    planned = _planned(fhir_server.base_url, pid)
    di = next(p for p in planned if p.resource_type == "DetectedIssue")
    flag = next(p for p in planned if p.resource_type == "Flag")
    # Two copies of each, as a non-atomic conditional create leaves them (server-assigned ids).
    di_ids = [_post(fhir_server.base_url, di.resource) for _ in range(2)]
    flag_ids = [_post(fhir_server.base_url, flag.resource) for _ in range(2)]
    # ... and two copies of an old author Device with the same identifier.
    device = device_resource(MAPPINGS.version)
    for _ in range(2):
        _post(fhir_server.base_url, device)

    with FhirClient(fhir_server.base_url) as client:
        result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True)
    assert not result.failed_writes, result.failed_writes
    by_ref = {w.reference: w.outcome for w in result.writes}
    assert by_ref[f"DetectedIssue/{di_ids[0]}"] == "exists"
    assert by_ref[f"DetectedIssue/{di_ids[1]}"] == "retired"
    assert by_ref[f"Flag/{flag_ids[0]}"] == "exists"
    assert by_ref[f"Flag/{flag_ids[1]}"] == "retired"
    assert result.device is not None and result.device.outcome in ("created", "exists")
    assert "adopted the oldest of 2 copies" in report.to_text(result, include_writes=True)
    issues, flags = live_counts(fhir_server.base_url, pid)
    assert issues[di.identifier] == 1 and flags[flag.identifier] == 1
    # A second run changes nothing: everything exists.
    with FhirClient(fhir_server.base_url) as client:
        again = check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True)
    assert {w.outcome for w in again.writes} == {"exists"}


def test_a_foreign_flag_with_azaguards_identifier_does_not_block_the_hold(fhir_server: Any) -> None:
    pid = "i8-foreign"
    load_patient(fhir_server.base_url, pid)
    planned = _planned(fhir_server.base_url, pid)
    flag = next(p for p in planned if p.resource_type == "Flag")
    di = next(p for p in planned if p.resource_type == "DetectedIssue")
    foreign_flag = {**flag.resource, "meta": {}, "author": {"reference": "Practitioner/someone"}}
    foreign_di = {**di.resource, "meta": {"tag": [{"system": "urn:other", "code": "x"}]},
                  "author": {"reference": "Device/other-vendor"}}
    foreign_ids = [_post(fhir_server.base_url, foreign_flag), _post(fhir_server.base_url, foreign_di)]

    with FhirClient(fhir_server.base_url) as client:
        result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True)
    assert not result.failed_writes
    created = {(w.resource_type, w.outcome) for w in result.writes}
    assert ("Flag", "created") in created and ("DetectedIssue", "created") in created
    assert any(f"Flag/{foreign_ids[0]}" in n and f"DetectedIssue/{foreign_ids[1]}" in n for n in result.notes)
    issues, flags = chart_alerts(fhir_server.base_url, pid)
    mine = [f for f in flags if f["status"] == "active" and SOURCE_TAG in (f.get("meta") or {}).get("tag", [])]
    assert len(mine) == 1
    foreign_now = next(f for f in flags if f["id"] == foreign_ids[0])
    assert foreign_now["status"] == "active"  # someone else's: never closed or retired by azaguard
    assert len([i for i in issues if i["identifier"][0]["system"] == ALERT_ID_SYSTEM]) == len(
        [p for p in planned if p.resource_type == "DetectedIssue"]) + 1


class _NoClientIds(httpx.BaseTransport):
    """A server that refuses client-assigned ids for alerts (PUT of a new id → 405)."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "PUT" and ("/DetectedIssue/azg-" in path or "/Flag/azg-" in path):
            return httpx.Response(405, json={"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-supported", "diagnostics": "client ids not allowed"}]})
        return self.inner.handle_request(request)


def test_without_client_ids_conditional_create_tolerates_several_matches(fhir_server: Any) -> None:
    pid = "i8-noids"
    load_patient(fhir_server.base_url, pid)
    planned = _planned(fhir_server.base_url, pid)
    di = next(p for p in planned if p.resource_type == "DetectedIssue")
    copies = [_post(fhir_server.base_url, di.resource) for _ in range(2)]
    with FhirClient(fhir_server.base_url, transport=_NoClientIds()) as client:
        # Plan without seeing them (as a run racing the one that wrote them would): the conditional
        # create then matches both copies (412) and resolves them instead of jamming.
        from azaguard.alerts import ensure_device, write_alerts

        author, _ = ensure_device(client, device_resource(MAPPINGS.version))
        outcomes = write_alerts(client, [di], device_resource(MAPPINGS.version))
    assert [(o.outcome, o.reference) for o in outcomes] == [("exists", f"DetectedIssue/{copies[0]}")]
    assert outcomes[0].note and "1 later" in outcomes[0].note
    issues, _ = live_counts(fhir_server.base_url, pid)
    assert issues[di.identifier] == 1
    assert author.get("reference", "").startswith("Device/")


class _FailAlertReadsAfterWrite(httpx.BaseTransport):
    """Alert searches fail (503) once a write has happened: the writes succeeded, the read-back did not."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.wrote = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            self.wrote = True
        if self.wrote and request.method == "GET" and request.url.path.endswith(("/DetectedIssue", "/Flag")):
            return httpx.Response(503)
        return self.inner.handle_request(request)


def test_writes_that_succeeded_are_reported_when_the_read_back_fails(fhir_server: Any) -> None:
    pid = "i8-readback"
    load_patient(fhir_server.base_url, pid)
    with FhirClient(fhir_server.base_url, transport=_FailAlertReadsAfterWrite(), max_retries=1,
                    sleep=lambda _: None) as client:
        result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True)
    assert result.writes and {w.outcome for w in result.writes} == {"created"}
    assert result.existing_alerts_problem and "written as listed" in result.existing_alerts_problem
    text = report.to_text(result, include_writes=True)
    assert "created" in text and "reading the chart back failed" in text
