"""Vaccines by WHO ATC (J07) and by the words for "live" in other languages; immune sera (J06) are not."""

from __future__ import annotations

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import Code, Concept
from azaguard.terminology import is_vaccine_concept, vaccine_class

M = load_mappings()
ATC = "http://www.whocc.no/atc"


def atc(code: str, text: str | None = None) -> Concept:
    return Concept(codings=(Code(ATC, code),), text=text)


@pytest.mark.parametrize(("code", "kind"), [
    ("J07BL01", "live"), ("J07BD52", "live"), ("J07BK01", "live"), ("J07AP01", "live"), ("J07AN01", "live"),
    ("J07BH01", "live"), ("J07BB03", "live"), ("J07BK03", "not-live"), ("J07AM01", "not-live"),
    ("J07BB02", "not-live"), ("J07XX99", "ambiguous"), ("j07bl01", "live"),
])
def test_atc_j07(code: str, kind: str) -> None:
    assert vaccine_class(atc(code), M).kind == kind
    assert is_vaccine_concept(atc(code), M)


def test_atc_outside_j07_is_not_a_vaccine() -> None:
    assert not is_vaccine_concept(atc("J06BB05", "rabies immunoglobulin"), M)  # an immune serum
    assert not is_vaccine_concept(atc("L04AX01", "Azathioprin"), M)
    assert not is_vaccine_concept(atc("J01CA04", "Amoxicillin"), M)


@pytest.mark.parametrize("name", [
    "Vaccino vivo attenuato (polvere e solvente)", "Vaccin vivant atténué, poudre et solvant",
    "Vacuna de virus vivos atenuados", "Lebendimpfstoff gegen Gelbfieber", "Impfstoff, lebend",
    "Szczepionka żywa, atenuowana", "levend verzwakt vaccin", "Vacina viva atenuada",
])
def test_live_in_other_languages(name: str) -> None:
    found = vaccine_class(Concept(text=name), M)
    assert found.kind == "live", found


@pytest.mark.parametrize("name", ["Vaccino antinfluenzale inattivato", "Impfstoff XY", "Szczepionka przeciw WZW B"])
def test_other_vaccine_words_are_never_no_vaccine(name: str) -> None:
    assert vaccine_class(Concept(text=name), M).kind in ("ambiguous", "not-live")
    assert is_vaccine_concept(Concept(text=name), M)


def test_drugs_named_like_live_words_are_not_vaccines() -> None:
    assert vaccine_class(Concept(text="Vivotif"), M).kind == "live"  # a live typhoid brand
    assert not is_vaccine_concept(Concept(text="Lebendspender Tacrolimus 1 mg"), M)
