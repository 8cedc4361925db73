"""The scan's tests share one load of the sandbox patients on the session's sekmet server."""

from __future__ import annotations

import argparse
import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from azaguard.cli import build_parser
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import SyntheticPatient, build_patients, transaction_bundle
from azaguard.scan.command import run
from azaguard.scan.results import RESULTS_FILE, read_lines

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
NOW_TEXT = "2026-11-01T12:00:00Z"


@dataclass
class Loaded:
    base_url: str
    patients: list[SyntheticPatient]

    @property
    def on_azathioprine(self) -> set[str]:
        return {p.id for p in self.patients if any(s != "not-applicable" for s in p.expected.values())}


@pytest.fixture(scope="package")
def loaded(fhir_server: Any) -> Loaded:
    """An empty server with exactly the sandbox patients (PUTs with fixed ids)."""
    fhir_server.reset()
    patients = build_patients(NOW)
    response = httpx.post(
        fhir_server.base_url, json=transaction_bundle(patients), timeout=120,
        headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"},
    )
    assert response.status_code == 200, response.text[:500]
    return Loaded(fhir_server.base_url, patients)


@dataclass
class ScanRun:
    code: int
    out: Path
    stderr: str

    @property
    def lines(self) -> list[dict[str, Any]]:
        return list(read_lines(self.out / RESULTS_FILE))

    @property
    def by_patient(self) -> dict[str, dict[str, Any]]:
        return {line["patient"]: line for line in self.lines}


def scan(argv: Sequence[str], out: Path, transport: httpx.BaseTransport | None = None) -> ScanRun:
    """`azaguard scan ARGV --out OUT --now NOW` in this process (a transport may inject faults)."""
    args: argparse.Namespace = build_parser().parse_args(["scan", *argv, "--out", str(out), "--now", NOW_TEXT])
    err = io.StringIO()
    code = run(args, load_mappings(), stderr=err, transport=transport)
    return ScanRun(code, out, err.getvalue())
