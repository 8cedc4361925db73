"""Units of time in days: one table in mappings/units.json, validated on load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from azaguard.fhirtypes.timeunits import days_per
from azaguard.mappings import Mappings, MappingsError, default_mappings_dir, load_mappings, load_mappings_from


@pytest.fixture(scope="module")
def m() -> Mappings:
    return load_mappings()


@pytest.mark.parametrize(("unit", "days"), [
    ("d", 1.0), ("wk", 7.0), ("mo", 30.4375), ("a", 365.25), ("h", 1 / 24), ("days", 1.0), ("Weeks", 7.0),
    (" week ", 7.0), ("D", 1.0), ("months", 30.4375),
])
def test_known_units(m: Mappings, unit: str, days: float) -> None:
    assert days_per(unit, m) == pytest.approx(days)


@pytest.mark.parametrize("unit", [None, "", "mg", "fortnight", "1"])
def test_a_unit_that_is_not_one_of_time_is_never_guessed(m: Mappings, unit: str | None) -> None:
    assert days_per(unit, m) is None


@pytest.mark.parametrize(("change", "words"), [
    (lambda t: t["days"].update(d=0), "positive"),
    (lambda t: t["words"].update(fortnight="fn"), "not units of time"),
    (lambda t: t["words"].update(Days="d"), "lower case"),
])
def test_the_table_is_validated_on_load(tmp_path: Path, change: object, words: str) -> None:
    folder = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), folder)
    units = json.loads((folder / "units.json").read_text())
    change(units["time"])  # type: ignore[operator]
    (folder / "units.json").write_text(json.dumps(units))
    with pytest.raises(MappingsError, match=words):
        load_mappings_from(folder)
