"""What the terminology could not identify at all is listed (never silence): a local-coded or free-text
medication that matches none of our drugs, and a vaccine named by nothing in the tables. A standard drug code
(RxNorm, ATC, SNOMED, NDC) identifies a drug as "none of ours"; a near miss is "may be azathioprine" instead."""

from __future__ import annotations

from typing import Any

from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import resource_set_from_json
from azaguard.unidentified import unidentified
from tests.clinical.test_medicines_independent_pass import ATC, LOCAL, RX, aza, other, transaction

M = load_mappings()


def listed(*resources: dict[str, Any]) -> tuple[str, ...]:
    return unidentified(build_record(resource_set_from_json(transaction(aza(), *resources)), M), M)


def test_local_code_and_unknown_name_is_listed() -> None:
    assert listed(other("Xyzzolan 10 mg", "X-99", LOCAL)) == ("Xyzzolan 10 mg",)


def test_free_text_vaccine_of_unknown_product_is_listed() -> None:
    assert listed(other("Impfung gegen XY", days_ago=0)) == ("Impfung gegen XY",)


def test_standard_codes_ours_and_near_misses_are_not_listed() -> None:
    assert listed(other("paracetamol 500 MG Oral Tablet", "313782", RX)) == ()
    assert listed(other("Paracetamol", "N02BE01", ATC)) == ()
    assert listed(other("Bactrim DS")) == ()
    assert listed(other("Imuren 50")) == ()
    assert listed(other("Impfstoff XY", "J07XX99", ATC, days_ago=0)) == ()  # a vaccine of unknown product: a caution
