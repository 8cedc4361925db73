"""`scan --ndjson` (and so `scan --bulk`, which evaluates the downloaded files the same way) with a merged patient:
the old record's id is the same person (Patient.link), so its resources are read under the surviving record — one
patient, one line, one verdict — never a second "patient".

FHIR R4 link-type replaced-by: "The patient resource containing this link must no longer be used. The link points
forward to another patient resource that must be used in lieu of the patient resource that contains this link.";
replaces: "... points back to an inactive patient resource that has been merged into this resource, and should be
consulted to retrieve additional referenced information"."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.recordparts import aza_order, patient
from tests.recordparts import wbc as wbc_count
from tests.scan.conftest import NOW, scan


def aza(rid: str, pid: str) -> dict[str, Any]:
    return aza_order(rid, pid, (NOW - timedelta(days=200)).isoformat())


def wbc(rid: str, pid: str, value: float) -> dict[str, Any]:
    return wbc_count(rid, pid, value, (NOW - timedelta(days=2)).isoformat())


def export(folder: Path, *resources: dict[str, Any]) -> Path:
    folder.mkdir()
    by_type: dict[str, list[str]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(json.dumps(r))
    for rtype, lines in by_type.items():
        (folder / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    return folder


MERGED = (
    patient("m-new", ("replaces", "m-old")), patient("m-old", ("replaced-by", "m-new"), active=False),
    patient("m-other"),
    aza("m-aza", "m-old"),  # the order is still filed under the old id
    wbc("m-wbc", "m-new", 2.0),  # the low count under the surviving one
    aza("o-aza", "m-other"), wbc("o-wbc", "m-other", 6.0),
)


@pytest.mark.parametrize("engine", ["inprocess", "dask"])
def test_a_merged_record_is_one_patient_under_the_surviving_id(tmp_path: Path, engine: str) -> None:
    folder = export(tmp_path / "files", *MERGED)
    argv = ["--ndjson", str(folder)] + (["--engine", "dask"] if engine == "dask" else [])
    run = scan(argv, tmp_path / "out")
    assert run.code == 0, run.stderr  # every patient evaluated
    assert sorted(run.by_patient) == ["m-new", "m-other"]  # never a line for the old id
    line = run.by_patient["m-new"]
    assert line["statuses"]["blood-counts"] == "hold"  # the old id's order + the new id's count: one record
    assert line["merged_ids"] == ["m-old"]
    assert "merged_ids" not in run.by_patient["m-other"]


def test_only_the_surviving_record_carries_the_link(tmp_path: Path) -> None:
    """The old Patient was not exported (or says nothing): 'replaces' alone joins its id."""
    folder = export(tmp_path / "files", patient("s-new", ("replaces", "s-old")), aza("s-aza", "s-old"),
                    wbc("s-wbc", "s-new", 2.0))
    run = scan(["--ndjson", str(folder)], tmp_path / "out")
    assert sorted(run.by_patient) == ["s-new"]
    assert run.by_patient["s-new"]["statuses"]["blood-counts"] == "hold"


def test_unlinked_patients_stay_apart(tmp_path: Path) -> None:
    folder = export(tmp_path / "files", patient("u-a"), patient("u-b"), aza("u-aza", "u-b"), wbc("u-wbc", "u-a", 2.0))
    run = scan(["--ndjson", str(folder)], tmp_path / "out")
    assert sorted(run.by_patient) == ["u-b"]
    assert run.by_patient["u-b"]["statuses"]["blood-counts"] != "hold"
