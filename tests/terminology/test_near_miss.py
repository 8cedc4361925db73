"""Recognition that fails safe: INN spellings and brands per country are azathioprine; a near miss is
"may be azathioprine" (never "not azathioprine"); a different drug is not a near miss."""

from __future__ import annotations

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import Concept
from azaguard.terminology import drug_ingredients
from azaguard.terminology.nearmiss import NearMissIndex, normalise_name, words

M = load_mappings()


@pytest.mark.parametrize("name", [
    "Azathioprin 50 mg Filmtabletten", "Azatioprin 50 mg tabletta", "Azatiopryna 50 mg tabletki",
    "Azatioprina 50 mg comprimidos", "Azatiopriini 50 mg", "Atsatiopriini 50 mg tabletti", "Azatioprină 50 mg",
    "Azatioprín 50 mg", "Asatiopriin 50 mg", "Zytrim 50 mg", "Imurek 50 mg", "Imurel 50 mg", "Azamun 50 mg",
    "Imuprin 50 mg", "Azafalk 75 mg", "Jayempi 10 mg/ml",
])
def test_inn_spellings_and_brands_are_azathioprine(name: str) -> None:
    found = drug_ingredients(Concept(text=name), M)
    assert found.azathioprine == "name" and found.near_miss is None


@pytest.mark.parametrize(("name", "target"), [
    ("azathiorpine 50mg", "azathioprine"),  # transposed letters
    ("azatioprine 50 mg", "azathioprine"),  # a dropped h
    ("Azathioprene 50 mg", "azathioprine"),
    ("Imuren 50", "Imuran"),
    ("Imurann 50", "Imuran"),
    ("Azasam 75", "Azasan"),
])
def test_near_misses_say_may_be_azathioprine(name: str, target: str) -> None:
    found = drug_ingredients(Concept(text=name), M)
    assert found.azathioprine is None
    assert found.near_miss is not None and found.near_miss.target == target


@pytest.mark.parametrize("name", [
    "Azithromycin 250 mg", "Azacitidine 75 mg/m2", "Azulfidine 500 mg", "Imatinib 400 mg", "Azasite eye drops",
    "thioguanine 40 mg", "Amiodarone 200 mg", "paracetamol 500 mg", "Imurek",
])
def test_other_drugs_are_not_near_misses(name: str) -> None:
    assert drug_ingredients(Concept(text=name), M).near_miss is None


def test_allowance_grows_with_length_and_short_targets_allow_none() -> None:
    index = NearMissIndex(["abcde", "abcdef", "abcdefghi"], [(6, 1), (9, 2)])
    assert index.find(["abcdx"]) is None  # 5 letters: exact only
    assert index.find(["abcdex"]) is not None and index.find(["abcxyf"]) is None
    hit = index.find(["abcdefgxy"])
    assert hit is not None and hit.distance == 2 and hit.target == "abcdefghi"
    assert index.find(["abcdef"]) is None  # exact: no near miss


def test_names_are_normalised_to_comparable_words() -> None:
    assert normalise_name("AZATIOPRINĂ") == "azatioprina"
    assert words("Azathiorpine-50mg (Tabl.)") == ["azathiorpine", "mg", "tabl"]
