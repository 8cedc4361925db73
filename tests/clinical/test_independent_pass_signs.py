"""Independent pass (issue 17): what the leaflets tell patients to report, and what the lab already knows.

Written before the implementation, from the azathioprine leaflets, clinical-rules.md §9 and how EHRs and labs
really code data (not from azaguard's mappings). Each row: a patient on azathioprine 50 mg twice daily, what the
chart holds, the rule to read and the answers a clinician would accept, with words the alert must say.

The base record of each row (unless the row says otherwise): temperature 36.8 °C six hours ago, neutrophils
4.0 ×10⁹/L two days ago. "ok" rows are the non-catches: they must not alert.

`python -m tests.clinical.test_independent_pass_signs` prints the count of unsafe and wrong answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from azaguard.findings import Finding
from tests.clinical.builders import (
    LOINC,
    PATIENT_REF,
    SNOMED,
    Resource,
    azathioprine,
    findings,
    immunization,
    observation,
    when,
)
from tests.clinical.signs_builders import (
    DETECTED,
    ICD10CM,
    NO_GROWTH,
    NOT_DETECTED,
    PRESENT,
    WHO,
    bundle_findings,
    cc,
    encounter_diagnosis,
    findings_with,
    lab,
    local,
    loinc,
    questionnaire_response,
    symptom_observation,
    yes_no,
)
from tests.words import said

ALERT = ("hold", "caution", "cannot-evaluate")


def base() -> list[Resource]:
    return [
        azathioprine(),
        observation("8310-5", 36.8, "Cel", days_ago=0, hours_ago=6),
        observation("751-8", 4.0, "10*9/L", days_ago=2),
    ]


def cbc() -> list[Resource]:
    """The rest of a normal full blood count (neutrophils are in the base record)."""
    return [observation("6690-2", 6.0, "10*9/L", days_ago=2), observation("777-3", 250, "10*9/L", days_ago=2)]


@dataclass
class Row:
    name: str
    rule: str
    expect: tuple[str, ...]  # acceptable headline statuses for the rule
    resources: list[Resource] = field(default_factory=list)
    words: tuple[str, ...] = ()  # each must appear (case-insensitive) in the rule's actionable findings
    run: Callable[[], list[Finding]] | None = None  # a whole record of its own (bundles, the Patient)
    with_base: bool = True


def outcome(row: Row) -> tuple[bool, str, str]:
    """(passed, headline status, why not)."""
    found = row.run() if row.run else findings(*(base() if row.with_base else []), *row.resources)
    mine = [f for f in found if f.rule == row.rule]
    if not mine:
        return False, "(none)", "the rule gave no finding"
    head = str(mine[0].status)
    if head not in row.expect:
        return False, head, f"headline {head}, expected {'/'.join(row.expect)}: {mine[0].summary}"
    # A record is named by the evidence's reference (linked on every surface), never by its id in the text.
    text = " ".join(f"{said(f).summary} {said(f).detail} {' '.join(e.reference for e in f.evidence)}"
                    for f in mine if f.actionable).lower()
    missing = [w for w in row.words if w.lower() not in text]
    if missing:
        return False, head, f"does not say {missing}"
    return True, head, ""


def unsafe(row: Row, head: str) -> bool:
    """A missed alert (ok / not-applicable where an alert was due), or an alert lifted where one was due."""
    return any(e in ALERT for e in row.expect) and head not in ALERT


# --- the records ------------------------------------------------------------------------------------------

def _sore_throat_qr_coded() -> Resource:
    questionnaire = {
        "resourceType": "Questionnaire", "id": "checkin", "status": "active",
        "url": "http://example.org/Questionnaire/aza-checkin",
        "item": [
            {"linkId": "q1", "text": "Cough for more than two days?", "type": "boolean",
             "code": [{"system": SNOMED, "code": "49727002", "display": "Cough"}]},
            {"linkId": "q2", "text": "White patches in your mouth?", "type": "boolean",
             "code": [{"system": SNOMED, "code": "79740000", "display": "Oral candidiasis"}]},
        ],
    }
    return questionnaire_response(
        [{"linkId": "q1", "answer": [{"valueBoolean": True}]}, {"linkId": "q2", "answer": [{"valueBoolean": False}]}],
        questionnaire="#checkin", contained=[questionnaire],
    )


def _transaction_with_conditional_refs() -> list[Finding]:
    ident = {"system": "urn:oid:2.16.840.1.113883.2.1.4.1", "value": "9434765919"}
    patient = {"resourceType": "Patient", "identifier": [ident], "gender": "female", "birthDate": "1980-05-01"}
    cond_ref = {"reference": "Patient?identifier=urn:oid:2.16.840.1.113883.2.1.4.1|9434765919"}
    order = azathioprine()
    order.pop("id")
    order["subject"] = cond_ref
    wbc = lab(loinc("6690-2"), value=2.1, unit="10*9/L", days_ago=1)
    wbc.pop("id")
    wbc["subject"] = cond_ref
    entries = [
        {"fullUrl": "urn:uuid:0d0a2f2e-0000-4000-8000-000000000001", "resource": patient,
         "request": {"method": "PUT", "url": "Patient?identifier=urn:oid:2.16.840.1.113883.2.1.4.1|9434765919"}},
        {"fullUrl": "urn:uuid:0d0a2f2e-0000-4000-8000-000000000002", "resource": order,
         "request": {"method": "POST", "url": "MedicationRequest"}},
        {"fullUrl": "urn:uuid:0d0a2f2e-0000-4000-8000-000000000003", "resource": wbc,
         "request": {"method": "POST", "url": "Observation"}},
    ]
    return bundle_findings({"resourceType": "Bundle", "type": "transaction", "entry": entries})


def _searchset(*resources: Resource) -> Resource:
    return {"resourceType": "Bundle", "type": "searchset",
            "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources]}


def _batch_with_failed_condition_search() -> list[Finding]:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-05-01"}
    failed = {"resource": {"resourceType": "OperationOutcome", "issue": [
        {"severity": "error", "code": "exception", "diagnostics": "Condition search timed out"}]},
        "response": {"status": "500 Internal Server Error"}}
    bundle = {"resourceType": "Bundle", "type": "batch-response", "entry": [
        {"resource": patient, "response": {"status": "200 OK"}},
        {"resource": _searchset(*base()), "response": {"status": "200 OK"}},
        failed,
    ]}
    return bundle_findings(bundle)


def _deceased() -> list[Finding]:
    patient = {"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1950-05-01",
               "deceasedDateTime": when(3)}
    return findings_with(patient, azathioprine(), lab(loinc("6690-2"), value=2.0, unit="10*9/L", days_ago=5))


def _deceased_says_so() -> list[Finding]:
    found = _deceased()
    return [f for f in found if "deceased" in f"{said(f).summary} {said(f).detail}".lower()] or found


def _stopped_month_only_then_live_vaccine() -> list[Resource]:
    order = azathioprine(status="stopped", started_days_ago=400)
    order["dispenseRequest"] = {"validityPeriod": {"start": "2025-09-01", "end": "2026-08"}}
    return [order, immunization("03", days_ago=5)]


def _differential() -> list[Resource]:
    t = when(1)
    return [
        azathioprine(),
        lab(loinc("6690-2", "Leukocytes [#/volume] in Blood by Automated count"), value=5.0, unit="10*9/L",
            specimen_time=t),
        lab(loinc("770-8", "Neutrophils/100 leukocytes in Blood by Automated count"), value=22, unit="%",
            specimen_time=t),
        lab(loinc("777-3"), value=250, unit="10*9/L", specimen_time=t),
    ]


def _report_with_contained_result() -> Resource:
    result = lab(loinc("94500-6", "SARS-CoV-2 RNA [Presence] in Respiratory system specimen by NAA with probe "
                       "detection"), value=DETECTED, rid="r1")
    del result["subject"]
    return {
        "resourceType": "DiagnosticReport", "id": "dr1", "status": "final",
        "code": cc(LOINC, "94531-1", "SARS-CoV-2 RNA panel"), "subject": {"reference": PATIENT_REF},
        "effectiveDateTime": when(1), "contained": [result], "result": [{"reference": "#r1"}],
    }


def _report_with_conclusion() -> Resource:
    return {
        "resourceType": "DiagnosticReport", "id": "dr2", "status": "final",
        "code": cc(LOINC, "92142-9", "Influenza virus A RNA [Presence] in Respiratory system specimen"),
        "subject": {"reference": PATIENT_REF}, "effectiveDateTime": when(1),
        "conclusion": "Influenza A virus RNA detected",
        "conclusionCode": [cc(SNOMED, "442696006", "Influenza caused by Influenza A virus subtype H1N1")],
    }


def _hbv_rising() -> list[Resource]:
    code = loinc("42595-9", "Hepatitis B virus DNA [Units/volume] (viral load) in Serum or Plasma by NAA")
    return [
        lab(code, value=30, unit="[IU]/mL", days_ago=90, interpretation="H", range_text="Not detected"),
        lab(code, value=48000, unit="[IU]/mL", days_ago=2, interpretation="H", range_text="Not detected"),
    ]


TPMT_LOCAL = local("TPMTA", "TPMT activity, RBC")


ROWS: list[Row] = [
    # ---- warning signs of infection (the leaflet's "call your healthcare provider right away") ----
    Row("sore throat yesterday, ICD-10-CM R07.0 encounter diagnosis", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat")], ("throat",)),
    Row("oral thrush, SNOMED 79740000 on the problem list", "infection-hold", ("caution", "hold"),
        [encounter_diagnosis(SNOMED, "79740000", "Oral candidiasis", clinical="active", days_ago=2)], ("candid",)),
    Row("cough, SNOMED 49727002, active 3 days", "infection-hold", ("caution",),
        [encounter_diagnosis(SNOMED, "49727002", "Cough", clinical="active", days_ago=3)], ("cough",)),
    Row("dysuria, ICD-10-CM R30.0", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R30.0", "Dysuria")], ("dysuria",)),
    Row("cough, WHO ICD-10 R05", "infection-hold", ("caution",),
        [encounter_diagnosis(WHO, "R05", "Cough")], ("cough",)),
    Row("diarrhoea, ICD-10-CM R19.7", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R19.7", "Diarrhea, unspecified")], ("diarrh",)),
    Row("chills, ICD-10-CM R68.83", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R68.83", "Chills (without fever)")], ("chills",)),
    Row("night sweats, ICD-10-CM R61", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R61", "Generalized hyperhidrosis")], ("hyperhidrosis",)),
    Row("rash, ICD-10-CM R21", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R21", "Rash and other nonspecific skin eruption")], ("rash",)),
    Row("three signs at once are listed together", "infection-hold", ("caution",),
        [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat"), encounter_diagnosis(WHO, "R05", "Cough"),
         encounter_diagnosis(ICD10CM, "R68.83", "Chills (without fever)")], ("throat", "cough", "chills")),
    Row("nursing assessment: chills present (SNOMED code, value Present)", "infection-hold", ("caution",),
        [symptom_observation(cc(SNOMED, "43724002", "Chill"), value=cc(*PRESENT))], ("chill",)),
    Row("symptom observation: LOINC 75325-1 with value 'Pain in throat'", "infection-hold", ("caution",),
        [symptom_observation(cc(LOINC, "75325-1", "Symptom"), value=cc(SNOMED, "162397003", "Pain in throat"))],
        ("throat",)),
    Row("symptom observation known only by text: 'Sore throat' yes", "infection-hold", ("caution",),
        [symptom_observation(cc(None, None, text="Sore throat"), value=True)], ("sore throat",)),
    Row("check-in questionnaire: 'Sore throat or pain when swallowing?' yes", "infection-hold", ("caution",),
        [questionnaire_response([yes_no("sore-throat", "Sore throat or pain when swallowing?", True)])],
        ("throat",)),
    Row("check-in questionnaire with SNOMED-coded items: cough yes, thrush no", "infection-hold", ("caution",),
        [_sore_throat_qr_coded()], ("cough",)),
    Row("questionnaire answered with a coded symptom (valueCoding)", "infection-hold", ("caution",),
        [questionnaire_response([{"linkId": "symptoms", "text": "Which symptoms do you have today?",
                                  "answer": [{"valueCoding": {"system": SNOMED, "code": "68235000",
                                                              "display": "Nasal congestion"}}]}])],
        ("congestion",)),
    Row("sign together with low neutrophils (1.2) rises to a hold", "infection-hold", ("hold",),
        [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat"),
         observation("751-8", 1.2, "10*9/L", days_ago=0, hours_ago=2)], ("throat",)),
    Row("temperature 37.9 °C: above the leaflet's 100 °F line", "infection-hold", ("caution",),
        [observation("8310-5", 37.9, "Cel", days_ago=0, hours_ago=1)], ("100",)),
    Row("temperature 100.0 °F (37.8 °C): at the leaflet's line", "infection-hold", ("caution",),
        [observation("8310-5", 100.0, "[degF]", days_ago=0, hours_ago=1)], ("100",)),
    # non-catches
    Row("NON-CATCH: temperature 37.7 °C", "infection-hold", ("ok",),
        [observation("8310-5", 37.7, "Cel", days_ago=0, hours_ago=1)]),
    Row("NON-CATCH: hay fever with sneezing", "infection-hold", ("ok",),
        [encounter_diagnosis(ICD10CM, "J30.1", "Allergic rhinitis due to pollen", clinical="active"),
         symptom_observation(cc(SNOMED, "76067001", "Sneezing"), value=cc(*PRESENT))]),
    Row("NON-CATCH: a wound that would not heal, now resolved", "infection-hold", ("ok",),
        [encounter_diagnosis(SNOMED, "271618001", "Delayed wound healing", clinical="resolved", days_ago=3,
                             abated_days_ago=1)]),
    Row("NON-CATCH: cough 10 days ago (outside 7 days)", "infection-hold", ("ok",),
        [encounter_diagnosis(WHO, "R05", "Cough", days_ago=10)]),
    Row("NON-CATCH: sore throat refuted", "infection-hold", ("ok",),
        [encounter_diagnosis(ICD10CM, "R07.0", "Pain in throat", clinical="active", verification="refuted")]),
    Row("NON-CATCH: questionnaire 'Sore throat?' no", "infection-hold", ("ok",),
        [questionnaire_response([yes_no("sore-throat", "Sore throat?", False)])]),
    # ---- side effects: a caution pointing at the check ----
    Row("unusual bruising, ICD-10-CM R23.3 -> platelets and a CBC now", "blood-counts", ("caution", "hold"),
        [*cbc(), encounter_diagnosis(ICD10CM, "R23.3", "Spontaneous ecchymoses")], ("platelet",)),
    Row("mouth ulcers, ICD-10-CM K12.0", "blood-counts", ("caution", "hold"),
        [*cbc(), encounter_diagnosis(ICD10CM, "K12.0", "Recurrent oral aphthae")], ("ulcer",)),
    # ---- infection proven by the laboratory ----
    Row("SARS-CoV-2 RNA detected (LOINC 94500-6, SNOMED Detected)", "infection-hold", ("hold",),
        [lab(loinc("94500-6"), value=DETECTED)], ("sars-cov-2",)),
    Row("NON-CATCH: SARS-CoV-2 RNA not detected", "infection-hold", ("ok",),
        [lab(loinc("94500-6"), value=NOT_DETECTED)]),
    Row("CMV viral load 2400 IU/mL flagged H (LOINC 33006-8)", "infection-hold", ("hold",),
        [lab(loinc("33006-8", "Cytomegalovirus DNA [#/volume] (viral load) in Specimen by NAA with probe detection"),
             value=2400, unit="[IU]/mL", interpretation="H", range_text="<35 IU/mL")], ("cmv",)),
    Row("NON-CATCH: CMV viral load '<35' (below the lab's limit)", "infection-hold", ("ok",),
        [lab(loinc("33006-8"), value=35, unit="[IU]/mL", comparator="<")]),
    Row("CMV by a lab-local code 'CMV DNA PCR Quant', 5000 IU/mL, flag A", "infection-hold", ("hold",),
        [lab(local("CMVQNT", "CMV DNA PCR Quant"), value=5000, unit="[IU]/mL", interpretation="A")], ("cmv",)),
    Row("influenza A RNA 'POSITIVE' as text (LOINC 92142-9)", "infection-hold", ("hold",),
        [lab(loinc("92142-9", "Influenza virus A RNA [Presence] in Respiratory system specimen by NAA"),
             value="POSITIVE")], ("influenza",)),
    Row("blood culture grew Staphylococcus aureus (LOINC 600-7)", "infection-hold", ("hold",),
        [lab(loinc("600-7", "Bacteria identified in Blood by Culture"),
             value=(SNOMED, "3092008", "Staphylococcus aureus"), interpretation="A")], ("culture",)),
    Row("NON-CATCH: urine culture 'No growth' (LOINC 630-4)", "infection-hold", ("ok",),
        [lab(loinc("630-4", "Bacteria identified in Urine by Culture"), value=NO_GROWTH)]),
    Row("HBV DNA rising 30 -> 48,000 IU/mL: reactivation", "infection-hold", ("hold",),
        _hbv_rising(), ("reactivation",)),
    Row("DiagnosticReport whose result is a contained Observation (SARS-CoV-2 detected)", "infection-hold",
        ("hold",), [_report_with_contained_result()], ("sars-cov-2",)),
    Row("DiagnosticReport conclusionCode: influenza A", "infection-hold", ("hold",), [_report_with_conclusion()],
        ("influenza",)),
    # ---- TPMT activity as a number ----
    Row("TPMT activity 7.2 U/mL RBC, range 15.1-26.4, flag L -> intermediate", "tpmt", ("caution",),
        [lab(TPMT_LOCAL, value=7.2, unit="U/mL", low=15.1, high=26.4, interpretation="L", days_ago=60)],
        ("intermediate",)),
    Row("TPMT activity 1.1 flag LL -> poor", "tpmt", ("hold",),
        [lab(TPMT_LOCAL, value=1.1, unit="U/mL", low=15.1, high=26.4, interpretation="LL", days_ago=60)]),
    Row("TPMT activity 20 within range 15.1-26.4 -> normal", "tpmt", ("ok",),
        [lab(TPMT_LOCAL, value=20, unit="U/mL", low=15.1, high=26.4, days_ago=60)]),
    Row("TPMT activity 12 with no range and no flag -> cannot-evaluate naming it", "tpmt", ("cannot-evaluate",),
        [lab(TPMT_LOCAL, value=12, unit="U/mL", days_ago=60, rid="tpmt-bare")], ("tpmt-bare",)),
    # ---- metabolites, pancreatitis ----
    Row("6-TGN 520 pmol/8x10^8 RBC -> myelotoxicity caution", "blood-counts", ("caution", "hold"),
        [*cbc(), lab(local("6TGN", "6-Thioguanine nucleotides, RBC"), value=520, unit="pmol/8x10^8 RBC", days_ago=5)],
        ("6-tgn",)),
    Row("6-MMP 7200 pmol/8x10^8 RBC -> hepatotoxicity caution", "liver", ("caution", "hold"),
        [observation("1742-6", 30, "U/L", days_ago=5),
         lab(local("6MMP", "6-Methylmercaptopurine, RBC"), value=7200, unit="pmol/8x10^8 RBC", days_ago=5)],
        ("6-mmp",)),
    Row("lipase 250 U/L (range 13-60: > 3x ULN) -> hold", "pancreatitis", ("hold",),
        [lab(loinc("3040-3", "Lipase [Enzymatic activity/volume] in Serum or Plasma"), value=250, unit="U/L",
             low=13, high=60, days_ago=1)], ("lipase",)),
    Row("acute pancreatitis K85.90 encounter diagnosis -> hold", "pancreatitis", ("hold",),
        [encounter_diagnosis(ICD10CM, "K85.90", "Acute pancreatitis without necrosis or infection, unspecified")],
        ("pancreatitis",)),
    Row("NON-CATCH: lipase 150 U/L (range 13-60: under 3x ULN)", "pancreatitis", ("ok", "not-applicable"),
        [lab(loinc("3040-3"), value=150, unit="U/L", low=13, high=60, days_ago=1)]),
    # ---- every lab shape ----
    Row("creatinine in µmol/L under LOINC 14682-9 (no eGFR)", "kidney", ("ok",),
        [lab(loinc("14682-9", "Creatinine [Moles/volume] in Serum or Plasma"), value=70, unit="umol/L",
             days_ago=5)]),
    Row("neutrophil count coded in SNOMED (30630007) at 1.1", "blood-counts", ("hold",),
        [azathioprine(), lab(cc(SNOMED, "30630007", "Neutrophil count"), value=1.1, unit="10*9/L", days_ago=0.5)],
        ("neutrophil",), with_base=False),
    Row("ALT coded in SNOMED (34608000) at 250 U/L", "liver", ("hold",),
        [lab(cc(SNOMED, "34608000", "Alanine aminotransferase measurement"), value=250, unit="U/L", days_ago=2)],
        ("alt",)),
    Row("manual platelet count (LOINC 778-1) 90", "blood-counts", ("hold",),
        [observation("6690-2", 6.0, "10*9/L", days_ago=1),
         lab(loinc("778-1", "Platelets [#/volume] in Blood by Manual count"), value=90, unit="10*9/L",
             days_ago=1)], ("platelet",)),
    Row("manual differential: WBC 5.0 with neutrophils 22 % -> 1.1 absolute", "blood-counts", ("hold",),
        _differential(), ("neutrophil",), with_base=False),
    Row("transaction Bundle, references 'Patient?identifier=...': WBC 2.1", "blood-counts", ("hold",),
        run=_transaction_with_conditional_refs),
    Row("batch-response whose Condition search failed: infection cannot be cleared", "infection-hold",
        ("cannot-evaluate", "hold", "caution"), run=_batch_with_failed_condition_search),
    Row("stopped 'in August' (month only), MMR given 5 days ago", "vaccination-hold", ALERT,
        _stopped_month_only_then_live_vaccine(), ("mmr",), with_base=False),
    Row("stopped 40 days ago, MMR given 5 days ago: reported", "vaccination-hold", ALERT,
        [azathioprine(status="stopped", started_days_ago=400, ended_days_ago=40), immunization("03", days_ago=5)],
        with_base=False),
    Row("deceased patient with WBC 2.0: no lab alert", "blood-counts", ("not-applicable",), run=_deceased),
    Row("deceased patient: the findings say deceased", "dose", ("not-applicable",), ("deceased",),
        run=_deceased_says_so),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_independent_pass(row: Row) -> None:
    passed, _, why = outcome(row)
    assert passed, why


def main() -> None:
    bad = unsafe_count = 0
    for row in ROWS:
        try:
            passed, head, why = outcome(row)
        except Exception as exc:
            passed, head, why = False, "(crash)", f"{type(exc).__name__}: {exc}"
        if not passed:
            bad += 1
            is_unsafe = unsafe(row, head)
            unsafe_count += is_unsafe
            print(f"{'UNSAFE' if is_unsafe else 'wrong '}  {row.name}: {why}")
    print(f"\n{len(ROWS)} scenarios: {bad} wrong answers, of which {unsafe_count} unsafe")


if __name__ == "__main__":
    main()
