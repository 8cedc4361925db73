"""`check --bundle` decodes only the entries the record reads (record_from_bytes): the same result as
decoding every entry, on every example, every sandbox patient in every Bundle shape and a generated
Synthea-style record; the same refusal for hostile input; and, by design, no refusal for values in an
entry no rule reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from azaguard.mappings import Mappings, load_mappings
from azaguard.record import RECORD_TYPES
from azaguard.report import to_json
from azaguard.resources import (
    MAX_DEPTH,
    MAX_ENTRIES,
    InputError,
    ResourceSet,
    loads_limited,
    record_from_bytes,
    resource_set_from_json,
)
from azaguard.sandbox.large_record import synthea_like_record, with_azathioprine
from azaguard.sandbox.patients import EXAMPLES_NOW, build_patients, transaction_bundle
from azaguard.service import check_resources

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.json"))
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


def every_entry(raw: bytes) -> ResourceSet:
    return resource_set_from_json(loads_limited(raw, "the record"))


def read_entries(raw: bytes) -> ResourceSet:
    return record_from_bytes(raw, "the record", RECORD_TYPES)


def outcome(load: Any, raw: bytes, m: Mappings, now: datetime) -> tuple[str, str]:
    """The whole JSON report (findings, verdict, warnings), or the refusal."""
    try:
        result = check_resources(load(raw), mappings=m, now=now)
    except InputError as exc:
        return "refused", str(exc)
    return "checked", json.dumps(to_json(result), sort_keys=True, default=str)


def assert_same(raw: bytes, m: Mappings, now: datetime) -> tuple[str, str]:
    expected = outcome(every_entry, raw, m, now)
    assert outcome(read_entries, raw, m, now) == expected
    return expected


def bundle(resources: list[dict[str, Any]], kind: str = "collection") -> dict[str, Any]:
    entries = [{"fullUrl": f"urn:uuid:{r['resourceType']}-{r['id']}", "resource": r} for r in resources]
    if kind == "searchset":
        entries = [{**e, "search": {"mode": "match"}} for e in entries]
    return {"resourceType": "Bundle", "type": kind, "entry": entries}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_give_the_same_result(path: Path, mappings: Mappings) -> None:
    assert assert_same(path.read_bytes(), mappings, EXAMPLES_NOW)[0] == "checked"


def test_sandbox_patients_in_every_bundle_shape_give_the_same_result(mappings: Mappings) -> None:
    for p in build_patients(NOW):
        shapes = [
            bundle(p.resources),
            bundle(p.resources, "searchset"),
            transaction_bundle([p]),
            {"resourceType": "Bundle", "type": "batch-response",
             "entry": [{"resource": bundle(p.resources, "searchset"), "response": {"status": "200"}}]},
        ]
        for shape in shapes:
            assert assert_same(orjson.dumps(shape), mappings, NOW)[0] == "checked", p.id


def test_a_synthea_style_record_gives_the_same_result_and_skips_most_entries(mappings: Mappings) -> None:
    record = with_azathioprine(synthea_like_record(NOW), NOW)
    raw = orjson.dumps(record, option=orjson.OPT_INDENT_2)
    assert assert_same(raw, mappings, NOW)[0] == "checked"
    read = read_entries(raw)
    assert len(read.unread) > 450  # claims and explanations of benefit (encounters and procedures are read: dialysis)
    assert {r["resourceType"] for r in read.resources} <= RECORD_TYPES


def test_resource_type_not_first_or_odd_spacing_is_decoded(mappings: Mappings) -> None:
    p = build_patients(NOW)[0]
    text = orjson.dumps(bundle(p.resources)).decode()
    moved = text.replace('{"resourceType":"Observation",', '{"meta":{},"resourceType":"Observation",')
    spaced = text.replace('"resourceType":"MedicationRequest"', '"resourceType" :\n "MedicationRequest"')
    for variant in (moved, spaced):
        assert assert_same(variant.encode(), mappings, NOW)[0] == "checked"


def test_a_reference_to_an_entry_that_is_not_read_resolves_as_before(mappings: Mappings) -> None:
    p = build_patients(NOW)[0]
    group = {"resourceType": "Group", "id": "g1", "type": "person", "actual": True}
    resources = [dict(r) for r in p.resources]
    obs = next(r for r in resources if r["resourceType"] == "Observation")
    obs["subject"] = {"reference": "Group/g1"}
    raw = orjson.dumps(bundle([group, *resources]))
    kind, text = assert_same(raw, mappings, NOW)
    assert kind == "checked" and "another Group" in text


def test_no_patient_is_judged_on_every_entry(mappings: Mappings) -> None:
    p = build_patients(NOW)[0]
    others = [r for r in p.resources if r["resourceType"] != "Patient"]
    encounter = {"resourceType": "Encounter", "id": "e1", "status": "finished",
                 "class": {"code": "AMB"}, "subject": {"reference": "Patient/somebody-else"}}
    kind, text = assert_same(orjson.dumps(bundle([encounter, *others])), mappings, NOW)
    assert kind == "refused" and "different subjects" in text


def _deep(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


PATIENT = b'{"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}}'


def with_patient(*entries: bytes) -> bytes:
    """A Bundle whose Patient is read first: what follows is what decides."""
    return b'{"resourceType": "Bundle", "type": "collection", "entry": [' + b", ".join((PATIENT, *entries)) + b"]}"


HOSTILE = {
    "not JSON": b'{"resourceType": "Bundle", "entry": [' + PATIENT + b",",
    "not UTF-8 in an entry that is not read": with_patient(
        b'{"resource": {"resourceType": "Claim", "id": "c", "note": "\xff\xfe"}}'),
    "NaN": with_patient(b'{"resource": {"resourceType": "Claim", "total": NaN}}'),
    "nested past the limit in a read entry": with_patient(
        b'{"resource": {"resourceType": "Observation", "x": ' + orjson.dumps(_deep(MAX_DEPTH - 3)) + b"}}"),
    "nested past Python": with_patient(
        b'{"resource": {"resourceType": "Claim", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}}"),
    "out of range in a read entry": with_patient(
        b'{"resource": {"resourceType": "Observation", "valueQuantity": {"value": 1e999}}}'),
    "digits in a read entry": with_patient(
        b'{"resource": {"resourceType": "Observation", "valueQuantity": {"value": ' + b"9" * 5000 + b"}}}"),
    "an entry that is not an object": with_patient(b"[]"),
    "a resource without a type": with_patient(b'{"resource": {"id": "x"}}'),
    "a resource that is not an object": with_patient(b'{"resource": "Observation"}'),
    "not a Bundle": b'{"resourceType": "Patient", "id": "p"}',
    "an array": b'[{"resourceType": "Patient", "id": "p"}, {"resourceType": "Claim", "id": "c"}]',
    "too many entries": with_patient(*[b"{}"] * (MAX_ENTRIES + 1)),
    "a fullUrl that is not a string": with_patient(
        b'{"fullUrl": [1], "resource": {"resourceType": "Observation", "id": "o"}}'),
}


def test_the_depth_limit_in_a_read_entry_is_exact(mappings: Mappings) -> None:
    def observation(depth: int) -> bytes:  # the resource at depth 4: Bundle, entry list, entry, resource
        return with_patient(b'{"resource": {"resourceType": "Observation", "x": '
                            + orjson.dumps(_deep(depth - 4)) + b"}}")

    assert outcome(read_entries, observation(MAX_DEPTH), mappings, NOW)[0] == "checked"
    assert assert_same(observation(MAX_DEPTH + 1), mappings, NOW)[0] == "refused"


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_input_gets_the_same_answer(case: str, mappings: Mappings) -> None:
    assert_same(HOSTILE[case], mappings, NOW)


@pytest.mark.parametrize(
    "value",
    [b"1e999", b"9" * 5000, orjson.dumps(_deep(MAX_DEPTH + 5))],
    ids=["number past a double", "5000 digits", "nested past the limit"],
)
def test_a_value_in_an_entry_no_rule_reads_no_longer_refuses_the_record(value: bytes, mappings: Mappings) -> None:
    p = build_patients(NOW)[0]
    good = orjson.dumps(bundle(p.resources))
    claim = b'{"resource": {"resourceType": "Claim", "id": "c1", "total": ' + value + b"}}"
    raw = good.replace(b'"entry":[', b'"entry":[' + claim + b",", 1)
    assert outcome(every_entry, raw, mappings, NOW)[0] == "refused"  # every entry decoded: as before
    assert outcome(read_entries, raw, mappings, NOW) == outcome(every_entry, good, mappings, NOW)


def test_utf8_is_checked_across_the_stretches_it_is_read_in() -> None:
    from azaguard.resources import _UTF8_CHUNK, _utf8

    text = ("a" * (_UTF8_CHUNK - 1) + "é" + "b" * 10 + "日本" * 40_000 + "x").encode()
    assert _utf8(text)
    for at in (_UTF8_CHUNK - 1, _UTF8_CHUNK, _UTF8_CHUNK + 1, len(text) - 1):
        assert not _utf8(text[:at] + b"\xff" + text[at:]), at
    assert not _utf8(text[:_UTF8_CHUNK] + text[_UTF8_CHUNK + 1:])  # a character cut across the stretch's end
    assert not _utf8(text + b"\xe6\x97")  # cut short at the very end
