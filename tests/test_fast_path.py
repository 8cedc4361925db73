"""The record's reader (fhirshapes: typed Structs of only what the rules read, each checked) against full
fhir.resources validation: both accept every resource of the shipped examples, every sandbox patient and a
generated Synthea-style record; what the rules read is refused by both when it is not valid FHIR."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.R4B.observation import Observation
from pydantic import ValidationError

from azaguard import fhirshapes
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet, load_json_file, resource_set_from_json
from azaguard.sandbox.large_record import synthea_like_record
from azaguard.sandbox.patients import build_patients
from tests.fhirparity import disagreements

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_read_as_fhir_resources_reads_them(path: Path, mappings: Mappings) -> None:
    resources = load_json_file(path)
    assert disagreements(resources.resources) == []
    assert not [p for p in build_record(resources, mappings).problems if "invalid" in p.error]


def test_sandbox_patients_are_read_as_fhir_resources_reads_them() -> None:
    for p in build_patients(NOW):
        assert disagreements(p.resources) == [], p.id


def test_large_synthea_style_record_is_read_as_fhir_resources_reads_it(mappings: Mappings) -> None:
    bundle = orjson.loads(orjson.dumps(synthea_like_record(NOW)))
    resources = [e["resource"] for e in bundle["entry"]]
    assert disagreements(resources) == []
    record = build_record(resource_set_from_json(bundle), mappings)
    assert len(record.measurements) > 100 and record.medicine_uses and not record.problems


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
    with pytest.raises(fhirshapes.FhirDataError):
        fhirshapes.read(resource, fhirshapes.Observation)
    record = build_record(ResourceSet.from_resources([resource]), mappings)
    assert [p.ref for p in record.problems] == ["Observation/o1"]
    assert record.measurements == ()


def test_what_is_wrong_is_said_in_words_naming_the_element() -> None:
    for case, (path, value) in INVALID.items():
        with pytest.raises(fhirshapes.FhirDataError) as caught:
            fhirshapes.read(changed(path, value), fhirshapes.Observation)
        said = str(caught.value)
        assert said.startswith("invalid ") and "regex" not in said and "`" not in said, case
        assert path.split(".")[0] in said, case
    uri = changed("code.coding.0.system", "http://loinc .org")
    with pytest.raises(fhirshapes.FhirDataError, match=r"invalid code.coding\[0\].system: expected a URI"):
        fhirshapes.read(uri, fhirshapes.Observation)


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
    fhirshapes.read(resource, fhirshapes.Observation)


def test_the_fast_path_is_stricter_where_fhir_resources_is_lenient() -> None:
    # fhir.resources reads a number as a Unix time and a string as a decimal; FHIR JSON allows neither.
    for path, value in [("effectiveDateTime", 1762761600), ("valueQuantity.value", "5.1")]:
        Observation.model_validate(changed(path, value))
        with pytest.raises(fhirshapes.FhirDataError):
            fhirshapes.read(changed(path, value), fhirshapes.Observation)


def test_elements_the_rules_do_not_read_are_not_checked() -> None:
    resource = {**WBC, "note": "not a list of Annotations", "performer": 7}
    with pytest.raises(ValidationError):
        Observation.model_validate(resource)
    quantity = fhirshapes.read(resource, fhirshapes.Observation).valueQuantity
    assert quantity is not None and quantity.value == 5.1


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


# --- values as read ------------------------------------------------------------------------------------

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


def _dose_value(**changes: Any) -> float | None:
    out = copy.deepcopy(ORDER)
    out["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"].update(changes)
    order = fhirshapes.read(out, fhirshapes.MedicationRequest)
    assert order.dosageInstruction is not None and order.dosageInstruction[0].doseAndRate is not None
    dose = order.dosageInstruction[0].doseAndRate[0].doseQuantity
    assert dose is not None
    return dose.value


def test_numbers_are_read_as_json_gives_them_and_nan_is_refused() -> None:
    assert _dose_value(value=None) is None  # null: absent
    assert _dose_value(value=50) == 50 and _dose_value(value=50.5) == 50.5
    for bad in (float("nan"), float("inf"), "50", True):
        with pytest.raises(fhirshapes.FhirDataError, match="dosageInstruction"):
            _dose_value(value=bad)


def test_times_are_kept_as_their_checked_text_and_read_as_moments(mappings: Mappings) -> None:
    reader = fhirshapes.Reader()
    cases = [("effectiveDateTime", "2026-11-10T08:00:00.1234567+02:00", fhirshapes.FhirDateTime),
             ("effectiveDateTime", "2026-11", fhirshapes.FhirDateTime),
             ("issued", "2026-11-10T08:00:00Z", fhirshapes.FhirInstant)]
    for _ in range(2):  # the second read of one record answers from what it checked already
        for element, text, kind in cases:
            found = getattr(reader.read(changed(element, text), fhirshapes.Observation), element)
            assert isinstance(found, kind) and found == text
    # A time seen valid as a dateTime is still refused as an instant without its form.
    with pytest.raises(fhirshapes.FhirDataError, match="issued"):
        reader.read(changed("issued", "2026-11-10"), fhirshapes.Observation)
    nano = changed("effectiveDateTime", "2026-11-10T08:00:00.1234567+02:00")
    read = build_record(ResourceSet.from_resources([nano]), mappings).measurements[0].effective
    assert read == datetime(2026, 11, 10, 6, 0, 0, 123456, tzinfo=UTC)


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
