"""Unit tests of the terminology seam: codes as codes, names whole-word, memoised, data validated."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from azaguard.mappings import MappingsError, default_mappings_dir, load_mappings, load_mappings_from
from azaguard.record import Code, Concept
from azaguard.terminology import cvx_key, drug_ingredients, ndc_product, vaccine_class

M = load_mappings()
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def text(t: str) -> Concept:
    return Concept(text=t)


def test_cvx_codes_compare_as_codes() -> None:
    assert cvx_key("3") == cvx_key("03") == cvx_key(" 003 ")
    assert cvx_key("0") == "0"


@pytest.mark.parametrize(
    ("code", "product"),
    [("00006-4681-00", "000064681"), ("6-4681-0", "000064681"), ("00006468100", "000064681"), ("0006468100", None)],
)
def test_ndc_is_compared_by_labeler_and_product(code: str, product: str | None) -> None:
    assert ndc_product(code) == product


def test_names_are_whole_words_and_separator_insensitive() -> None:
    assert drug_ingredients(text("cotrimoxazole 960"), M).interaction("co-trimoxazole") is not None
    assert drug_ingredients(text("co trimoxazole"), M).interaction("co-trimoxazole") is not None
    assert drug_ingredients(text("Imuranex"), M).azathioprine is None
    assert drug_ingredients(text("Patient takes Imuran."), M).azathioprine == "name"


def test_a_code_match_beats_a_name_match() -> None:
    c = Concept(codings=(Code(RX, "197388", "Imuran 50 mg"),))
    assert drug_ingredients(c, M).azathioprine == "code"


def test_recognition_is_memoised_per_concept() -> None:
    c = text("meropenem 1 g IV")
    assert drug_ingredients(c, M) is drug_ingredients(c, M)


def test_every_anti_infective_is_a_systemic_class_and_the_list_is_broad() -> None:
    ings = M.medications.anti_infectives.ingredients
    assert len(ings) >= 100
    assert {i.atc_class for i in ings} == {"J01", "J02", "J04", "J05"}
    assert sum(1 for i in ings if i.rxnorm) >= 80


def test_value_sets_carry_source_and_date() -> None:
    meds = M.medications
    for vs in (meds, meds.azathioprine, meds.anti_infectives, M.vaccines, M.vaccines.brands, M.vaccines.crosswalks):
        assert vs.source and vs.as_of
    assert all(i.source and i.as_of for i in meds.interactions)


def test_unknown_vaccine_code_in_an_immunization_is_ambiguous_not_absent() -> None:
    c = Concept(codings=(Code("urn:local", "X1"),))
    assert vaccine_class(c, M).kind == "not-a-vaccine"
    assert vaccine_class(c, M, is_vaccine=True).kind == "ambiguous"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "m"
    shutil.copytree(default_mappings_dir(), target)
    return target


def test_a_brand_pointing_at_an_unlisted_cvx_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    data = json.loads((folder / "vaccines.json").read_text())
    data["brands"]["cvx_by_brand"]["Newvax"] = "9999"
    (folder / "vaccines.json").write_text(json.dumps(data))
    with pytest.raises(MappingsError, match="no list"):
        load_mappings_from(folder)


def test_an_anti_infective_outside_its_atc_class_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    data = json.loads((folder / "medications.json").read_text())
    data["anti_infectives"]["ingredients"][0]["codes"]["atc"] = ["L04AX01"]
    (folder / "medications.json").write_text(json.dumps(data))
    with pytest.raises(MappingsError, match="no ATC code"):
        load_mappings_from(folder)


def test_a_value_set_without_a_date_is_refused(tmp_path: Path) -> None:
    folder = _copy(tmp_path)
    data = json.loads((folder / "medications.json").read_text())
    del data["azathioprine"]["as_of"]
    (folder / "medications.json").write_text(json.dumps(data))
    with pytest.raises(MappingsError, match="as_of"):
        load_mappings_from(folder)


def test_terminology_never_imports_the_rules() -> None:
    # The rules ask the terminology; the terminology must not depend on them (no cycle, one direction).
    from pathlib import Path

    import azaguard.terminology as terminology

    for path in Path(terminology.__file__).parent.glob("*.py"):
        assert "azaguard.rules" not in path.read_text(encoding="utf-8"), path.name
