"""`azaguard check --fhir-url`: one process per patient, so what it learnt about the server (batch
refused) is kept on disk for the next process, under $XDG_CACHE_HOME/azaguard (else ~/.cache)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock

from azaguard.cli import EXIT_OK, main
from tests.fhir.test_gather_httpx import BASE, FakeFhir, medication, order, patient, wbc


def test_a_refused_batch_is_remembered_by_the_next_cli_run(
    httpx_mock: HTTPXMock, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fake = FakeFhir([patient(), medication(), order("mr1"), wbc("o1")], batch=False)
    httpx_mock.add_callback(fake, is_reusable=True)
    argv = ["check", "--fhir-url", BASE, "--patient", "p1", "--now", "2026-11-20T09:00:00Z", "--format", "json"]

    assert main(argv) == EXIT_OK
    assert fake.log[0].startswith("POST batch")  # tried once, refused
    cache = tmp_path / "azaguard" / "fhir-servers.json"
    assert BASE in json.loads(cache.read_text())["batch_refused"]

    fake.log.clear()
    assert main(argv) == EXIT_OK  # a new run (a new process would read the same file)
    assert not any(line.startswith("POST") for line in fake.log)
    assert "GET metadata" not in fake.log
