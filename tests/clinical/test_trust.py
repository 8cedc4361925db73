"""Trust (clinical-rules.md §7, §8): data that looks valid but cannot be believed never clears a rule.

Future-dated results, values outside the physiological range after unit conversion, another
patient's resources, and same-time results that disagree. Evaluated at NOW (2026-11-01 12:00 UTC);
the patient takes azathioprine 50 mg twice daily.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from msgspec.structs import replace

from azaguard.findings import Finding
from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import resource_set_from_json
from azaguard.rules import evaluate
from tests.clinical.builders import (
    NOW,
    Resource,
    azathioprine,
    findings,
    for_rule,
    observation,
    patient,
    recommendation,
    record_of,
    status_of,
)
from tests.words import said


def cbc(wbc: float = 6.0, *, days_ago: float = 3, unit: str = "10*9/L", **kw: Any) -> list[Resource]:
    return [
        observation("6690-2", wbc, unit, days_ago=days_ago, **kw),
        observation("751-8", 3.5, "10*9/L", days_ago=3),
        observation("777-3", 250, "10*9/L", days_ago=3),
    ]


def temp(value: float, unit: str = "Cel", *, hours_ago: float = 6, **kw: Any) -> Resource:
    return observation("8310-5", value, unit, days_ago=0, hours_ago=hours_ago, **kw)


def codes(found: list[Finding]) -> set[str]:
    return {f.code for f in found}


# --- future-dated data ------------------------------------------------------------------------------


def test_future_dated_normal_wbc_cannot_clear_blood_counts() -> None:
    found = for_rule("blood-counts", azathioprine(), *cbc(6.0, days_ago=-351))
    assert found[0].status == "cannot-evaluate"
    assert "wbc-future" in codes(found)


def test_future_dated_result_beside_a_current_one_still_cannot_clear() -> None:
    # The future one may be the newest result with a wrong date: it is pointed out, never ignored.
    found = for_rule("blood-counts", azathioprine(), *cbc(6.0), observation("6690-2", 2.0, "10*9/L", days_ago=-30))
    assert found[0].status == "cannot-evaluate" and "wbc-future" in codes(found)


def test_a_few_minutes_of_clock_skew_is_tolerated() -> None:
    assert status_of("blood-counts", azathioprine(), *cbc(6.0, days_ago=-1 / 1440)) in ("ok", "caution")


def test_future_dated_normal_temperature_does_not_rule_out_fever() -> None:
    found = for_rule("infection-hold", azathioprine(), temp(36.8, hours_ago=-48))
    assert found[0].status == "cannot-evaluate"
    assert "future" in said(found[0]).detail


def test_no_message_ever_counts_negative_days() -> None:
    future = [*cbc(6.0, days_ago=-351), observation("1742-6", 30, "U/L", days_ago=-351), temp(36.8, hours_ago=-9000)]
    for f in findings(azathioprine(), *future):
        text = f"{said(f).summary} {said(f).detail}"
        assert not re.search(r"-\d+ days", text), text


# --- plausibility after unit conversion ---------------------------------------------------------------


IMPLAUSIBLE = [
    ("a Celsius value sent as [degF]: 38.5 [degF] = 3.6 °C", "infection-hold", [temp(38.5, "[degF]")]),
    ("a WBC per µL labelled 10*3/uL: 5200", "blood-counts", cbc(5200, unit="10*3/uL")),
    ("platelets per µL labelled 10*3/uL: 250000", "blood-counts",
     [*cbc(6.0)[:2], observation("777-3", 250000, "10*3/uL", days_ago=3)]),
    ("a negative neutrophil count", "blood-counts", [cbc()[0], observation("751-8", -1.0, "10*9/L", days_ago=3),
                                                     cbc()[2]]),
    ("ALT 50000 U/L", "liver", [observation("1742-6", 50000, "U/L", days_ago=3)]),
    ("eGFR 900", "kidney", [observation("33914-3", 900, "mL/min/{1.73_m2}", days_ago=3)]),
]


@pytest.mark.parametrize(("situation", "rule", "resources"), IMPLAUSIBLE, ids=[c[0] for c in IMPLAUSIBLE])
def test_implausible_value_cannot_be_evaluated(situation: str, rule: str, resources: list[Resource]) -> None:
    found = for_rule(rule, azathioprine(), *resources)
    assert found[0].status == "cannot-evaluate", situation
    assert any("plausible range" in said(f).detail for f in found), [said(f).detail for f in found]


def test_degf_temperature_names_the_conversion() -> None:
    (m,) = record_of(temp(38.5, "[degF]")).measurements
    assert m.result.value is None and m.result.problem is not None
    assert "38.5 [degF] = 3.611 Cel" in m.result.problem and "30-45" in m.result.problem


def test_weight_in_grams_labelled_kg_cannot_dose() -> None:
    found = for_rule("dose", azathioprine(), observation("29463-7", 70000, "kg", days_ago=5))
    assert found[0].status == "cannot-evaluate"


def test_plausible_fahrenheit_fever_still_holds() -> None:
    assert status_of("infection-hold", azathioprine(), temp(101.3, "[degF]")) == "hold"


# --- whose data ------------------------------------------------------------------------------------------


def other(resource: Resource, ref: str = "Patient/p2") -> Resource:
    key = "patient" if resource["resourceType"] in ("Immunization", "ImmunizationRecommendation") else "subject"
    return {**resource, key: {"reference": ref}}


def test_another_patients_fever_never_counts() -> None:
    found = for_rule("infection-hold", azathioprine(), temp(36.8), other(temp(39.5, hours_ago=2)))
    assert found[0].code == "no-infection-signs"


def test_another_patients_normal_count_never_clears() -> None:
    found = for_rule("blood-counts", azathioprine(), *[other(r) for r in cbc(6.0)])
    assert found[0].status == "cannot-evaluate"


def test_another_patients_azathioprine_is_not_this_patients_therapy() -> None:
    assert status_of("infection-hold", other(azathioprine()), temp(39.5)) == "not-applicable"


def test_dropped_resources_are_recorded_to_be_shown() -> None:
    record = record_of(azathioprine(), other(temp(39.5), "http://ehr.example/fhir/Patient/p2"))
    (dropped,) = record.dropped
    assert "another patient" in dropped.reason


def test_whose_data_is_asked_of_every_resource_a_rule_reads_and_only_those() -> None:
    unmapped = other(observation("8302-2", 170.0, "cm"), "Patient/p2")  # body height: no rule reads it
    encounter = {"resourceType": "Encounter", "id": "e2", "status": "finished", "subject": {"reference": "Patient/p2"}}
    read = [other(r, "Patient/p2") for r in (azathioprine(), temp(39.5), *cbc(2.0))]
    record = record_of(unmapped, encounter, *read)
    assert {d.ref for d in record.dropped} == {_ref(r) for r in read}
    assert all("another patient" in d.reason for d in record.dropped)


def _ref(r: Resource) -> str:
    return f"{r['resourceType']}/{r['id']}"


def test_absolute_url_of_this_patient_counts() -> None:
    fever = other(temp(39.5), "http://ehr.example/fhir/Patient/p1")
    assert status_of("infection-hold", azathioprine(), fever) == "hold"


def _transaction(*entries: tuple[str, Resource]) -> Any:
    return {"resourceType": "Bundle", "type": "transaction",
            "entry": [{"fullUrl": url, "resource": r} for url, r in entries]}


def test_urn_uuid_references_in_a_transaction_bundle() -> None:
    me = "urn:uuid:7d0c1f4e-0000-4000-8000-000000000001"
    unknown = "urn:uuid:7d0c1f4e-0000-4000-8000-00000000dead"
    pat = {k: v for k, v in patient().items() if k != "id"}
    bundle = _transaction(
        (me, pat),
        ("urn:uuid:a1", other(azathioprine(), me)),
        ("urn:uuid:a2", other(temp(39.2), me)),  # this patient's fever
        ("urn:uuid:a3", other(temp(36.5, hours_ago=1), unknown)),  # whose? not evidence
    )
    m = load_mappings()
    record = build_record(resource_set_from_json(bundle), m)
    assert len(record.dropped) == 1 and "cannot be resolved" in record.dropped[0].reason
    infection = [f for f in evaluate(record, m, NOW) if f.rule == "infection-hold"]
    assert infection[0].code == "fever"


# --- conflicts: same time, disagreeing ------------------------------------------------------------------


@pytest.mark.parametrize("order", ["low first", "normal first"])
def test_same_time_disagreeing_wbc_the_worse_decides_whatever_the_order(order: str) -> None:
    low = observation("6690-2", 2.0, "10*9/L", days_ago=3)
    normal = observation("6690-2", 6.0, "10*9/L", days_ago=3)
    pair = [low, normal] if order == "low first" else [normal, low]
    found = for_rule("blood-counts", azathioprine(), *pair, *cbc()[1:])
    assert found[0].code == "wbc-low"
    assert "conflicting results" in said(found[0]).detail


@pytest.mark.parametrize("order", [0, 1])
def test_same_time_disagreeing_neutrophils_make_fever_neutropenic_whatever_the_order(order: int) -> None:
    pair = [observation("751-8", 0.4, "10*9/L", days_ago=1), observation("751-8", 4.0, "10*9/L", days_ago=1)]
    if order:
        pair.reverse()
    found = for_rule("infection-hold", azathioprine(), temp(38.9), *pair)
    assert found[0].code == "neutropenic-fever"


def test_same_time_readable_and_unreadable_result_cannot_clear() -> None:
    pair = [observation("1742-6", 30, "U/L", days_ago=3), observation("1742-6", 30, "furlongs", days_ago=3)]
    assert status_of("liver", azathioprine(), *pair) == "cannot-evaluate"


def test_idsa_febrile_neutropenia_choice_is_configurable() -> None:
    m = load_mappings()
    fn = m.policy.infection.febrile_neutropenia
    idsa = replace(fn, choice="idsa")
    infection = replace(m.policy.infection, febrile_neutropenia=idsa)
    strict = replace(m, policy=replace(m.policy, infection=infection))
    resources = [azathioprine(), temp(38.1), observation("751-8", 1.2, "10*9/L", days_ago=1)]
    record = record_of(*resources)

    def first(mm: Any) -> str:
        return next(f.code for f in evaluate(record, mm, NOW) if f.rule == "infection-hold")

    assert first(m) == "neutropenic-fever"  # default: BSR threshold, errs towards alarm
    assert first(strict) == "fever"  # IDSA: ANC 1.2 is not < 0.5, and 38.1 is under 38.3

    def idsa(*temps: Resource) -> str:
        rec = record_of(azathioprine(), *temps, observation("751-8", 0.3, "10*9/L", days_ago=1))
        return next(f.code for f in evaluate(rec, strict, NOW) if f.rule == "infection-hold")

    assert idsa(temp(38.4)) == "neutropenic-fever"  # a single reading >= 38.3
    assert idsa(temp(38.1, hours_ago=3), temp(38.0, hours_ago=1.5)) == "neutropenic-fever"  # >= 38.0 for 1.5 h
    assert idsa(temp(38.1, hours_ago=2), temp(38.0, hours_ago=1.75)) == "fever"  # only 15 minutes apart


def test_stop_date_in_the_future_never_reads_negative_days() -> None:
    # A stopped order whose end date is next year: still treated as just stopped (MMR held), never "-351 days".
    stopped = azathioprine(status="stopped", started_days_ago=400, ended_days_ago=-351)
    found = findings(stopped, recommendation("03"))
    assert next(f for f in found if f.rule == "vaccination-hold").status == "hold"
    for f in found:
        assert not re.search(r"-\d+ days", f"{said(f).summary} {said(f).detail}"), said(f).detail


def test_a_fahrenheit_value_labelled_celsius_is_implausible() -> None:
    found = for_rule("infection-hold", azathioprine(), temp(101.3, "Cel"))
    assert found[0].code == "temperature-unreadable" and "plausible range" in said(found[0]).detail


def test_another_patients_infection_diagnosis_never_holds() -> None:
    pneumonia = other({"resourceType": "Condition", "id": "theirs", "code": {"text": "Pneumonia"},
                       "clinicalStatus": {"coding": [{"code": "active"}]}})
    assert status_of("infection-hold", azathioprine(), temp(36.8), pneumonia) == "ok"


def test_another_patients_low_count_is_not_this_patients_hold() -> None:
    theirs = other(observation("6690-2", 1.0, "10*9/L", days_ago=1))
    assert status_of("blood-counts", azathioprine(), *cbc(6.0), theirs) == "ok"
