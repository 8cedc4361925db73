"""The fast path (fhirview: only what the rules read, checked) against full fhir.resources validation.

Same findings on every shipped example, every sandbox patient and a generated Synthea-style record;
and what the rules read is refused by both when it is not valid FHIR."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from azaguard import fhirview
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet, load_json_file, resource_set_from_json
from azaguard.rules import evaluate
from azaguard.sandbox.large_record import synthea_like_record
from azaguard.sandbox.patients import build_patients

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


def both(resources: ResourceSet, m: Mappings, now: datetime) -> tuple[Any, Any]:
    fast = build_record(resources, m)
    full = build_record(resources, m, full_validation=True)
    return (fast, evaluate(fast, m, now)), (full, evaluate(full, m, now))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_give_the_same_record_and_findings(path: Path, mappings: Mappings) -> None:
    (fast, fast_findings), (full, full_findings) = both(load_json_file(path), mappings, NOW)
    assert fast == full
    assert fast_findings == full_findings


def test_sandbox_patients_give_the_same_findings(mappings: Mappings) -> None:
    for p in build_patients(NOW):
        (fast, fast_findings), (full, full_findings) = both(ResourceSet.from_resources(p.resources), mappings, NOW)
        assert fast == full, p.id
        assert fast_findings == full_findings, p.id


def test_large_synthea_style_record_gives_the_same_findings(mappings: Mappings) -> None:
    raw = orjson.dumps(synthea_like_record(NOW))
    (fast, fast_findings), (full, full_findings) = both(resource_set_from_json(orjson.loads(raw)), mappings, NOW)
    assert len(fast.measurements) > 100 and fast.medication_orders  # every rule has data to read
    assert fast == full
    assert fast_findings == full_findings


# --- invalid data: refused by both paths ------------------------------------------------------------

WBC: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "o1",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]},
    "subject": {"reference": "Patient/p1"},
    "effectiveDateTime": "2026-11-10T08:00:00Z",
    "valueQuantity": {"value": 5.1, "unit": "10*9/L", "system": "http://unitsofmeasure.org", "code": "10*9/L"},
}


def changed(path: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(WBC)
    *parents, last = path.split(".")
    holder: Any = out
    for key in parents:
        holder = holder[int(key)] if key.isdigit() else holder[key]
    if value is _DELETE:
        del holder[last]
    else:
        holder[last] = value
    return out


_DELETE = object()
INVALID = {
    "impossible date": ("effectiveDateTime", "2026-02-30"),
    "time without zone": ("effectiveDateTime", "2026-11-10T08:00:00"),
    "hour 25": ("effectiveDateTime", "2026-11-10T25:00:00Z"),
    "compact date": ("effectiveDateTime", "20261110"),
    "value is a boolean": ("valueQuantity.value", True),
    "code with spaces around": ("status", " final"),
    "empty status": ("status", ""),
    "no status": ("status", _DELETE),
    "no code": ("code", _DELETE),
    "coding is not a list": ("code.coding", {"system": "http://loinc.org", "code": "6690-2"}),
    "two values": ("valueString", "5.1"),
    "unit is a number": ("valueQuantity.unit", 5),
    "issued without time": ("issued", "2026-11-10"),
    "status is a list": ("status", ["final"]),  # (valid codes are remembered: a list is never looked up)
    "system is an object": ("code.coding.0.system", {"uri": "http://loinc.org"}),
    "status seen valid, then with a space": ("status", "final "),
    "time seen valid, then an impossible day": ("effectiveDateTime", "2026-11-31T08:00:00Z"),
    "instant seen valid, then without a zone": ("issued", "2026-11-10T08:00:00"),
}


@pytest.mark.parametrize("case", INVALID, ids=list(INVALID))
def test_invalid_values_the_rules_read_are_refused_by_both(case: str, mappings: Mappings) -> None:
    resource = changed(*INVALID[case])
    with pytest.raises(ValidationError):
        Observation.model_validate(resource)
    with pytest.raises(fhirview.FhirDataError):
        fhirview.read(resource)
    records = [
        build_record(ResourceSet.from_resources([resource]), mappings, full_validation=full) for full in (False, True)
    ]
    for record in records:
        assert [p.ref for p in record.problems] == ["Observation/o1"]
        assert record.measurements == ()


VALID = {
    "partial dates": ("effectiveDateTime", "2026-11"),
    "year only": ("effectiveDateTime", "2026"),
    "nanoseconds": ("effectiveDateTime", "2026-11-10T08:00:00.123456789+02:00"),
    "leap day": ("effectiveDateTime", "2024-02-29"),
    "integer value": ("valueQuantity.value", 5),
    "inner space in a code": ("valueQuantity.code", "10*9/L x"),
}


@pytest.mark.parametrize("case", VALID, ids=list(VALID))
def test_valid_values_are_accepted_by_both(case: str, mappings: Mappings) -> None:
    resource = changed(*VALID[case])
    Observation.model_validate(resource)
    fhirview.read(resource)


def test_the_fast_path_is_stricter_where_fhir_resources_is_lenient() -> None:
    # fhir.resources reads a number as a Unix time and a string as a decimal; FHIR JSON allows neither.
    for path, value in [("effectiveDateTime", 1762761600), ("valueQuantity.value", "5.1")]:
        Observation.model_validate(changed(path, value))
        with pytest.raises(fhirview.FhirDataError):
            fhirview.read(changed(path, value))


def test_elements_the_rules_do_not_read_are_not_checked() -> None:
    resource = {**WBC, "note": "not a list of Annotations", "performer": 7}
    with pytest.raises(ValidationError):
        Observation.model_validate(resource)
    assert fhirview.read(resource).valueQuantity.value == 5.1


def test_reading_an_element_outside_the_schema_is_a_programming_error() -> None:
    view = fhirview.read(WBC)
    assert view.valueString is None  # in the schema, absent
    with pytest.raises(fhirview.SchemaError):
        _ = view.performer


# --- decoding within limits, fast ------------------------------------------------------------------


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    from azaguard.resources import loads_limited

    text = '{"resourceType": "Bundle", "id": "' + "[" * 500 + '", "entry": []}'
    assert loads_limited(text.encode(), "x") == {"resourceType": "Bundle", "id": "[" * 500, "entry": []}


def test_nesting_past_the_limit_that_orjson_accepts_is_refused() -> None:
    from azaguard.resources import MAX_DEPTH, InputError, loads_limited

    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(InputError, match="nested deeper"):
        loads_limited(deep.encode(), "x")
    ok = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_limited(ok.encode(), "x") is not None


def test_the_nesting_bound_is_exact_when_balanced_and_never_below_otherwise() -> None:
    import random
    from itertools import accumulate

    from azaguard.resources import _nesting_at_most

    rng = random.Random(5)
    for _ in range(2000):
        marks = bytes(rng.choice(b"\x01\xff") for _ in range(rng.randint(0, 60)))
        sums = [0, *accumulate(b - 256 if b > 127 else b for b in marks)]
        exact, balanced = max(sums), sums[-1] == 0 and min(sums) >= 0
        bound = _nesting_at_most(marks)
        assert bound >= exact and (bound == exact or not balanced), marks


def test_what_orjson_refuses_gets_the_precise_message() -> None:
    from azaguard.resources import InputError, loads_limited

    for text, words in [(b'{"a": NaN}', "NaN"), (b'{"a": 1e999}', "out of range"), (b"\xff{}", "UTF-8")]:
        with pytest.raises(InputError, match=words):
            loads_limited(text, "x")


# --- repeated values checked once (fhirview._MEMO) ---------------------------------------------------

ORDER: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "m1",
    "status": "active",
    "intent": "order",
    "subject": {"reference": "Patient/p1"},
    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code": "197388"}], "text": "azathioprine 50 MG"},
    "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                           "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg"}}]}],
}


def _order(**changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(ORDER)
    dose = out["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]
    dose.update(changes)
    return out


def test_a_remembered_value_answers_only_for_the_very_same_json() -> None:
    # null is read (absent), NaN is refused; orjson writes both as null, so the text alone would confuse them.
    assert fhirview.read(_order(value=None)).dosageInstruction[0].doseAndRate[0].doseQuantity.value is None
    with pytest.raises(fhirview.FhirDataError, match="dosageInstruction"):
        fhirview.read(_order(value=float("nan")))
    # 50 and 50.0 are one value: both read, each as given.
    assert fhirview.read(_order(value=50)).dosageInstruction[0].doseAndRate[0].doseQuantity.value == 50
    assert fhirview.read(_order(value=50.0)).dosageInstruction[0].doseAndRate[0].doseQuantity.value == 50.0
    # An invalid value is never remembered: refused each time, and a valid one after it still reads.
    for _ in range(2):
        with pytest.raises(fhirview.FhirDataError, match="expected a number"):
            fhirview.read(_order(value="50"))
    # Built in Python, not JSON (orjson cannot write it): checked without remembering, as before.
    from decimal import Decimal

    with pytest.raises(fhirview.FhirDataError, match="expected a number"):
        fhirview.read(_order(value=Decimal(50)))
    odd = _order()
    odd["medicationCodeableConcept"]["extension"] = [{"valueDecimal": Decimal("0.5")}]  # not read
    assert fhirview.read(odd).medicationCodeableConcept.text == "azathioprine 50 MG"


def test_remembered_times_are_the_times_read() -> None:
    from datetime import date as date_

    for _ in range(2):  # the second read answers from memory
        assert fhirview.read(changed("effectiveDateTime", "2026-11-10T08:00:00.1234567+02:00")).effectiveDateTime == \
            datetime.fromisoformat("2026-11-10T08:00:00.123456+02:00")
        assert fhirview.read(changed("effectiveDateTime", "2026-11-10")).effectiveDateTime == date_(2026, 11, 10)
        assert fhirview.read(changed("effectiveDateTime", "2026-11")).effectiveDateTime == "2026-11"
        assert fhirview.read({**WBC, "issued": "2026-11-10T08:00:00Z"}).issued == datetime(2026, 11, 10, 8, tzinfo=UTC)


def test_a_remembered_dict_changed_afterwards_is_not_taken_for_its_old_value() -> None:
    order = _order()
    first = fhirview.read(order).medicationCodeableConcept
    assert first.text == "azathioprine 50 MG"
    concept = order["medicationCodeableConcept"]
    concept["text"] = "   "  # still valid JSON; the remembered dict is this same object, now changed
    again = fhirview.read(copy.deepcopy(ORDER)).medicationCodeableConcept
    assert again.text == "azathioprine 50 MG"
    assert fhirview.read(order).medicationCodeableConcept.text == "   "


def test_what_paused_work_allocated_is_promoted_unwalked_and_a_deliberate_freeze_is_kept() -> None:
    import gc

    from azaguard.resources import gc_paused

    assert gc.isenabled()
    frozen_before = gc.get_freeze_count()
    with gc_paused():
        assert not gc.isenabled()
        kept = [{"n": [i]} for i in range(50_000)]
    assert gc.isenabled()
    if frozen_before == 0:
        # Moved to the oldest generation: the young one is not left to walk all 100,000 containers.
        assert gc.get_count()[0] < 1_000 and gc.get_freeze_count() == 0
    gc.freeze()  # a process that froze on purpose (`azaguard serve`) keeps its frozen objects frozen
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            kept += [{"n": [i]} for i in range(10)]
        assert gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
    assert len(kept) == 50_010
