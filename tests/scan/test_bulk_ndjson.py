"""Bulk Data $export against the real local server, and the NDJSON engines (in-process and Dask) on the files."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest

from tests.scan.conftest import Loaded, ScanRun, scan

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def exported(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> ScanRun:
    return scan(["--fhir-url", loaded.base_url, "--bulk"], tmp_path_factory.mktemp("bulk"))


def test_export_round_trip_evaluates_the_patients_on_azathioprine(exported: ScanRun, loaded: Loaded) -> None:
    assert exported.code == 0, exported.stderr
    assert set(exported.by_patient) == loaded.on_azathioprine
    expected = {p.id: p.expected for p in loaded.patients}
    for pid, line in exported.by_patient.items():
        assert line["statuses"] == expected[pid], pid  # the same record builder and rules as `check`
    names = {p.name.split(".")[0] for p in (exported.out / "export").iterdir()}
    assert {"Patient", "MedicationRequest", "Medication", "Observation"} <= names
    assert not list((exported.out / "export").glob("*.part"))


def test_ndjson_in_process_equals_dask_on_the_same_files(exported: ScanRun, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    shutil.copytree(exported.out / "export", folder)
    # One file gzipped (as Bulk Data clients often store them), one blank line: both engines must cope.
    observations = sorted(folder.glob("Observation.*.ndjson"))[0]
    with observations.open("rb") as src, gzip.open(observations.with_name(observations.name + ".gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    observations.unlink()
    with sorted(folder.glob("Patient.*.ndjson"))[0].open("a") as fh:
        fh.write("\n")
    local = scan(["--ndjson", str(folder)], tmp_path / "inprocess")
    assert local.code == 0, local.stderr
    assert local.lines == exported.lines  # gzip and blank lines change nothing
    cluster = scan(["--ndjson", str(folder), "--engine", "dask"], tmp_path / "dask")
    assert cluster.code == 0, cluster.stderr
    assert cluster.lines == local.lines


def test_ndjson_refuses_a_folder_without_export_files(tmp_path: Path) -> None:
    result = scan(["--ndjson", str(tmp_path)], tmp_path / "out")
    assert result.code == 2 and "no NDJSON files" in result.stderr
