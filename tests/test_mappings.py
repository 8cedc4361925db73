"""The mappings load, validate, and refuse to load when they are wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from azaguard.mappings import MappingsError, default_mappings_dir, load_mappings, load_mappings_from


def test_bundled_mappings_load_with_a_version() -> None:
    m = load_mappings()
    assert m.version
    assert "03" in m.vaccines.live and "206" in m.vaccines.not_live and "89" in m.vaccines.ambiguous
    assert m.policy.infection.fever_threshold_cel.value == 38.0
    assert m.policy.infection.fever_threshold_cel.source


def test_loaded_once_per_process() -> None:
    assert load_mappings() is load_mappings()


@pytest.fixture()
def mappings_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), target)
    return target


def _edit(folder: Path, name: str, edit: object) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    edit(data)  # type: ignore[operator]
    path.write_text(json.dumps(data))


def test_a_cvx_code_in_two_lists_is_refused(mappings_copy: Path) -> None:
    _edit(mappings_copy, "vaccines.json", lambda d: d["not_live"].update({"03": "MMR (wrongly)"}))
    with pytest.raises(MappingsError, match="both live and not_live"):
        load_mappings_from(mappings_copy)


def test_a_threshold_without_source_is_refused(mappings_copy: Path) -> None:
    _edit(mappings_copy, "analytes.json", lambda d: d["analytes"]["wbc"]["threshold"].pop("source"))
    with pytest.raises(MappingsError, match="source"):
        load_mappings_from(mappings_copy)


def test_an_analyte_with_an_unknown_dimension_is_refused(mappings_copy: Path) -> None:
    _edit(mappings_copy, "analytes.json", lambda d: d["analytes"]["wbc"].update({"dimension": "furlongs"}))
    with pytest.raises(MappingsError, match="unknown dimension"):
        load_mappings_from(mappings_copy)


def test_an_unknown_field_is_refused(mappings_copy: Path) -> None:
    _edit(mappings_copy, "policy.json", lambda d: d["infection"].update({"fever_treshold": 37}))
    with pytest.raises(MappingsError):
        load_mappings_from(mappings_copy)


def test_malformed_json_is_refused(mappings_copy: Path) -> None:
    (mappings_copy / "units.json").write_text("{not json")
    with pytest.raises(MappingsError, match="invalid mappings"):
        load_mappings_from(mappings_copy)


def test_a_schedule_can_be_chosen_and_an_unknown_one_is_refused() -> None:
    m = load_mappings().with_monitoring_schedule("bsr-2017")
    assert m.policy.monitoring.default_schedule == "bsr-2017"
    with pytest.raises(MappingsError, match="unknown monitoring schedule"):
        load_mappings().with_monitoring_schedule("weekly-forever")
