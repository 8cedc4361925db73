"""`azaguard scan` against the real local FHIR server: who is found, what is recorded, exit codes, faults."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from tests.scan.conftest import Loaded, scan

pytestmark = pytest.mark.integration


def test_finds_exactly_the_patients_on_azathioprine_and_evaluates_them_like_check(
    loaded: Loaded, tmp_path: Path
) -> None:
    result = scan(["--fhir-url", loaded.base_url], tmp_path)
    assert result.code == 0, result.stderr
    counts = Counter(line["patient"] for line in result.lines)
    assert set(counts) == loaded.on_azathioprine
    assert "aza-not-on" not in counts and max(counts.values()) == 1
    expected = {p.id: p.expected for p in loaded.patients}
    for pid, line in result.by_patient.items():
        assert line["outcome"] == "evaluated"
        assert line["statuses"] == expected[pid], pid  # the same rules as `check`, per patient
    run_info = json.loads((tmp_path / "run.json").read_text())
    steps = " ".join(run_info["discovery"]["steps"])
    assert "chained" in steps and run_info["discovery"]["method"] == "medication-codes"
    # The patient ordered through a Medication resource is found only by the chained search.
    assert "aza-medication-reference" in counts
    with (tmp_path / "actions.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    needing = {pid for pid, line in result.by_patient.items() if line["urgency"] < 99}
    assert {r["patient_id"] for r in rows} == needing
    assert rows[0]["most_urgent"] == "hold"
    assert "aza-stable" not in needing and "aza-febrile-c" in needing
    for name in ("results.ndjson", "report.html", "actions.csv", "run.json"):  # patient data: owner only
        assert (tmp_path / name).stat().st_mode & 0o077 == 0, name


class Faults(httpx.BaseTransport):
    """Between the scan and the real server: 429 + Retry-After once for one patient, 500 for another."""

    def __init__(self, busy: str, broken: str, *, fail_writes_for: str | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.busy, self.broken, self.fail_writes_for = busy, broken, fail_writes_for
        self.sent_busy = 0
        self.busy_at: float | None = None
        self.arrivals: list[float] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.arrivals.append(time.monotonic())
        body = request.content.decode("utf-8", "replace") if request.method in ("POST", "PUT") else ""
        if request.method == "POST" and f"Patient/{self.busy}\"" in body and self.sent_busy == 0:
            self.sent_busy += 1
            self.busy_at = time.monotonic()
            return httpx.Response(429, headers={"Retry-After": "1"}, request=request)
        if request.method == "POST" and f"Patient/{self.broken}\"" in body and '"type":"batch"' in body:
            return httpx.Response(500, json={"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "exception", "diagnostics": "injected failure"}]}, request=request)
        if (self.fail_writes_for and "/DetectedIssue" in request.url.path and request.method in ("POST", "PUT")
                and f"Patient/{self.fail_writes_for}\"" in body):
            return httpx.Response(500, request=request)
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def test_faults_lose_nothing_and_duplicate_nothing_then_resume_completes(loaded: Loaded, tmp_path: Path) -> None:
    faults = Faults(busy="aza-febrile-c", broken="aza-leukopenic")
    first = scan(["--fhir-url", loaded.base_url], tmp_path, transport=faults)
    assert first.code == 5, first.stderr  # some patients could not be evaluated
    assert faults.sent_busy == 1 and faults.busy_at is not None
    # Retry-After held for the whole scan: no worker sent anything while the pause lasted (requests already
    # on their way when the 429 came back may still arrive in the first moments).
    during = [t for t in faults.arrivals if faults.busy_at + 0.15 < t < faults.busy_at + 0.95]
    assert during == []
    counts = Counter(line["patient"] for line in first.lines)
    assert set(counts) == loaded.on_azathioprine and max(counts.values()) == 1
    assert first.by_patient["aza-febrile-c"]["outcome"] == "evaluated"  # retried after the 429
    broken = first.by_patient["aza-leukopenic"]
    assert broken["outcome"] == "failed" and "injected failure" in broken["error"]
    run_info = json.loads((tmp_path / "run.json").read_text())
    assert run_info["timings"]["server busy (429/503) answers"] == 1
    assert "1 not evaluated" in first.stderr

    again = scan(["--fhir-url", loaded.base_url, "--resume"], tmp_path)
    assert again.code == 0, again.stderr
    assert "this run 1." in again.stderr  # only the failed patient was evaluated again
    counts = Counter(line["patient"] for line in again.lines)
    assert set(counts) == loaded.on_azathioprine and max(counts.values()) == 1
    assert again.by_patient["aza-leukopenic"]["statuses"]["blood-counts"] == "hold"


def test_failed_writes_give_exit_code_4(loaded: Loaded, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("aza-pneumonia\n# a comment\naza-stable\n\n")
    faults = Faults(busy="none", broken="none", fail_writes_for="aza-pneumonia")
    result = scan(["--fhir-url", loaded.base_url, "--patients", str(ids), "--write"], tmp_path / "out",
                  transport=faults)
    assert result.code == 4, result.stderr
    assert result.by_patient["aza-pneumonia"]["outcome"] == "write-failed"
    assert result.by_patient["aza-stable"]["outcome"] == "evaluated"
    run_info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_info["discovery"]["method"] == "patients-file"


def test_unknown_patient_in_a_file_is_recorded_not_fatal(loaded: Loaded, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("aza-stable\nno-such-patient\n")
    result = scan(["--fhir-url", loaded.base_url, "--patients", str(ids)], tmp_path / "out")
    assert result.code == 5
    assert result.by_patient["no-such-patient"]["outcome"] == "failed"
    assert result.by_patient["aza-stable"]["outcome"] == "evaluated"


def test_group_and_all_patients(loaded: Loaded, tmp_path: Path) -> None:
    group = {"resourceType": "Group", "id": "scan-test", "type": "person", "actual": True,
             "member": [{"entity": {"reference": "Patient/aza-not-on"}},
                        {"entity": {"reference": "Patient/aza-mmr-due"}},
                        {"entity": {"reference": "Patient/aza-stable"}, "inactive": True}]}
    response = httpx.put(f"{loaded.base_url}/Group/scan-test", json=group,
                         headers={"Content-Type": "application/fhir+json"})
    assert response.status_code in (200, 201)
    by_group = scan(["--fhir-url", loaded.base_url, "--group", "scan-test"], tmp_path / "g")
    assert by_group.code == 0
    assert set(by_group.by_patient) == {"aza-not-on", "aza-mmr-due"}
    assert set(by_group.by_patient["aza-not-on"]["statuses"].values()) == {"not-applicable"}
    everyone = scan(["--fhir-url", loaded.base_url, "--all-patients", "--concurrency", "8"], tmp_path / "a")
    assert everyone.code == 0
    assert set(everyone.by_patient) == {p.id for p in loaded.patients}


def test_bad_options_are_refused(tmp_path: Path, loaded: Loaded) -> None:
    for refused_by_the_parser in (["--concurrency", "0"], ["--group", "../Patient"]):
        with pytest.raises(SystemExit) as exit_:
            scan(["--fhir-url", loaded.base_url, *refused_by_the_parser], tmp_path)
        assert exit_.value.code == 2
    with pytest.raises(SystemExit):
        scan(["--fhir-url", "ftp://fhir.example.org"], tmp_path)
    assert scan(["--fhir-url", loaded.base_url, "--client-id", "x"], tmp_path).code == 2
    assert scan(["--fhir-url", loaded.base_url, "--bulk", "--write"], tmp_path).code == 2
    key = tmp_path / "k"
    key.write_text("not used")
    plain = scan(["--fhir-url", "http://fhir.example.org/r4", "--client-id", "x", "--private-key", str(key)], tmp_path)
    assert plain.code == 2 and "plain http" in plain.stderr
    bad = tmp_path / "ids.txt"
    bad.write_text("ok-id\nnot an id!\n")
    result = scan(["--fhir-url", loaded.base_url, "--patients", str(bad)], tmp_path)
    assert result.code == 2 and "line 2" in result.stderr


def test_terminology_server_option_is_passed_through(loaded: Loaded, tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("aza-stable\naza-medication-reference\n")
    result = scan(["--fhir-url", loaded.base_url, "--patients", str(ids), "--terminology-server", loaded.base_url],
                  tmp_path / "out")
    assert result.code == 0, result.stderr
    assert set(result.by_patient["aza-stable"]["statuses"].values()) == {"ok"}
    run_info = json.loads((tmp_path / "out" / "run.json").read_text())
    assert run_info["parameters"]["terminology server"] == loaded.base_url
