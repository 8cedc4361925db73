"""The CLI's side of operations: `check` and `scan` log as asked, a scan is in the audit trail."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from azaguard.ops.audit import AuditTrail
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxServer
from tests.ops.services import free_port


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "azaguard.cli", *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


def test_check_logs_a_fhir_failure_as_json_without_the_token() -> None:
    closed = free_port()
    run = cli("check", "--fhir-url", f"http://127.0.0.1:{closed}/fhir", "--patient", "p-1", "--log-format", "json",
              env={"AZAGUARD_FHIR_TOKEN": "cli-secret-token-9"})
    assert run.returncode == 3
    lines = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    assert any(line["event"] == "FHIR server unreachable" and line["level"] == "WARNING"
               and line["host"] == f"127.0.0.1:{closed}" for line in lines), run.stderr
    assert "cli-secret-token-9" not in run.stderr + run.stdout


@pytest.mark.integration
def test_scan_records_each_patient_in_the_audit_trail(fhir_server: SandboxServer, tmp_path: Path) -> None:
    httpx.post(fhir_server.base_url, json=transaction_bundle(build_patients(datetime.now(UTC))), timeout=120,
               headers={"Content-Type": "application/fhir+json"}).raise_for_status()
    ids = tmp_path / "ids.txt"
    ids.write_text("aza-febrile-c\naza-stable\n")
    database = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    run = cli("scan", "--fhir-url", fhir_server.base_url, "--patients", str(ids), "--out", str(tmp_path / "out"),
              "--log-format", "json", env={"AZAGUARD_CDS_DATABASE_URL": database})
    assert run.returncode == 0, run.stderr[-2000:]
    records = AuditTrail(database).since(datetime(2000, 1, 1, tzinfo=UTC))
    assert sorted((r.patient, r.action, r.outcome) for r in records) == [
        ("aza-febrile-c", "scan.evaluate", "evaluated"), ("aza-stable", "scan.evaluate", "evaluated")]
    assert records[0].who == "scan: anonymous" and records[0].source
