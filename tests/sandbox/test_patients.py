"""The synthetic patients: valid FHIR R4, unique ids, every required story, examples/ in sync."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from azaguard.findings import RULE_IDS, Status
from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet
from azaguard.rules import evaluate
from azaguard.sandbox.patients import (
    EXAMPLES_NOW,
    SyntheticPatient,
    build_patients,
    example_files,
    transaction_bundle,
    write_examples,
)

EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"
PATIENTS = build_patients(EXAMPLES_NOW)
Resource = dict[str, Any]
MAPPINGS = load_mappings()
AZA_CODES = set(MAPPINGS.medications.azathioprine.codes["rxnorm"])


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts.replace("Z", "+00:00"))


def _of(p: SyntheticPatient, rtype: str) -> list[Resource]:
    return [r for r in p.resources if r["resourceType"] == rtype]


def _codes(cc: Resource | None) -> set[str]:
    return {c["code"] for c in (cc or {}).get("coding", [])}


def _obs(p: SyntheticPatient, loinc: str) -> list[Resource]:
    """Observations with this LOINC code, newest first."""
    found = [r for r in _of(p, "Observation") if loinc in _codes(r["code"])]
    return sorted(found, key=lambda r: r["effectiveDateTime"], reverse=True)


def _medication_codes(p: SyntheticPatient, mr: Resource) -> set[str]:
    if "medicationCodeableConcept" in mr:
        return _codes(mr["medicationCodeableConcept"])
    ref = mr["medicationReference"]["reference"]
    med = next(r for r in p.resources if f"{r['resourceType']}/{r['id']}" == ref)
    return _codes(med["code"])


def _aza_orders(p: SyntheticPatient) -> list[Resource]:
    return [mr for mr in _of(p, "MedicationRequest") if _medication_codes(p, mr) & AZA_CODES]


def _on_aza(p: SyntheticPatient) -> bool:
    return any(mr["status"] == "active" for mr in _aza_orders(p))


def _latest_value(p: SyntheticPatient, loinc: str) -> float:
    return float(_obs(p, loinc)[0]["valueQuantity"]["value"])


def _live_vaccine_codes(p: SyntheticPatient) -> set[str]:
    live = set(MAPPINGS.vaccines.live)
    planned = {
        c
        for rec in _of(p, "ImmunizationRecommendation")
        for r in rec["recommendation"]
        for cc in r["vaccineCode"]
        for c in _codes(cc)
    }
    ordered = {c for r in _of(p, "MedicationRequest") for c in _codes(r.get("medicationCodeableConcept"))}
    ordered |= {c for r in _of(p, "ServiceRequest") for c in _codes(r["code"])}
    return (planned | ordered) & live


def _references(node: object) -> set[str]:
    if isinstance(node, dict):
        own = {node["reference"]} if isinstance(node.get("reference"), str) else set()
        return own.union(*(_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_references(v) for v in node))
    return set()


def _known_units() -> set[str]:
    units = MAPPINGS.units
    return {u for d in units.dimensions.values() for u in d.units} | set(units.aliases)


def _temperatures(p: SyntheticPatient, unit: str) -> list[float]:
    return [
        float(o["valueQuantity"]["value"]) for o in _obs(p, "8310-5") if o["valueQuantity"]["code"] == unit
    ]


def _active_condition(p: SyntheticPatient, snomed: str) -> bool:
    return any(
        snomed in _codes(c["code"]) and "active" in _codes(c["clinicalStatus"]) for c in _of(p, "Condition")
    )


def _drug_named(p: SyntheticPatient, word: str) -> bool:
    return any(
        word in r["medicationCodeableConcept"]["text"].lower()
        for r in _of(p, "MedicationRequest")
        if "medicationCodeableConcept" in r
    )


def _recommended(p: SyntheticPatient) -> set[str]:
    return {
        c
        for rec in _of(p, "ImmunizationRecommendation")
        for r in rec["recommendation"]
        for cc in r["vaccineCode"]
        for c in _codes(cc)
    }


def _ordered_live(p: SyntheticPatient, rtype: str) -> bool:
    element = "code" if rtype == "ServiceRequest" else "medicationCodeableConcept"
    return any(_codes(r.get(element)) & set(MAPPINGS.vaccines.live) for r in _of(p, rtype))


def _unknown_unit(p: SyntheticPatient) -> bool:
    return any(
        r["valueQuantity"]["code"] not in _known_units()
        for r in _of(p, "Observation")
        if "valueQuantity" in r
    )


def _stopped_weeks_ago(p: SyntheticPatient, weeks: int) -> bool:
    return any(
        mr["status"] == "stopped"
        and EXAMPLES_NOW - _parse(mr["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"]["end"])
        == timedelta(weeks=weeks)
        for mr in _aza_orders(p)
    )


def _cbc_age(p: SyntheticPatient) -> timedelta:
    return EXAMPLES_NOW - _parse(_obs(p, "6690-2")[0]["effectiveDateTime"])


_ROUTINE = ("6690-2", "751-8", "777-3", "1742-6", "33914-3", "2160-0", "29463-7", "8310-5", "79713-4")

# Each required story, as a check on the data itself (not just on the patient id).
STORIES: dict[str, Callable[[SyntheticPatient], bool]] = {
    "stable": lambda p: (
        _on_aza(p) and set(p.expected.values()) == {"ok"} and all(_obs(p, c) for c in _ROUTINE)
    ),
    "febrile in Cel": lambda p: _on_aza(p) and any(t >= 38 for t in _temperatures(p, "Cel")),
    "febrile in degF": lambda p: _on_aza(p) and any(t >= 100.4 for t in _temperatures(p, "[degF]")),
    "active pneumonia": lambda p: _on_aza(p) and _active_condition(p, "233604007"),
    "on an antibiotic": lambda p: _on_aza(p) and _drug_named(p, "amoxicillin"),
    "MMR recommended": lambda p: _on_aza(p) and "03" in _recommended(p),
    "live vaccine ordered (MedicationRequest)": lambda p: (
        _on_aza(p) and _ordered_live(p, "MedicationRequest")
    ),
    "live vaccine ordered (ServiceRequest)": lambda p: _on_aza(p) and _ordered_live(p, "ServiceRequest"),
    "Shingrix planned": lambda p: _on_aza(p) and "187" in _recommended(p),
    "leukopenic": lambda p: _on_aza(p) and _latest_value(p, "6690-2") < 3.5,
    "neutropenic": lambda p: (
        _on_aza(p) and _latest_value(p, "751-8") < 1.6 <= 3.5 <= _latest_value(p, "6690-2")
    ),
    "raised ALT": lambda p: _on_aza(p) and _latest_value(p, "1742-6") > 100,
    "overdue CBC": lambda p: _on_aza(p) and _cbc_age(p) > timedelta(days=34),
    "missing weight": lambda p: _on_aza(p) and not _obs(p, "29463-7"),
    "unknown unit": lambda p: _on_aza(p) and _unknown_unit(p),
    "Medication by reference": lambda p: (
        _on_aza(p) and any("medicationReference" in mr for mr in _aza_orders(p))
    ),
    "stopped 6 weeks ago, live vaccine recommended": lambda p: (
        not _on_aza(p) and _stopped_weeks_ago(p, 6) and bool(_recommended(p) & set(MAPPINGS.vaccines.live))
    ),
    "not on azathioprine": lambda p: not _aza_orders(p),
}


def test_at_least_twelve_patients() -> None:
    assert len(PATIENTS) >= 12


@pytest.mark.parametrize("story", list(STORIES))
def test_each_required_story_is_present(story: str) -> None:
    matching = [p.id for p in PATIENTS if STORIES[story](p)]
    assert matching, f"no synthetic patient tells the story {story!r}"


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda p: p.id)
def test_every_resource_validates_as_fhir_r4(patient: SyntheticPatient) -> None:
    for resource in patient.resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda p: p.id)
def test_patient_shape(patient: SyntheticPatient) -> None:
    first = patient.resources[0]
    assert (first["resourceType"], first["id"]) == ("Patient", patient.id)
    assert patient.story and "\n" not in patient.story
    assert set(patient.expected) == set(RULE_IDS)
    assert set(patient.expected.values()) <= {s.value for s in Status}
    # Every reference resolves inside the patient's own resources (sekmet does not check that).
    names = {f"{r['resourceType']}/{r['id']}" for r in patient.resources}
    assert _references(patient.resources) <= names


def test_ids_are_unique_and_deterministic() -> None:
    keys = [(r["resourceType"], r["id"]) for p in PATIENTS for r in p.resources]
    assert len(keys) == len(set(keys))
    assert len({p.id for p in PATIENTS}) == len(PATIENTS)
    assert build_patients(EXAMPLES_NOW) == PATIENTS


def test_dates_follow_now() -> None:
    later = build_patients(EXAMPLES_NOW + timedelta(days=3))
    temp_now = _parse(_obs(PATIENTS[0], "8310-5")[0]["effectiveDateTime"])
    temp_later = _parse(_obs(later[0], "8310-5")[0]["effectiveDateTime"])
    assert temp_later - temp_now == timedelta(days=3)
    with pytest.raises(ValueError, match="timezone"):
        build_patients(datetime(2026, 11, 1))  # naive: refused


def test_transaction_bundle_puts_every_resource_once() -> None:
    bundle = transaction_bundle(PATIENTS)
    get_fhir_model_class("Bundle").model_validate(bundle)
    assert bundle["type"] == "transaction"
    urls = [e["request"]["url"] for e in bundle["entry"]]
    assert {e["request"]["method"] for e in bundle["entry"]} == {"PUT"}
    assert len(urls) == len(set(urls)) == sum(len(p.resources) for p in PATIENTS)
    assert all(
        e["request"]["url"] == f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle["entry"]
    )
    assert "Patient/aza-febrile-c" in urls
    assert any(u.startswith("Medication/") for u in urls)


@pytest.mark.parametrize("patient", PATIENTS, ids=lambda p: p.id)
def test_expected_matches_the_rules(patient: SyntheticPatient) -> None:
    """The stories' expected headlines are what the engine says at EXAMPLES_NOW."""
    record = build_record(ResourceSet.from_resources(patient.resources), MAPPINGS)
    findings = evaluate(record, MAPPINGS, EXAMPLES_NOW)
    headline: dict[str, str] = {}
    for f in findings:  # sorted: the first finding of a rule is its most urgent
        headline.setdefault(f.rule, str(f.status))
    assert headline == patient.expected


def test_examples_folder_is_exactly_what_write_examples_produces() -> None:
    expected = example_files(EXAMPLES_NOW)
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in EXAMPLES_DIR.iterdir() if p.is_file()}
    assert sorted(on_disk) == sorted(expected), "regenerate examples/ (see examples/README.md)"
    for name, text in expected.items():
        assert on_disk[name] == text, f"examples/{name} drifted: regenerate it (see examples/README.md)"


def test_write_examples(tmp_path: Path) -> None:
    (tmp_path / "aza-gone.json").write_text("{}")  # a patient that no longer exists
    (tmp_path / "notes.json").write_text("{}")  # not ours: left alone
    write_examples(tmp_path, EXAMPLES_NOW)
    names = {p.name for p in tmp_path.iterdir()}
    assert names == set(example_files(EXAMPLES_NOW)) | {"notes.json"}
    bundle = json.loads((tmp_path / "aza-stable.json").read_text())
    assert bundle["type"] == "collection" and bundle["timestamp"] == "2026-11-01T12:00:00Z"
    readme = (tmp_path / "README.md").read_text()
    assert "--now 2026-11-01T12:00:00Z" in readme
    assert all(f"{p.id}.json" in readme and p.story in readme for p in PATIENTS)


def test_examples_now_is_fixed() -> None:
    assert datetime(2026, 11, 1, 12, 0, tzinfo=UTC) == EXAMPLES_NOW
