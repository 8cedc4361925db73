"""Bulk Data $export against the real local server, and the NDJSON engines (in-process and Dask) on the files."""

from __future__ import annotations

import gzip
import json
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
    assert {"Patient", "MedicationRequest", "Medication", "Observation", "Questionnaire"} <= names
    # aza-warning-signs's check-in is coded only in the Questionnaire the export carries: read, it is a caution.
    assert exported.by_patient["aza-warning-signs"]["statuses"]["infection-hold"] == "caution"
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
        fh.write('\n{"resourceType":"Patient","id":"cut-sh\n')  # a blank line, and one cut short
    local = scan(["--ndjson", str(folder)], tmp_path / "inprocess")
    assert local.code == 5, local.stderr  # the cut line may have been anyone's: the exit code says so
    assert local.lines == exported.lines  # gzip, blank and unattributable lines change no patient's result
    cluster = scan(["--ndjson", str(folder), "--engine", "dask"], tmp_path / "dask")
    assert cluster.code == 5, cluster.stderr
    assert cluster.lines == local.lines
    warnings = [json.loads((tmp_path / d / "run.json").read_text())["discovery"]["warnings"]
                for d in ("inprocess", "dask")]
    assert warnings[0] == warnings[1] and "1 line(s)" in warnings[0][0]


def test_ndjson_refuses_a_folder_without_export_files(tmp_path: Path) -> None:
    result = scan(["--ndjson", str(tmp_path)], tmp_path / "out")
    assert result.code == 2 and "no NDJSON files" in result.stderr


def test_unreadable_lines_are_never_taken_as_missing_data(exported: ScanRun, tmp_path: Path) -> None:
    folder = tmp_path / "files"
    shutil.copytree(exported.out / "export", folder)
    observations = sorted(folder.glob("Observation.*.ndjson"))[0]
    lines = observations.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if '"Patient/aza-febrile-c"' in line and "8310-5" in line)
    cut = lines[index].index('"Patient/aza-febrile-c"') + 30
    lines[index] = lines[index][:cut] + "\n"  # the fever, cut short: not JSON any more
    other = next(i for i, line in enumerate(lines) if '"Patient/aza-stable"' in line)
    lines[other] = lines[other][:40] + "\n"  # cut before it says whose it is
    observations.write_text("".join(lines))
    orders = sorted(folder.glob("MedicationRequest.*.ndjson"))[0]
    with orders.open("a") as fh:
        fh.write('{"resourceType":"MedicationRequest","medicationCodeableConcept":{"text":"azathioprine 50 mg"\n')
    result = scan(["--ndjson", str(folder)], tmp_path / "out")
    assert result.code == 5
    febrile = result.by_patient["aza-febrile-c"]
    assert febrile["outcome"] == "failed" and "not valid JSON" in febrile["error"]
    assert result.by_patient["aza-stable"]["outcome"] == "evaluated"
    run_info = json.loads((tmp_path / "out" / "run.json").read_text())
    warnings = " ".join(run_info["discovery"]["warnings"])
    assert "not valid JSON" in warnings and "2 line(s) of the export are cut short" in warnings  # + the order line
