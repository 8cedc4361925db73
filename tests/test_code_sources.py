"""Every curated code carries where it was confirmed, or the UNVERIFIED marker with what was tried (issue 17).

The load refuses a code without either, a source for a code no longer listed, and a LOINC code whose check
digit is wrong (a mistyped code is no LOINC code: 80382-3 was listed for influenza A antigen, 80382-5).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from azaguard.mappings import (
    UNVERIFIED,
    MappingsError,
    default_mappings_dir,
    load_mappings,
    load_mappings_from,
    loinc_check_digit_ok,
)


@pytest.fixture()
def mappings_copy(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(default_mappings_dir(), target)
    return target


def _edit(folder: Path, name: str, edit: Callable[[Any], object]) -> None:
    path = folder / name
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))


# (file, how to reach the sourced set, a code in it)
PLACES = [
    ("signs.json", lambda d: d["signs"]["sore_throat"], "162397003"),
    ("signs.json", lambda d: d["observation_codes"], "418799008"),
    ("pancreatitis.json", lambda d: d["diagnoses"], "197456007"),
    ("lab_infections.json", lambda d: d["pathogens"]["cmv"], "72493-0"),
    ("analytes.json", lambda d: d["analytes"]["egfr"], "1011481000000105"),
    ("analytes.json", lambda d: d["activity_analytes"]["tpmt-activity"], "21563-2"),
]


@pytest.mark.parametrize(("name", "where", "code"), PLACES)
def test_a_code_without_a_source_is_refused(mappings_copy: Path, name: str, where: Any, code: str) -> None:
    _edit(mappings_copy, name, lambda d: where(d)["code_sources"].pop(code))
    with pytest.raises(MappingsError, match=f"without a source or the UNVERIFIED marker: {code}"):
        load_mappings_from(mappings_copy)


@pytest.mark.parametrize(("name", "where", "code"), PLACES)
def test_an_empty_source_is_refused(mappings_copy: Path, name: str, where: Any, code: str) -> None:
    _edit(mappings_copy, name, lambda d: where(d)["code_sources"].update({code: " "}))
    with pytest.raises(MappingsError, match=code):
        load_mappings_from(mappings_copy)


def test_a_source_for_a_code_not_listed_is_refused(mappings_copy: Path) -> None:
    _edit(mappings_copy, "signs.json", lambda d: d["signs"]["cough"]["code_sources"].update({"123": "verified: x"}))
    with pytest.raises(MappingsError, match="not listed: 123"):
        load_mappings_from(mappings_copy)


@pytest.mark.parametrize(("name", "edit"), [
    ("lab_infections.json", lambda d: d["pathogens"]["influenza"]["loinc"].append("80382-3")),
    ("analytes.json", lambda d: d["analytes"]["temperature"]["loinc"].append("81837-5")),
    ("pancreatitis.json", lambda d: d["lipase"]["loinc"].append("3040-4")),
])
def test_a_loinc_code_with_a_wrong_check_digit_is_refused(mappings_copy: Path, name: str, edit: Any) -> None:
    _edit(mappings_copy, name, edit)
    with pytest.raises(MappingsError, match="wrong check digit"):
        load_mappings_from(mappings_copy)


@pytest.mark.parametrize(("code", "ok"), [
    ("94500-6", True), ("80382-5", True), ("21563-2", True), ("2160-0", True), ("600-7", True),
    ("80382-3", False), ("30247-0", False), ("85520-3", False), ("2160", False), ("LA33-6", False),
])
def test_the_loinc_check_digit(code: str, ok: bool) -> None:
    assert loinc_check_digit_ok(code) is ok


def _sources() -> list[str]:
    m = load_mappings()
    out = [s for sign in m.signs.signs.values() for s in sign.code_sources.values()]
    out += list(m.signs.observation_codes.code_sources.values())
    out += list(m.pancreatitis.diagnoses.code_sources.values())
    out += [s for p in m.lab_infections.pathogens.values() for s in p.code_sources.values()]
    out += [s for a in m.analytes.analytes.values() for s in a.code_sources.values()]
    out += [s for a in m.analytes.activity_analytes.by_key.values() for s in a.code_sources.values()]
    return out


def test_every_shipped_source_says_verified_or_unverified() -> None:
    sources = _sources()
    assert sources
    kinds = Counter("unverified" if s.startswith(f"{UNVERIFIED}:") else "verified" for s in sources)
    assert all(s.startswith((f"{UNVERIFIED}:", "verified")) for s in sources)
    assert kinds["verified"] > kinds["unverified"] > 0  # the measured split is in the closing note


def test_the_codes_found_wrong_are_gone_or_corrected() -> None:
    m = load_mappings()
    influenza = m.lab_infections.pathogens["influenza"].loinc
    assert {"80382-5", "80383-3", "85477-8", "85478-6"} <= set(influenza)
    assert not {"80382-3", "80383-1", "85477-6", "85478-4"} & set(influenza)
    assert "85479-4" in m.lab_infections.pathogens["rsv"].loinc
    assert "30247-0" not in m.lab_infections.pathogens["cmv"].loinc
    assert "25458004" not in m.pancreatitis.diagnoses.codes["snomed"]  # Acute gastritis, not pancreatitis
    assert m.signs.signs["wound_not_healing"].codes["snomed"]["271618001"] == "Impaired wound healing"


def test_the_coverage_report_shows_each_sets_verified_and_unverified_codes() -> None:
    from azaguard.coverage import coverage, to_text

    version, sets = coverage(default_mappings_dir())
    cmv = next(s for s in sets if s.path == "pathogens.cmv")
    assert cmv.checked == (2, 2)  # 72493-0 and 33006-8 confirmed; 5002-1 and 49347-8 not
    assert "sources: 2 verified, 2 UNVERIFIED" in to_text(version, sets)
    total = [s.checked for s in sets if s.checked is not None]
    assert (sum(v for v, _ in total), sum(u for _, u in total)) == (
        sum(not s.startswith(UNVERIFIED) for s in _sources()), sum(s.startswith(UNVERIFIED) for s in _sources()))
