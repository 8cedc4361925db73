"""The patient's words and the check-in Questionnaire are validated on load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import msgspec
import pytest

from azaguard.mappings import default_mappings_dir
from azaguard.patient.content import PatientContentError, load_patient_content, load_questionnaire, sign_options


def _copy(tmp_path: Path, name: str, change: Any) -> Path:
    for f in ("patient.json", "checkin-questionnaire.json"):
        shutil.copy(default_mappings_dir() / f, tmp_path / f)
    data = json.loads((tmp_path / name).read_text())
    change(data)
    (tmp_path / name).write_text(json.dumps(data))
    return tmp_path


def test_every_sign_is_snomed_coded_and_worded(questionnaire: dict[str, Any]) -> None:
    options = sign_options(questionnaire)
    assert len(options) >= 20 and {o["system"] for o in options} == {"http://snomed.info/sct"}


def test_an_unknown_placeholder_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path, "patient.json", lambda d: d["nothing_to_do"].update(todo="Call {doctor} now."))
    with pytest.raises(PatientContentError, match="unknown placeholder"):
        load_patient_content(folder)


@pytest.mark.parametrize("audience", ["clinician", "patient"])
def test_the_wording_tables_are_validated_on_load(audience: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One wording mechanism for both audiences: a table that names an unknown fact or rule never loads."""
    from azaguard import wording

    table = dict(wording.TABLES[audience])
    key, entry = next(iter(table.items()))
    field = "reason" if audience == "clinician" else "todo"
    bad = msgspec.structs.replace(entry, **{field: "{doctor}"})
    monkeypatch.setattr(wording, audience.upper(), {**table, key: bad})
    with pytest.raises(ValueError, match=r"unknown placeholder\(s\) \['doctor'\]"):
        wording.validate_tables()
    monkeypatch.setattr(wording, audience.upper(), {**table, "no-such-rule/x": entry})
    with pytest.raises(ValueError, match="registered rule"):
        wording.validate_tables()


def test_the_patient_table_is_the_wording_layers_and_not_in_patient_json() -> None:
    from azaguard import wording

    data = json.loads((default_mappings_dir() / "patient.json").read_text())
    assert "messages" not in data
    assert wording.TABLES["patient"] is wording.PATIENT and wording.PATIENT["*/cannot-evaluate"].urgency == "next-visit"


def test_an_option_without_patient_words_is_refused(tmp_path: Path) -> None:
    def add(q: dict[str, Any]) -> None:
        q["item"][1]["answerOption"].append({"valueCoding": {"system": "http://snomed.info/sct", "code": "1"}})

    folder = _copy(tmp_path, "checkin-questionnaire.json", add)
    with pytest.raises(PatientContentError, match=r"not a SNOMED CT sign named in patient\.json"):
        load_questionnaire(folder)
