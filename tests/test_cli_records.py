"""`azaguard check --bundle` on records that are empty or have no Patient; `azaguard mappings --report`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from azaguard.cli import EXIT_INPUT, EXIT_OK, main
from azaguard.coverage import coverage, to_markdown
from azaguard.mappings import default_mappings_dir
from tests.clinical import builders as b

ROOT = Path(__file__).resolve().parent.parent


def check(tmp_path: Path, capsys: pytest.CaptureFixture[str], data: Any) -> tuple[int, str, str]:
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code = main(["check", "--bundle", str(path), "--format", "json", "--now", b.NOW.isoformat()])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    "empty",
    [{"resourceType": "Bundle", "type": "collection"}, {"resourceType": "Bundle", "type": "searchset", "entry": []},
     []],
    ids=["bundle without entries", "empty searchset", "empty array"],
)
def test_an_empty_record_is_unusable_input_not_not_on_azathioprine(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], empty: Any
) -> None:
    code, out, err = check(tmp_path, capsys, empty)
    assert code == EXIT_INPUT and out == ""
    assert "record is empty" in err


def test_a_record_without_patient_is_evaluated_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = check(tmp_path, capsys, [b.azathioprine(), b.observation("8310-5", 39.0, "Cel", days_ago=0)])
    assert code == EXIT_OK
    report = json.loads(out)
    assert "no Patient resource" in report["warnings"][0]
    assert next(f for f in report["findings"] if f["rule"] == "infection-hold")["status"] == "hold"


def test_a_record_without_patient_naming_two_subjects_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = {**b.observation("8310-5", 36.0, "Cel"), "subject": {"reference": "Patient/p2"}}
    code, _, err = check(tmp_path, capsys, [b.azathioprine(), other])
    assert code == EXIT_INPUT and "cannot tell whose record" in err


def test_another_patients_resource_is_shown_as_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    other = {**b.observation("8310-5", 39.5, "Cel", days_ago=0), "id": "theirs", "subject": {"reference": "Patient/p2"}}
    code, out, _ = check(tmp_path, capsys, [b.patient(), b.azathioprine(), other])
    assert code == EXIT_OK
    report = json.loads(out)
    (warning,) = report["warnings"]
    # Named for people (what and when), never by id (issue 22): a code with no words in the resource is named
    # by what the analyte mapping calls it, not by the raw code; the id is in the JSON's machine-readable part.
    assert warning == f"The Body temperature result of {b.NOW.day} {b.NOW:%b %Y} was not used: its subject is " \
        "another patient."
    assert "theirs" not in warning and "Patient/" not in warning and "8310-5" not in warning
    assert report["dropped"] == [{"reference": "Observation/theirs", "reason": "its subject is another patient"}]
    named = {**other, "code": {**other["code"], "text": "Core temperature"}}
    _, out, _ = check(tmp_path, capsys, [b.patient(), b.azathioprine(), named])
    assert json.loads(out)["warnings"][0].startswith(f"The Core temperature result of {b.NOW.day} {b.NOW:%b %Y} was")


def test_a_resource_whose_code_nothing_names_is_named_by_its_code_system() -> None:
    from azaguard.mappings import load_mappings
    from azaguard.naming import resource_name

    m = load_mappings()
    unknown = {**b.observation("99999-9", 1.0, "mg", days_ago=0), "id": "x"}
    day = f"{b.NOW.day} {b.NOW:%b %Y}"
    assert resource_name(unknown, m) == f"a result (LOINC 99999-9) of {day}"
    # A SNOMED CT lab code the analyte mapping lists is named by the mapping (primary-care systems code labs so).
    snomed = {**unknown, "code": {"coding": [{"system": "http://snomed.info/sct", "code": "767002"}]}}
    assert resource_name(snomed, m) == f"the WBC result of {day}"
    local = {**unknown, "code": {"coding": [{"system": "urn:lab:local", "code": "T1"}]}}
    assert resource_name(local, m) == f"a result (code T1) of {day}"


def test_mappings_report_lists_every_value_set_with_counts_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["mappings", "--report"]) == EXIT_OK
    out = capsys.readouterr().out
    assert "infections.json value_sets.acute" in out
    assert "icd10cm" in out and "icd10 " in out and "simple-icd-10-cm" in out


def test_committed_coverage_doc_is_current() -> None:
    version, sets = coverage(default_mappings_dir())
    committed = (ROOT / "docs" / "mappings-coverage.md").read_text(encoding="utf-8")
    assert committed == to_markdown(version, sets), "run: azaguard mappings --report --format markdown > " \
        "docs/mappings-coverage.md"


def test_committed_infection_value_sets_match_the_hierarchies() -> None:
    script = ROOT / "scripts" / "generate_infection_valuesets.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_the_same_patient_twice_is_one_patient(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = check(tmp_path, capsys, [b.patient(), b.patient(), b.azathioprine()])
    assert code == EXIT_OK and json.loads(out)["patient"] == "Patient/p1"
