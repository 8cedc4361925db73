"""A large Synthea-style record, made here: for the benchmark and the tests that must not read shared data.

Shaped like the Synthea R4 exports EHR sandboxes serve (a `transaction` Bundle, `urn:uuid`
fullUrls and references, years of encounters each with claims, explanations of benefit,
vital signs, labs, procedures and reports: ~1,000 resources, ~4 MB as Synthea indents it), with
an azathioprine order and recent monitoring labs so that every rule has something to read.
Deterministic for a given `now` and `seed`.
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

Resource = dict[str, Any]

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
CVX = "http://hl7.org/fhir/sid/cvx"
TAG = {"tag": [{"system": "https://smarthealthit.org/tags", "code": "synthea-5-2019"}]}

# (LOINC, display, UCUM unit, low, high): vital signs and labs as Synthea records them.
_VITALS = [
    ("8302-2", "Body Height", "cm", 160.0, 185.0),
    ("29463-7", "Body Weight", "kg", 60.0, 90.0),
    ("39156-5", "Body Mass Index", "kg/m2", 20.0, 30.0),
    ("8867-4", "Heart rate", "/min", 55.0, 95.0),
    ("9279-1", "Respiratory rate", "/min", 12.0, 18.0),
    ("72514-3", "Pain severity - 0-10 verbal numeric rating [Score] - Reported", "{score}", 0.0, 4.0),
]
_LABS = [
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 4.5, 9.0),
    ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL", 2.0, 6.0),
    ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL", 1.0, 3.0),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL", 160.0, 380.0),
    ("787-2", "MCV [Entitic volume] by Automated count", "fL", 82.0, 96.0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 16.0),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10.0, 40.0),
    ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 10.0, 35.0),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL", 3.6, 4.8),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 0.7, 1.1),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted", "mL/min/{1.73_m2}", 70.0, 110.0),
    ("2339-0", "Glucose", "mg/dL", 70.0, 110.0),
    ("2093-3", "Total Cholesterol", "mg/dL", 160.0, 220.0),
    ("29463-7", "Body Weight", "kg", 70.0, 72.0),
    ("8310-5", "Body temperature", "Cel", 36.4, 37.2),
]
_DRUGS = [
    ("316049", "Hydrochlorothiazide 25 MG"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("310965", "Ibuprofen 200 MG Oral Tablet"),
    ("313782", "Acetaminophen 325 MG Oral Tablet"),
    ("308136", "amLODIPine 2.5 MG Oral Tablet"),
]
_CONDITIONS = [
    ("38341003", "Hypertension"),
    ("24079001", "Atopic dermatitis"),
    ("34000006", "Crohn's disease"),
    ("444814009", "Viral sinusitis (disorder)"),
    ("195662009", "Acute viral pharyngitis (disorder)"),
]


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def __call__(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))


def synthea_like_record(now: datetime, *, encounters: int = 165, seed: int = 1) -> Resource:
    """A transaction Bundle of one patient's years of care, on azathioprine for the last 200 days."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    new_id = _Ids(rng)
    entries: list[Resource] = []

    def add(resource: Resource) -> str:
        rid = new_id()
        resource = {"resourceType": resource.pop("resourceType"), "id": rid, **resource, "meta": TAG}
        entries.append({
            "fullUrl": f"urn:uuid:{rid}",
            "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]},
        })  # fmt: skip
        return f"urn:uuid:{rid}"

    patient = add({
        "resourceType": "Patient",
        "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Generated</div>"},
        "name": [{"use": "official", "family": "Hyatt", "given": ["Fletcher"], "prefix": ["Mr."]}],
        "gender": "male",
        "birthDate": (now - timedelta(days=365 * 58)).date().isoformat(),
        "address": [{"line": ["123 Main St"], "city": "Boston", "state": "MA", "country": "US"}],
        "telecom": [{"system": "phone", "value": "555-010-0199", "use": "home"}],
    })  # fmt: skip
    org = add({"resourceType": "Organization", "name": "General Hospital", "active": True})
    doctor = add({"resourceType": "Practitioner", "name": [{"family": "Smith", "given": ["Ann"]}], "active": True})
    subject = {"reference": patient}

    def quantity(value: float, unit: str) -> Resource:
        return {"value": round(value, 2), "unit": unit, "system": UCUM, "code": unit}

    def observation(enc: str, when: str, code: str, display: str, unit: str, value: float, cat: str) -> str:
        return add({
            "resourceType": "Observation",
            "status": "final",
            "category": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": cat, "display": cat,
            }]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
            "subject": subject,
            "encounter": {"reference": enc},
            "effectiveDateTime": when,
            "issued": when,
            "valueQuantity": quantity(value, unit),
        })  # fmt: skip

    start = now - timedelta(days=365 * 12)
    step = (now - timedelta(days=20) - start) / encounters
    conditions: list[str] = []
    for i in range(encounters):
        day = start + step * i + timedelta(hours=rng.randint(0, 9))
        when = day.isoformat()
        enc = add({
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "type": [{"coding": [{"system": SNOMED, "code": "185349003",
                                  "display": "Encounter for check up (procedure)"}],
                      "text": "Encounter for check up (procedure)"}],
            "subject": subject,
            "participant": [{"individual": {"reference": doctor}}],
            "period": {"start": when, "end": (day + timedelta(minutes=30)).isoformat()},
            "serviceProvider": {"reference": org},
        })  # fmt: skip
        for code, display, unit, low, high in rng.sample(_VITALS, 3):
            observation(enc, when, code, display, unit, rng.uniform(low, high), "vital-signs")
        if i % 3 == 0:
            add({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "vital-signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": "85354-9", "display": "Blood Pressure"}]},
                "subject": subject,
                "encounter": {"reference": enc},
                "effectiveDateTime": when,
                "component": [
                    {"code": {"coding": [{"system": LOINC, "code": "8462-4", "display": "Diastolic"}]},
                     "valueQuantity": quantity(rng.uniform(70, 90), "mm[Hg]")},
                    {"code": {"coding": [{"system": LOINC, "code": "8480-6", "display": "Systolic"}]},
                     "valueQuantity": quantity(rng.uniform(110, 140), "mm[Hg]")},
                ],
            })  # fmt: skip
        if i % 10 == 0 and len(conditions) < len(_CONDITIONS):
            code, display = _CONDITIONS[len(conditions)]
            conditions.append(add({
                "resourceType": "Condition",
                "clinicalStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active" if code in ("38341003", "34000006") else "resolved",
                }]},
                "verificationStatus": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status", "code": "confirmed",
                }]},
                "code": {"coding": [{"system": SNOMED, "code": code, "display": display}], "text": display},
                "subject": subject,
                "encounter": {"reference": enc},
                "onsetDateTime": when,
                "recordedDate": when,
            }))  # fmt: skip
        drug_code, drug = _DRUGS[i % len(_DRUGS)]
        order = add({
            "resourceType": "MedicationRequest",
            "status": "stopped" if i < encounters - 5 else "active",
            "intent": "order",
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": drug_code, "display": drug}],
                                          "text": drug},
            "subject": subject,
            "encounter": {"reference": enc},
            "authoredOn": when,
            "requester": {"reference": doctor},
            "dosageInstruction": [{"sequence": 1, "text": "Take as directed",
                                   "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                                   "asNeededBoolean": False,
                                   "doseAndRate": [{"doseQuantity": {"value": 1}}]}],
        })  # fmt: skip
        if i % 12 == 0:
            add({
                "resourceType": "Immunization",
                "status": "completed",
                "vaccineCode": {"coding": [{"system": CVX, "code": "140",
                                            "display": "Influenza, seasonal, injectable, preservative free"}],
                                "text": "Influenza, seasonal, injectable, preservative free"},
                "patient": subject,
                "encounter": {"reference": enc},
                "occurrenceDateTime": when,
                "primarySource": True,
            })  # fmt: skip
        if i % 2 == 0:
            add({
                "resourceType": "Procedure",
                "status": "completed",
                "code": {"coding": [{"system": SNOMED, "code": "430193006",
                                     "display": "Medication Reconciliation (procedure)"}],
                         "text": "Medication Reconciliation (procedure)"},
                "subject": subject,
                "encounter": {"reference": enc},
                "performedPeriod": {"start": when, "end": (day + timedelta(minutes=15)).isoformat()},
            })  # fmt: skip
        _billing(add, rng, subject, enc, org, doctor, order, conditions, day)

    _azathioprine_course(add, rng, subject, doctor, now)
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _billing(
    add: Any, rng: random.Random, subject: Resource, enc: str, org: str, doctor: str, order: str,
    conditions: list[str], day: datetime,
) -> None:
    """A pharmacy Claim, an institutional Claim and an ExplanationOfBenefit: most of a Synthea file's bytes."""
    period = {"start": day.isoformat(), "end": (day + timedelta(minutes=30)).isoformat()}
    item = {"sequence": 1, "productOrService": {"coding": [{"system": SNOMED, "code": "185349003",
            "display": "Encounter for check up (procedure)"}], "text": "Encounter for check up (procedure)"},
            "encounter": [{"reference": enc}]}  # fmt: skip
    common = {"status": "active", "use": "claim", "patient": subject, "billablePeriod": period,
              "created": period["end"], "provider": {"reference": org},
              "priority": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/processpriority",
                                       "code": "normal"}]},
              "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "private"}}]}  # fmt: skip
    add({"resourceType": "Claim", **common, "prescription": {"reference": order},
         "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "pharmacy"}]},
         "item": [item], "total": {"value": rng.randint(100, 400), "currency": "USD"}})  # fmt: skip
    claim = add({"resourceType": "Claim", **common,
                 "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type",
                                      "code": "institutional"}]},
                 "diagnosis": [{"sequence": n + 1, "diagnosisReference": {"reference": c}}
                               for n, c in enumerate(conditions[-2:])],
                 "item": [item], "total": {"value": rng.randint(100, 400), "currency": "USD"}})  # fmt: skip
    adjudication = [
        {"category": {"coding": [{"system": "https://bluebutton.cms.gov/resources/codesystem/adjudication",
                                  "code": code, "display": display}]},
         "amount": {"value": round(rng.uniform(10, 300), 2), "currency": "USD"}}
        for code, display in [
            ("https://bluebutton.cms.gov/resources/variables/line_coinsrnc_amt", "Line Beneficiary Coinsurance Amount"),
            ("https://bluebutton.cms.gov/resources/variables/line_prvdr_pmt_amt", "Line Provider Payment Amount"),
            ("https://bluebutton.cms.gov/resources/variables/line_sbmtd_chrg_amt", "Line Submitted Charge Amount"),
            ("https://bluebutton.cms.gov/resources/variables/line_alowd_chrg_amt", "Line Allowed Charge Amount"),
            ("https://bluebutton.cms.gov/resources/variables/line_bene_ptb_ddctbl_amt", "Line Beneficiary Part B"),
            ("https://bluebutton.cms.gov/resources/variables/line_prcsg_ind_cd", "Line Processing Indicator Code"),
        ]
    ]  # fmt: skip
    add({
        "resourceType": "ExplanationOfBenefit",
        "contained": [
            {"resourceType": "ServiceRequest", "id": "referral", "status": "completed", "intent": "order",
             "subject": subject, "requester": {"reference": doctor}, "performer": [{"reference": doctor}]},
            {"resourceType": "Coverage", "id": "coverage", "status": "active",
             "type": {"text": "private"}, "beneficiary": subject, "payor": [{"display": "private"}]},
        ],
        "identifier": [{"system": "https://bluebutton.cms.gov/resources/variables/clm_id", "value": claim[9:]},
                       {"system": "https://bluebutton.cms.gov/resources/identifier/claim-group",
                        "value": str(rng.randint(10**10, 10**11))}],
        "status": "active",
        "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"}]},
        "use": "claim",
        "patient": subject,
        "billablePeriod": period,
        "created": period["end"],
        "insurer": {"display": "private"},
        "provider": {"reference": doctor},
        "referral": {"reference": "#referral"},
        "claim": {"reference": claim},
        "outcome": "complete",
        "careTeam": [{"sequence": 1, "provider": {"reference": doctor},
                      "role": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/claimcareteamrole",
                                           "code": "primary", "display": "Primary Care Practitioner"}]}}],
        "insurance": [{"focal": True, "coverage": {"reference": "#coverage", "display": "private"}}],
        "item": [{**item, "servicedPeriod": period,
                  "locationCodeableConcept": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/ex-serviceplace",
                                                           "code": "19", "display": "Off Campus-Outpatient Hospital"}]},
                  "adjudication": adjudication}],
        "total": [{"category": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/adjudication",
                                            "code": "submitted", "display": "Submitted Amount"}]},
                   "amount": {"value": round(rng.uniform(100, 500), 2), "currency": "USD"}}],
        "payment": {"amount": {"value": round(rng.uniform(50, 300), 2), "currency": "USD"}},
    })  # fmt: skip


def _azathioprine_course(add: Any, rng: random.Random, subject: Resource, doctor: str, now: datetime) -> None:
    """Azathioprine since 200 days ago (50 mg twice daily), TPMT before it, monitoring labs every ~4 weeks."""
    started = now - timedelta(days=200)
    add({
        "resourceType": "MedicationRequest",
        "status": "active",
        "intent": "order",
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "197388",
                                                  "display": "azathioprine 50 MG Oral Tablet"}],
                                      "text": "azathioprine 50 MG Oral Tablet"},
        "subject": subject,
        "authoredOn": started.isoformat(),
        "requester": {"reference": doctor},
        "dosageInstruction": [{"sequence": 1, "text": "50 mg twice daily",
                               "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "system": UCUM,
                                                                 "code": "mg"}}]}],
    })  # fmt: skip
    add({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                  "code": "laboratory"}]}],
        "code": {"coding": [{"system": LOINC, "code": "79713-4",
                             "display": "TPMT gene product metabolic activity interpretation"}]},
        "subject": subject,
        "effectiveDateTime": (started - timedelta(days=30)).isoformat(),
        "valueCodeableConcept": {"coding": [{"system": LOINC, "code": "LA25391-6", "display": "Normal metabolizer"}]},
    })  # fmt: skip
    for k in range(8):
        when = (started + timedelta(days=7 + 26 * k)).isoformat()
        if when > now.isoformat():
            break
        for code, display, unit, low, high in _LABS:
            add({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                          "code": "laboratory", "display": "laboratory"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": subject,
                "effectiveDateTime": when,
                "issued": when,
                "valueQuantity": {"value": round(rng.uniform(low, high), 2), "unit": unit, "system": UCUM,
                                  "code": unit},
            })  # fmt: skip


def with_azathioprine(bundle: Resource, now: datetime) -> Resource:
    """A copy of a (real Synthea) Bundle with the same azathioprine course added, so every rule runs."""
    rng = random.Random(2)  # noqa: S311 - reproducible test data, not secrets
    entries = list(bundle.get("entry") or [])
    patient = next(e for e in entries if e.get("resource", {}).get("resourceType") == "Patient")
    subject = {"reference": patient.get("fullUrl") or f"Patient/{patient['resource']['id']}"}
    new_id = _Ids(rng)

    def add(resource: Resource) -> str:
        rid = new_id()
        entries.append({"fullUrl": f"urn:uuid:{rid}", "resource": {**resource, "id": rid},
                        "request": {"method": "POST", "url": resource["resourceType"]}})  # fmt: skip
        return f"urn:uuid:{rid}"

    _azathioprine_course(add, rng, subject, subject["reference"], now)
    return {**bundle, "entry": entries}
