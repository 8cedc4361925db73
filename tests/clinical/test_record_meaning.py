"""The reading pass (record_meaning): what it leaves out and why, whose the context is, and input it must survive.

The clinical scenarios are in test_meaning_pass.py; these pin the record the pass builds (dropped reasons, related
entries, the script readings) and that hostile shapes of the elements it reads never raise.
"""

from __future__ import annotations

from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.record_meaning import read_meaning
from azaguard.resources import ResourceSet
from azaguard.terminology.scripts import fold, foreign_letters, read_terms, unreadable
from tests.clinical.builders import azathioprine, observation, patient

Resource = dict[str, Any]


def build(*resources: Resource) -> Any:
    return build_record(ResourceSet.from_resources([patient(), *resources]), load_mappings())


def reasons(record: Any) -> dict[str, str]:
    return {d.ref: d.reason for d in record.dropped}


def test_focus_on_a_fetus_is_dropped_and_kept_as_their_context() -> None:
    fetal = observation("777-3", 40, "10*3/uL", rid="fetal") | {"focus": [{"reference": "Patient/fetus-1",
                                                                           "display": "Fetus"}]}
    record = build(azathioprine(), fetal)
    assert not record.measurements_of("platelets")
    assert "about Fetus (Observation.focus)" in reasons(record)["Observation/fetal"]
    assert [r.whose for r in record.related] == ["Fetus"]


def test_focus_on_the_patients_own_condition_stays() -> None:
    cond = {"resourceType": "Condition", "id": "c1", "subject": {"reference": "Patient/p1"}, "code": {"text": "x"}}
    own = observation("1742-6", 250, "U/L", rid="alt") | {"focus": [{"reference": "Condition/c1"}]}
    record = build(azathioprine(), cond, own)
    assert [m.ref for m in record.measurements_of("alt")] == ["Observation/alt"]


def test_family_history_is_related_context_never_a_measurement() -> None:
    fmh = {"resourceType": "FamilyMemberHistory", "id": "f1", "status": "completed",
           "patient": {"reference": "Patient/p1"}, "relationship": {"text": "mother"},
           "condition": [{"code": {"text": "TPMT deficiency"}}]}
    record = build(azathioprine(), fmh)
    assert [(r.ref, r.whose, r.names) for r in record.related] == [
        ("FamilyMemberHistory/f1", "mother", ("TPMT deficiency",))]
    assert not record.measurements


@pytest.mark.parametrize(("versions", "kept"), [
    ((("1", "active"), ("2", "stopped")), "stopped"),
    ((("2", "active"), ("1", "stopped")), "active"),
    ((("10", "stopped"), ("9", "active")), "stopped"),  # numeric, not text, order
])
def test_latest_version_wins(versions: tuple[tuple[str, str], ...], kept: str) -> None:
    copies = []
    for vid, status in versions:
        r = azathioprine(status=status, rid="aza")
        r["meta"] = {"versionId": vid}
        copies.append(r)
    record = build(*copies)
    assert [o.status for o in record.medicine_uses] == [kept]
    assert "older version" in reasons(record)["MedicationRequest/aza"]


def test_copies_without_version_information_are_all_read_as_before() -> None:
    record = build(azathioprine(rid="a"), azathioprine(rid="a", status="stopped"))
    assert len(record.medicine_uses) == 2


def test_preliminary_superseded_only_for_the_same_time() -> None:
    p = observation("6690-2", 2.1, "10*3/uL", status="preliminary", rid="p", days_ago=1)
    f = observation("6690-2", 5.8, "10*3/uL", rid="f", days_ago=1)
    later = observation("6690-2", 2.0, "10*3/uL", status="preliminary", rid="later", hours_ago=2, days_ago=0)
    record = build(azathioprine(), p, f, later)
    assert sorted(m.ref for m in record.measurements_of("wbc")) == ["Observation/f", "Observation/later"]
    assert "superseded by the final result Observation/f" in reasons(record)["Observation/p"]


def test_do_not_perform_orders_are_prohibitions() -> None:
    record = build(azathioprine(rid="dnp") | {"doNotPerform": True})
    assert not record.medicine_uses
    assert "prohibition" in reasons(record)["MedicationRequest/dnp"]


def test_registered_without_value_is_not_a_result() -> None:
    record = build(azathioprine(), observation("6690-2", None, status="registered", rid="reg"))
    assert not record.measurements_of("wbc")
    assert "no result yet" in reasons(record)["Observation/reg"]


def test_contained_members_answer_to_the_panel() -> None:
    member = observation("6690-2", 2.1, "10*3/uL", rid="w")
    del member["subject"]
    panel = observation("58410-2", None, rid="panel") | {"contained": [member], "hasMember": [{"reference": "#w"}]}
    record = build(azathioprine(), panel)
    assert [(m.ref, m.result.value) for m in record.measurements_of("wbc")] == [("Observation/panel", 2.1)]


def test_linked_patient_ids_are_this_patients() -> None:
    me = patient() | {"link": [{"other": {"reference": "https://old.example.org/fhir/Patient/old"},
                                "type": "replaces"}]}
    order = azathioprine() | {"subject": {"reference": "Patient/old"}}
    record = build_record(ResourceSet.from_resources([me, order]), load_mappings())
    assert len(record.medicine_uses) == 1 and not record.dropped


@pytest.mark.parametrize("hostile", [
    {"focus": "Patient/x"}, {"focus": [1, None, {"reference": 5}]}, {"hasMember": [{"reference": ["#x"]}]},
    {"hasMember": "#x", "contained": "x"}, {"meta": {"versionId": 3}}, {"meta": "x"}, {"status": ["final"]},
    {"extension": [{"url": ["x"]}]}, {"specimen": {"reference": 7}}, {"valueBoolean": False, "code": "x"},
    {"valueCodeableConcept": {"coding": [{"code": ["2667000"]}]}}, {"doNotPerform": "true"},
])
def test_hostile_shapes_never_raise(hostile: Resource) -> None:
    build(azathioprine(), observation("6690-2", 5.0, "10*3/uL") | hostile,
          {"resourceType": "Patient", "id": "p2", "link": hostile.get("focus", [{"other": 3}])})


# --- scripts ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "terms"), [
    ("硫唑嘌呤片 50mg", ("azathioprine",)),
    ("ｱｻﾞﾁｵﾌﾟﾘﾝ錠", ("azathioprine",)),  # half-width katakana: NFKC, voicing marks folded
    ("ΑΖΑΘΕΙΟΠΡΊΝΗ", ("azathioprine",)),  # upper case, accent
    ("آزاتیوپرین", ("azathioprine",)),  # Persian letters read as Arabic
    ("АЗАТИОПРИН", ("azathioprine",)),
    ("流感病毒裂解疫苗", ("influenza", "split", "vaccine")),
    ("Azathioprin", ()),  # Latin text is the recognisers' own business
])
def test_read_terms(text: str, terms: tuple[str, ...]) -> None:
    assert read_terms(text, load_mappings()) == terms


def test_unreadable_only_when_no_name_can_be_read() -> None:
    m = load_mappings()
    assert unreadable(("อะซาไธโอพรีน",), m) is not None
    assert unreadable(("二甲双胍",), m) is not None  # a covered script, but nothing the tables know
    assert unreadable(("二甲双胍", "metformin"), m) is None  # a Latin name: the recognisers decide
    assert unreadable(("Azatioprină",), m) is None  # Romanian diacritics are Latin letters
    assert not foreign_letters("Azathioprine é ł ß 50 mg") and foreign_letters("50 мг")
    assert fold("Ё") == fold("е")


def test_absent_finding_is_dropped_but_an_absent_measurement_is_a_result() -> None:
    absent = {"coding": [{"system": "http://snomed.info/sct", "code": "2667000", "display": "Absent"}]}
    fever = {"resourceType": "Observation", "id": "fever", "status": "final", "subject": {"reference": "Patient/p1"},
             "code": {"coding": [{"system": "http://snomed.info/sct", "code": "386661006", "display": "Fever"}]},
             "valueCodeableConcept": absent}
    activity = {"resourceType": "Observation", "id": "tpmt", "status": "final", "subject": {"reference": "Patient/p1"},
                "code": {"coding": [{"system": "urn:lab:local", "code": "TPMTA"}], "text": "TPMT activity"},
                "category": [{"coding": [{"code": "laboratory"}]}], "valueCodeableConcept": absent}
    # Every resource offered to a reader that reads them all (as i17's sign and activity readers do).
    reading = read_meaning(ResourceSet.from_resources([patient(), fever, activity]), load_mappings(), lambda r: True)
    why = dict(reading.dropped)
    assert "finding as absent (value Absent)" in why["Observation/fever"]
    assert "Observation/tpmt" not in why
