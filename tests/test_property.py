"""Properties of the rules engine over generated, often malformed, records."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azaguard.cli import EXIT_INPUT, EXIT_OK, main
from azaguard.findings import RULE_IDS, Finding, Status
from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet
from azaguard.rules import evaluate
from tests.clinical import builders as b
from tests.words import said

TYPES = [
    "Patient",
    "MedicationRequest",
    "Medication",
    "Observation",
    "Immunization",
    "ImmunizationRecommendation",
    "ServiceRequest",
    "Condition",
    "Encounter",
]
json_scalars = (
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(allow_nan=True) | st.text(max_size=12)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# Plausible keys make the generator reach deep into the parsers, not only bounce off the first check.
KEYS = [
    "id",
    "status",
    "code",
    "coding",
    "system",
    "value",
    "valueQuantity",
    "unit",
    "comparator",
    "effectiveDateTime",
    "medicationCodeableConcept",
    "medicationReference",
    "reference",
    "authoredOn",
    "dosageInstruction",
    "vaccineCode",
    "recommendation",
    "forecastStatus",
    "clinicalStatus",
    "subject",
    "occurrenceDateTime",
    "component",
    "contained",
    "dispenseRequest",
    "doseAndRate",
    "timing",
]


@st.composite
def messy_resource(draw: st.DrawFn) -> dict[str, Any]:
    resource: dict[str, Any] = {"resourceType": draw(st.sampled_from(TYPES))}
    resource.update(draw(st.dictionaries(st.sampled_from(KEYS), json_values, max_size=6)))
    return resource


def _mutate(resource: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    return {**resource, key: value}


@st.composite
def messy_record(draw: st.DrawFn) -> list[dict[str, Any]]:
    # A real azathioprine patient with some resources broken, plus random junk.
    good = [
        b.patient(),
        b.azathioprine(),
        b.observation("6690-2", 5.0, "10*3/uL"),
        b.observation("8310-5", 37.0, "Cel"),
    ]
    broken = [
        _mutate(r, draw(st.sampled_from(KEYS)), draw(json_values))
        for r in draw(st.lists(st.sampled_from(good[1:]), max_size=3))
    ]
    return good + broken + draw(st.lists(messy_resource(), max_size=6))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(messy_record())
def test_no_record_however_malformed_crashes_evaluate(resources: list[dict[str, Any]]) -> None:
    m = load_mappings()
    record = build_record(ResourceSet.from_resources(resources), m)
    findings = evaluate(record, m, b.NOW)
    assert {f.rule for f in findings} == set(RULE_IDS)
    assert not [f for f in findings if f.code == "internal-error"], [said(f).detail for f in findings]


def _stable_patient(wbc: float, neut: float, plt: float, alt: float, temp: float) -> list[dict[str, Any]]:
    return [
        b.azathioprine(started_days_ago=400),
        b.observation("6690-2", wbc, "10*3/uL", days_ago=5, rid="wbc"),
        b.observation("751-8", neut, "10*3/uL", days_ago=5, rid="neut"),
        b.observation("731-0", 1.5, "10*3/uL", days_ago=5, rid="lymph"),
        b.observation("777-3", plt, "10*3/uL", days_ago=5, rid="plt"),
        b.observation("1742-6", alt, "U/L", days_ago=5, rid="alt"),
        b.observation("1920-8", 30, "U/L", days_ago=5, rid="ast"),
        b.observation("33914-3", 90, "mL/min/{1.73_m2}", days_ago=5, rid="egfr"),
        b.observation("2160-0", 80, "umol/L", days_ago=5, rid="creat"),
        b.observation("8310-5", temp, "Cel", hours_ago=6, days_ago=0, rid="temp"),
        b.observation("29463-7", 70, "kg", days_ago=20, rid="weight"),
        b.coded_observation("79713-4", "LA25391-6", "Normal metabolizer"),
    ]


def _headlines(findings: list[Finding]) -> dict[str, Status]:
    """Each rule's most urgent status (findings come sorted most urgent first within a rule)."""
    out: dict[str, Status] = {}
    for f in findings:
        out.setdefault(f.rule, f.status)
    return out


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wbc=st.floats(1.0, 12.0),
    neut=st.floats(0.5, 8.0),
    plt=st.floats(50, 400),
    alt=st.floats(5, 300),
    temp=st.floats(35.5, 40.0),
    drop=st.sets(
        st.sampled_from(["wbc", "neut", "lymph", "plt", "alt", "ast", "egfr", "creat", "temp", "weight"]), min_size=1
    ),
)
def test_removing_an_observation_never_turns_a_finding_into_ok(
    wbc: float, neut: float, plt: float, alt: float, temp: float, drop: set[str]
) -> None:
    full = _stable_patient(wbc, neut, plt, alt, temp)
    reduced = [r for r in full if r.get("id") not in drop]
    before = _headlines(b.findings(*full))
    after = _headlines(b.findings(*reduced))
    for rule in RULE_IDS:
        if after[rule] is Status.OK:
            assert before[rule] is Status.OK, f"{rule}: {before[rule]} became ok after dropping {drop}"


# --- never crash: check --bundle, in process, over every resource type the rules read ------------------

TEMPLATES: dict[str, dict[str, Any]] = {
    "Patient": b.person(),
    "MedicationRequest": {
        **b.azathioprine(),
        "authoredOn": b.when(30),
        "dosageInstruction": [{
            "text": "50 mg twice daily",
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d",
                                  "boundsPeriod": {"start": b.when(30)}}},
            "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "code": "mg",
                                              "system": "http://unitsofmeasure.org"}}],
        }],
        "dispenseRequest": {"validityPeriod": {"start": b.when(30), "end": b.when(-30)}},
    },
    "Medication": {**b.medication(), "ingredient": [{"itemCodeableConcept": {"text": "azathioprine"}}]},
    "Observation": {
        **b.observation("8310-5", 38.2, "Cel", days_ago=0),
        "issued": b.when(0),
        "component": [{"code": {"coding": [{"system": b.LOINC, "code": "48018-6"}]},
                       "valueCodeableConcept": {"text": "NUDT15"}}],
    },
    "PgxObservation": b.pgx_result("53040-2", gene="NUDT15", answer=("LA9657-3", "Poor metabolizer")),
    "Immunization": {**b.immunization("03"), "recorded": b.when(5)},
    "ImmunizationRecommendation": b.recommendation("21"),
    "ServiceRequest": b.vaccine_order("03", resource="ServiceRequest"),
    "Condition": {
        **b.diagnosis("A41.9", "Sepsis", system=b.WHO_ICD10, clinical=None),
        "verificationStatus": {"coding": [{"code": "confirmed"}]},
        "onsetPeriod": {"start": b.when(3)},
        "abatementString": "resolving",
    },
    "MedicationStatement": {"resourceType": "MedicationStatement", "id": "ms1", "status": "active",
                            "medicationCodeableConcept": {"text": "Imuran 50 mg"},
                            "subject": {"reference": b.PATIENT_REF}, "effectiveDateTime": b.when(10)},
    "MedicationDispense": {"resourceType": "MedicationDispense", "id": "md1", "status": "completed",
                           "medicationCodeableConcept": {"text": "azathioprine"},
                           "subject": {"reference": b.PATIENT_REF}, "whenHandedOver": b.when(5),
                           "daysSupply": {"value": 30}},
    "MedicationAdministration": {"resourceType": "MedicationAdministration", "id": "ma1", "status": "completed",
                                 "medicationCodeableConcept": {"text": "azathioprine"},
                                 "subject": {"reference": b.PATIENT_REF}, "effectiveDateTime": b.when(1)},
}
EMPTY = st.sampled_from([None, {}, [], "", [{}], {"coding": []}, {"coding": [{}]}])


@st.composite
def varied(draw: st.DrawFn, template: dict[str, Any]) -> dict[str, Any]:
    """Each optional element present, absent, empty or malformed (resourceType kept so it is read)."""
    out: dict[str, Any] = {"resourceType": template["resourceType"]}
    for key, value in template.items():
        if key == "resourceType":
            continue
        choice = draw(st.sampled_from(["present", "present", "absent", "empty", "malformed"]))
        if choice == "present":
            out[key] = value
        elif choice == "empty":
            out[key] = draw(EMPTY)
        elif choice == "malformed":
            out[key] = draw(json_values)
    return out


@st.composite
def record_file(draw: st.DrawFn) -> Any:
    kinds = draw(st.lists(st.sampled_from(sorted(TEMPLATES)), max_size=8))
    resources = [draw(varied(TEMPLATES[k])) for k in kinds]
    shape = draw(st.sampled_from(["array", "collection", "transaction"]))
    if shape == "array":
        return resources
    entries = [{"fullUrl": f"urn:uuid:{i}", "resource": r} for i, r in enumerate(resources)]
    return {"resourceType": "Bundle", "type": shape, "entry": entries}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=record_file(), fmt=st.sampled_from(["json", "text"]))
def test_check_bundle_never_crashes(
    tmp_path_factory: pytest.TempPathFactory, data: Any, fmt: str
) -> None:
    path = tmp_path_factory.mktemp("prop") / "record.json"
    path.write_text(json.dumps(data, allow_nan=True), encoding="utf-8")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["check", "--bundle", str(path), "--format", fmt, "--now", b.NOW.isoformat()])
    assert code in (EXIT_OK, EXIT_INPUT), err.getvalue()
    assert "internal error" not in err.getvalue(), err.getvalue()
    if code == EXIT_OK and fmt == "json":
        findings = json.loads(out.getvalue())["findings"]
        assert not [f for f in findings if f["code"] == "internal-error"], findings
