"""The write path through a fault-injecting proxy (429, 500, 503, drops before and after
forwarding, delays, garbage) against the real local FHIR server: nothing lost, nothing duplicated,
exit codes that tell the truth. Figures are printed (pytest -s) for the closing note."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from azaguard.alerts import device_resource, plan_alerts
from azaguard.cli import EXIT_OK, EXIT_SERVER, EXIT_WRITE_FAILED
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirError
from azaguard.mappings import load_mappings
from azaguard.resources import InputError
from azaguard.service import CheckResult, chart_verdict, check_on_server
from tests.hardening.common import NOW, live_counts, load_patient
from tests.hardening.faultproxy import FaultProxy

pytestmark = pytest.mark.integration
MAPPINGS = load_mappings()
PATIENTS = {"i8-fault-a": "aza-febrile-c", "i8-fault-b": "aza-mmr-due", "i8-fault-c": "aza-leukopenic"}
RUNS = 60


def _client(base_url: str) -> FhirClient:
    # Small timeouts and backoffs keep the delays short; three retries as in production.
    return FhirClient(base_url, timeout=0.3, response_deadline=1.0, max_retries=3, backoff=0.01, max_backoff=0.05)


def _exit_code(base_url: str, pid: str) -> tuple[int, CheckResult | None]:
    """What `azaguard check --write` answers (same rules as the CLI)."""
    try:
        with _client(base_url) as client:
            result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True)
    except (FhirError, InputError):
        return EXIT_SERVER, None
    return (EXIT_WRITE_FAILED if result.failed_writes else EXIT_OK), result


def _wanted(base_url: str, pid: str) -> tuple[set[str], set[str]]:
    with FhirClient(base_url) as client:
        result = check_on_server(client, pid, mappings=MAPPINGS, now=NOW)
    author = {"identifier": device_resource(MAPPINGS.version)["identifier"][0]}
    plan = plan_alerts(result.patient_ref, result.findings, [], NOW, author, verdict=chart_verdict(result, MAPPINGS))
    return ({p.identifier for p in plan if p.resource_type == "DetectedIssue"},
            {p.identifier for p in plan if p.resource_type == "Flag"})


def test_the_write_path_under_faults_loses_nothing_and_duplicates_nothing(fhir_server: Any) -> None:
    base = fhir_server.base_url
    wanted = {}
    for pid, scenario in PATIENTS.items():
        load_patient(base, pid, scenario)
        wanted[pid] = _wanted(base, pid)
    assert all(issues for issues, _ in wanted.values())
    exits: Counter[int] = Counter()
    with FaultProxy(base, seed=8, fault_rate=0.3, delay=0.45) as proxy:
        pids = list(PATIENTS)
        for run in range(RUNS):
            pid = pids[run % len(pids)]
            code, result = _exit_code(proxy.base_url, pid)
            exits[code] += 1
            issues, flags = live_counts(base, pid)
            want_issues, want_flags = wanted[pid]
            # Nothing duplicated, whatever happened.
            assert max(issues.values(), default=0) <= 1 and max(flags.values(), default=0) <= 1, (run, issues, flags)
            assert set(issues) <= want_issues and set(flags) <= want_flags
            if code == EXIT_OK:  # exit 0 only when every alert is in the chart
                assert set(issues) == want_issues and set(flags) == want_flags, (run, pid)
            if result is not None:  # every write reported as done is really there
                done = {w.identifier for w in result.writes if w.outcome in ("created", "exists")}
                assert done <= set(issues) | set(flags), (run, pid)
                # a failure says whether running again helps; under these faults it always can
                assert all(w.retryable for w in result.failed_writes)
        proxy.enabled = False
        for pid in PATIENTS:  # the faults gone, one run completes every patient: nothing was lost
            code, _ = _exit_code(proxy.base_url, pid)
            assert code == EXIT_OK
            issues, flags = live_counts(base, pid)
            assert dict(issues) == dict.fromkeys(wanted[pid][0], 1)
            assert dict(flags) == dict.fromkeys(wanted[pid][1], 1)
    faults = {k: v for k, v in proxy.counts.items() if k != "pass"}
    print(f"\nfault injection: {RUNS} write runs, exits {dict(exits)}, "
          f"{sum(proxy.counts.values())} requests, faults {faults}")
    assert exits[EXIT_OK] and (exits[EXIT_WRITE_FAILED] or exits[EXIT_SERVER])  # the mix did bite
    assert len(faults) == 8  # every kind of fault was drawn
