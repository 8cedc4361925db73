"""One CodeableConcept parser: strict on what a code is (a non-empty string), lenient only when salvaging."""

from __future__ import annotations

import pytest

from azaguard.errors import FhirDataError, InputError
from azaguard.fhirtypes.concept import (
    Code,
    Concept,
    concept,
    optional_concept,
    raw_codings,
    readable_codes,
    readable_concept,
)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def test_a_concept_keeps_system_code_display_and_text() -> None:
    found = concept({"coding": [{"system": RXNORM, "code": "1256", "display": "azathioprine"}], "text": "Imuran"})
    assert found == Concept(codings=(Code(RXNORM, "1256", "azathioprine"),), text="Imuran")


def test_a_coding_without_a_code_adds_nothing_and_text_alone_is_a_concept() -> None:
    assert concept({"coding": [{"display": "azathioprine"}], "text": "aza"}) == Concept(text="aza")
    assert concept({}) == Concept()
    assert optional_concept({}) is None and optional_concept(None) is None
    assert optional_concept({"text": "aza"}) == Concept(text="aza")


@pytest.mark.parametrize("code", [1256, 12.5, True, ["1256"], {"v": "1256"}, "", "   "])
def test_a_code_that_is_not_a_non_empty_string_is_refused_never_read_as_another_code(code: object) -> None:
    with pytest.raises(FhirDataError, match=r"Coding\.code"):
        concept({"coding": [{"system": RXNORM, "code": code}]})


@pytest.mark.parametrize("cc", [
    "1256", ["x"], {"coding": {"code": "1256"}}, {"coding": ["1256"]}, {"text": 5},
    {"coding": [{"code": "1256", "system": 5}]}, {"coding": [{"code": "1256", "display": ["a"]}]},
])
def test_anything_else_that_is_not_a_codeable_concept_is_refused(cc: object) -> None:
    with pytest.raises(FhirDataError):
        concept(cc)


def test_the_data_error_is_an_input_error_and_not_a_value_error() -> None:
    with pytest.raises(FhirDataError) as caught:
        concept({"coding": [{"code": 7}]})
    assert isinstance(caught.value, InputError) and not isinstance(caught.value, ValueError)


def test_salvage_from_an_invalid_concept_keeps_only_the_valid_codings() -> None:
    cc = {"coding": [{"system": RXNORM, "code": 1256}, {"system": RXNORM, "code": "1256"}, "x",
                     {"system": 3, "code": "9"}], "text": 4}
    assert readable_codes(cc) == (Code(RXNORM, "1256"),)
    assert readable_concept(cc) == Concept(codings=(Code(RXNORM, "1256"),))
    assert readable_codes("not a concept") == () and readable_concept(None) == Concept()


def test_the_quick_reading_gives_each_string_code_with_its_system_and_never_raises() -> None:
    cc = {"coding": [{"system": RXNORM, "code": "1256"}, {"code": "x1"}, {"system": 5, "code": "x2"},
                     {"code": 1256}, "1256", {"display": "azathioprine"}]}
    assert raw_codings(cc) == [(RXNORM, "1256"), (None, "x1"), (None, "x2")]
    for not_a_concept in (None, "1256", 5, ["1256"], {"coding": "1256"}, {"coding": {"code": "1256"}}):
        assert raw_codings(not_a_concept) == []
