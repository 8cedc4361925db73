"""Every lab shape real systems send (clinical-rules.md §4, §8, §9): codes, differentials, reports, Bundles,
failed batch entries, partial dates, numbers for enzyme activity and metabolites, pancreatitis, death."""

from __future__ import annotations

from typing import Any

import pytest

from azaguard.findings import Finding
from tests.clinical.builders import (
    SNOMED,
    Resource,
    azathioprine,
    for_rule,
    immunization,
    observation,
    person,
    when,
)
from tests.clinical.signs_builders import (
    DETECTED,
    ICD10CM,
    bundle_findings,
    cc,
    encounter_diagnosis,
    findings_with,
    lab,
    local,
    loinc,
)
from tests.words import said


def rule(rule_id: str, *resources: Resource) -> list[Finding]:
    return for_rule(rule_id, azathioprine(), *resources)


def cbc(days_ago: float = 2, **override: float) -> list[Resource]:
    values = {"6690-2": 6.0, "751-8": 4.0, "777-3": 250.0} | {k.replace("_", "-"): v for k, v in override.items()}
    return [observation(code, value, "10*9/L", days_ago=days_ago) for code, value in values.items()]


# --- §4 analytes across the codes in common use -------------------------------------------------------------

@pytest.mark.parametrize(("code", "value", "unit"), [
    (loinc("2160-0"), 0.8, "mg/dL"), (loinc("14682-9"), 70, "umol/L"), (loinc("59826-8"), 70, "umol/L"),
    (cc(SNOMED, "113075003", "Serum creatinine measurement"), 70, "umol/L"),
])
def test_creatinine_in_either_unit_under_its_codes(code: Resource, value: float, unit: str) -> None:
    found = findings_with(person(), azathioprine(), lab(code, value=value, unit=unit, days_ago=5))
    assert [str(f.status) for f in found if f.rule == "kidney"] == ["ok"]


@pytest.mark.parametrize("code", [
    loinc("751-8"), loinc("753-4"), loinc("26499-4"), cc(SNOMED, "30630007", "Neutrophil count"),
])
def test_neutrophils_under_each_code(code: Resource) -> None:
    found = rule("blood-counts", *cbc(), lab(code, value=1.1, unit="10*9/L", days_ago=0.5))
    assert found[0].code == "neutrophils-low"


def test_a_snomed_coded_lab_says_how_it_was_recognised() -> None:
    found = rule("liver", lab(cc(SNOMED, "34608000", "ALT measurement"), value=250, unit="U/L", days_ago=2))
    assert found[0].code == "alt-high" and "SNOMED CT 34608000" in found[0].evidence[0].description


# --- differentials -----------------------------------------------------------------------------------------

def _differential(percent: float, *, same_time: bool = True, absolute: float | None = None) -> list[Resource]:
    t = when(1)
    out = [lab(loinc("6690-2"), value=5.0, unit="10*9/L", specimen_time=t),
           lab(loinc("770-8"), value=percent, unit="%", specimen_time=t if same_time else when(2)),
           lab(loinc("777-3"), value=250, unit="10*9/L", specimen_time=t)]
    if absolute is not None:
        out.append(lab(loinc("751-8"), value=absolute, unit="10*9/L", specimen_time=t))
    return out


@pytest.mark.parametrize(("percent", "expected"), [(31, "neutrophils-low"), (32, "blood-counts-ok"),
                                                   (33, "blood-counts-ok")])
def test_differential_made_absolute_at_the_threshold(percent: float, expected: str) -> None:
    # 5.0 × 31 % = 1.55 (< 1.6), × 32 % = 1.6 (not below), × 33 % = 1.65
    assert rule("blood-counts", *_differential(percent))[0].code == expected


def test_differential_evidence_shows_the_computation() -> None:
    (f,) = rule("blood-counts", *_differential(22))[:1]
    assert "22 % of WBC 5 10*9/L" in f.evidence[0].description and f.evidence[0].value == "1.1 10*9/L"


def test_a_percentage_without_a_wbc_of_the_same_time_is_not_a_count() -> None:
    assert rule("blood-counts", *_differential(22, same_time=False))[0].code == "neutrophils-missing"


def test_the_labs_own_absolute_count_decides() -> None:
    assert rule("blood-counts", *_differential(22, absolute=3.0))[0].code == "blood-counts-ok"


# --- DiagnosticReport -------------------------------------------------------------------------------------------

def test_report_results_contained_take_the_reports_date_and_name() -> None:
    result = lab(loinc("6690-2"), value=2.0, unit="10*9/L", rid="w")
    del result["subject"], result["effectiveDateTime"]
    report = {"resourceType": "DiagnosticReport", "id": "cbc", "status": "final", "code": loinc("58410-2"),
              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when(1), "contained": [result],
              "result": [{"reference": "#w"}]}
    found = rule("blood-counts", observation("751-8", 4.0, "10*9/L"), observation("777-3", 250, "10*9/L"), report)
    assert found[0].code == "wbc-low" and found[0].evidence[0].reference == "DiagnosticReport/cbc#w"


def test_an_entered_in_error_report_is_not_read() -> None:
    report = {"resourceType": "DiagnosticReport", "id": "x", "status": "entered-in-error", "code": loinc("94531-1"),
              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when(1),
              "conclusionCode": [cc(SNOMED, "840539006", "COVID-19")]}
    found = rule("infection-hold", observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=3), report)
    assert str(found[0].status) == "ok"


# --- Bundles: conditional references, failed batch entries ----------------------------------------------------

IDENT = {"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}


def _transaction(patients: list[Resource], subject: str) -> Resource:
    order = azathioprine()
    order.pop("id")
    order["subject"] = {"reference": subject}
    wbc = lab(loinc("6690-2"), value=2.1, unit="10*9/L")
    wbc["subject"] = {"reference": subject}
    entries = [{"fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}", "resource": p,
                "request": {"method": "POST", "url": "Patient"}} for i, p in enumerate(patients)]
    entries += [{"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000a1", "resource": order,
                 "request": {"method": "POST", "url": "MedicationRequest"}},
                {"fullUrl": "urn:uuid:00000000-0000-4000-8000-0000000000a2", "resource": wbc,
                 "request": {"method": "POST", "url": "Observation"}}]
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@pytest.mark.parametrize("subject", [
    "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|9434765919",
    "Patient?identifier=https%3A%2F%2Ffhir.nhs.uk%2FId%2Fnhs-number%7C9434765919",  # URL-encoded
    "Patient?identifier=9434765919",
])
def test_conditional_reference_to_the_patient(subject: str) -> None:
    patient = {"resourceType": "Patient", "identifier": [IDENT]}
    found = [f for f in bundle_findings(_transaction([patient], subject)) if f.rule == "blood-counts"]
    assert found[0].code == "wbc-low"


def test_a_conditional_reference_to_someone_else_is_not_this_patients() -> None:
    patient = {"resourceType": "Patient", "identifier": [IDENT]}
    subject = "Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|0000000000"
    found = [f for f in bundle_findings(_transaction([patient], subject)) if f.rule == "blood-counts"]
    assert str(found[0].status) == "not-applicable"


def _batch(*failed: dict[str, Any]) -> Resource:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-05-01"}
    records = [azathioprine(), observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6), *cbc()]
    searchset = {"resourceType": "Bundle", "type": "searchset",
                 "entry": [{"resource": r, "search": {"mode": "match"}} for r in records]}
    return {"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": patient, "response": {"status": "200 OK"}},
        {"resource": searchset, "response": {"status": "200"}}, *failed]}


def _failure(status: str, url: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"response": {"status": status}, "resource": {
        "resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "exception",
                                                      "diagnostics": "timed out"}]}}
    if url:
        entry["request"] = {"method": "GET", "url": url}
    return entry


def test_a_failed_condition_search_leaves_infection_unclearable_and_names_it() -> None:
    found = bundle_findings(_batch(_failure("500 Internal Server Error", "Condition?subject=Patient/p1")))
    (f,) = [f for f in found if f.rule == "infection-hold"]
    assert f.code == "data-unread" and "a Condition request" in said(f).detail and "timed out" in said(f).detail
    assert str(next(f for f in found if f.rule == "interactions").status) == "ok"  # reads no Conditions


def test_a_failed_entry_of_unknown_type_leaves_no_rule_ok() -> None:
    found = bundle_findings(_batch(_failure("503")))
    assert all(str(f.status) not in ("ok", "not-applicable") for f in found)


def test_a_failed_medication_search_withdraws_not_applicable() -> None:
    bundle = _batch(_failure("500", "MedicationRequest?subject=Patient/p1"))
    bundle["entry"][1]["resource"]["entry"] = []  # nothing else on record
    found = bundle_findings(bundle)
    assert {str(f.status) for f in found} == {"cannot-evaluate"}


# --- partial dates ---------------------------------------------------------------------------------------------

def test_a_result_with_a_month_only_date_is_read_as_early_as_it_can_be() -> None:
    wbc = lab(loinc("6690-2"), value=6.0, unit="10*9/L")
    wbc["effectiveDateTime"] = "2026-08"  # 1 Aug 2026 (the earliest) is past the 92-day age limit; 31 Aug is not
    found = rule("blood-counts", observation("751-8", 4.0, "10*9/L"), observation("777-3", 250, "10*9/L"), wbc)
    (stale,) = [f for f in found if f.code == "wbc-stale"]
    assert "month only" in stale.evidence[0].description


def test_a_stop_month_only_is_read_as_late_as_it_can_be_and_said() -> None:
    order = azathioprine(status="stopped", started_days_ago=400)
    order["dispenseRequest"] = {"validityPeriod": {"start": "2025-09-01", "end": "2026-08"}}
    found = for_rule("vaccination-hold", order, immunization("03", days_ago=5))
    (f,) = [f for f in found if f.code == "live-vaccine-given-after-stop"]
    # 31 Aug to 27 Oct
    assert "56 days after azathioprine stopped" in said(f).summary and "month only" in said(f).detail


@pytest.mark.parametrize(("stopped_days_ago", "expected"), [(94, "live-vaccine-given-after-stop"), (96, None)])
def test_live_vaccine_after_stop_at_the_window(stopped_days_ago: float, expected: str | None) -> None:
    # given 5 days ago: 89 days after the stop is inside the 90-day wait, 91 days is not
    order = azathioprine(status="stopped", started_days_ago=400, ended_days_ago=stopped_days_ago)
    codes = [f.code for f in for_rule("vaccination-hold", order, immunization("03", days_ago=5))]
    assert (expected in codes) if expected else ("live-vaccine-given-after-stop" not in codes)


# --- TPMT activity, metabolites, pancreatitis --------------------------------------------------------------------

TPMT = local("TPMTA", "TPMT activity, RBC")


@pytest.mark.parametrize(("value", "flag", "expected"), [
    (15.0, None, "tpmt-intermediate"), (15.1, None, "tpmt-normal"), (15.2, None, "tpmt-normal"),  # the range's low
    (20.0, "L", "tpmt-intermediate"), (3.0, "LL", "tpmt-poor"), (9.0, "N", "tpmt-normal"),
])
def test_tpmt_activity_by_the_labs_range_and_flags(value: float, flag: str | None, expected: str) -> None:
    result = lab(TPMT, value=value, unit="U/mL", low=15.1, high=26.4, interpretation=flag, days_ago=60)
    assert rule("tpmt", result)[0].code == expected


@pytest.mark.parametrize(("unit", "low"), [("nmol/h/mL", 35.0), ("mU/g{Hb}", 24.0), ("[EU]/mL", 9.0)])
def test_tpmt_activity_in_any_unit_below_its_own_range(unit: str, low: float) -> None:
    result = lab(TPMT, value=low - 1, unit=unit, low=low, days_ago=60)
    assert rule("tpmt", result)[0].code == "tpmt-intermediate"


def test_tpmt_activity_reported_in_words() -> None:
    result = lab(local("TPMT", "Thiopurine methyltransferase, RBC"), value="Deficient activity", days_ago=60)
    assert rule("tpmt", result)[0].code == "tpmt-poor"


def test_tpmt_activity_with_no_range_and_no_flag_names_the_result() -> None:
    (f,) = [f for f in rule("tpmt", lab(TPMT, value=12, unit="U/mL", days_ago=60, rid="t1"))
            if f.code == "tpmt-unrecognised"]
    assert "Observation/t1" in [e.reference for e in f.evidence]
    assert "Observation/" not in said(f).summary + said(f).detail
    assert "no reference range and no interpretation" in said(f).detail


@pytest.mark.parametrize(("analyte", "family", "value", "expected"), [
    ("6-Thioguanine nucleotides", "blood-counts", 450, "blood-counts-ok"),
    ("6-Thioguanine nucleotides", "blood-counts", 451, "tgn-high"),
    ("6-MMP", "liver", 5700, "liver-ok"),
    ("6-MMP", "liver", 5701, "mmp-high"),
])
def test_metabolite_thresholds(analyte: str, family: str, value: float, expected: str) -> None:
    result = lab(local("M1", analyte), value=value, unit="pmol/8x10^8 RBC", days_ago=5)
    found = rule(family, *cbc(), observation("1742-6", 30, "U/L", days_ago=2), result)
    assert found[0].code == expected


def test_an_old_metabolite_level_is_history_not_a_test_to_chase() -> None:
    result = lab(local("M1", "6-TGN"), value=900, unit="pmol/8x10^8 RBC", days_ago=200)
    found = rule("blood-counts", *cbc(), result)
    assert [f.code for f in found] == ["blood-counts-ok"] and "6-TGN (latest" in said(found[0]).detail


@pytest.mark.parametrize(("lipase", "expected"), [(180, "ok"), (181, "hold")])  # 3 × the lab's 60
def test_lipase_against_three_times_the_labs_upper_limit(lipase: float, expected: str) -> None:
    result = lab(loinc("3040-3"), value=lipase, unit="U/L", low=13, high=60, days_ago=1)
    assert str(rule("pancreatitis", result)[0].status) == expected


def test_lipase_without_the_labs_limit_cannot_be_judged() -> None:
    (f,) = rule("pancreatitis", lab(loinc("3040-3"), value=900, unit="U/L", days_ago=1, rid="lip"))
    assert str(f.status) == "cannot-evaluate" and "no upper reference limit" in said(f).detail
    assert [e.reference for e in f.evidence] == ["Observation/lip"]


def test_acute_pancreatitis_diagnosis_holds_and_chronic_does_not() -> None:
    assert str(rule("pancreatitis", encounter_diagnosis(ICD10CM, "K85.30", "Drug induced acute pancreatitis"))[0]
               .status) == "hold"
    assert str(rule("pancreatitis", encounter_diagnosis(ICD10CM, "K86.1", "Other chronic pancreatitis",
                                                        clinical="active"))[0].status) == "ok"


# --- a deceased patient ------------------------------------------------------------------------------------------

def test_a_deceased_patient_gets_no_alert_and_every_rule_says_why() -> None:
    patient = person() | {"deceasedDateTime": when(3)}
    found = findings_with(patient, azathioprine(), lab(loinc("6690-2"), value=2.0, unit="10*9/L"),
                          lab(loinc("94500-6"), value=DETECTED))
    assert {str(f.status) for f in found} == {"not-applicable"}
    assert all(f.code == "patient-deceased" and "deceased on 29 Oct 2026" in said(f).summary for f in found)


def test_deceased_boolean_false_is_alive() -> None:
    found = findings_with(person() | {"deceasedBoolean": False}, azathioprine(),
                          lab(loinc("6690-2"), value=2.0, unit="10*9/L"))
    assert any(f.code == "wbc-low" for f in found)


def test_the_verdict_says_the_patient_is_deceased() -> None:
    from azaguard.mappings import load_mappings
    from azaguard.record import build_record
    from azaguard.resources import ResourceSet
    from azaguard.rules import evaluate
    from azaguard.verdict import build_verdict
    from tests.clinical.builders import NOW

    m = load_mappings()
    record = build_record(ResourceSet.from_resources([person() | {"deceasedDateTime": when(3)}, azathioprine(),
                                                      lab(loinc("6690-2"), value=2.0, unit="10*9/L")]), m)
    verdict = build_verdict(evaluate(record, m, NOW), record, NOW, m)
    assert verdict.headline.startswith("No checks apply — the patient is deceased (") and not verdict.actions
