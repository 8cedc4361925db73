"""Real-world records: how other hospitals, countries and EHR vendors send what the rules read.

An adversarial review, written before running: each record is built the way a real system sends it
(Epic/Cerner transaction Bundles with urn:uuid references, searchsets with included Medications,
contained Medications, dm+d, NDC, local codes with text only, German/Spanish/French names, vaccines
without CVX, Fahrenheit and tympanic temperatures, lab units as free text, ICD OIDs and text-only
diagnoses) and states what a clinician expects from the guidelines (../shared clinical-rules §1-§8):

- "hold"            the rule must hold (act now);
- "cannot-evaluate" the data cannot be trusted or read: never cleared;
- "not-hold"        the non-catch: the rule must not hold (a false alarm erodes trust too).

Each record goes through `check_resources` (what `azaguard check --bundle` runs) as a Bundle.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.resources import resource_set_from_json
from azaguard.service import check_resources
from tests.clinical.builders import NOW, when

Resource = dict[str, Any]
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SCT = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
NDC = "http://hl7.org/fhir/sid/ndc"
DMD = "https://dmd.nhs.uk"
ICD10CM_OID = "urn:oid:2.16.840.1.113883.6.90"
WHO_ICD10 = "http://hl7.org/fhir/sid/icd-10"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
EPIC_ERX = "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288"  # an Epic-style local medication code system
EPIC_FLOWSHEET = "urn:oid:1.2.840.114350.1.13.0.1.7.2.707679"  # an Epic-style flowsheet row system
VITALS = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}
PAT = "urn:uuid:9c1f0a8e-0000-4000-8000-000000000001"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"


def _uuid() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def patient() -> Resource:
    return {"resourceType": "Patient", "id": "rw-patient", "gender": "male", "birthDate": "1968-03-14"}


def cc(code: str | None = None, system: str | None = None, display: str | None = None,
       text: str | None = None) -> Resource:
    out: Resource = {}
    if code is not None:
        coding: Resource = {"system": system, "code": code}
        if display:
            coding["display"] = display
        out["coding"] = [coding]
    if text is not None:
        out["text"] = text
    return out


def order(concept: Resource | None = None, *, status: str = "active", ref: str | None = None,
          rtype: str = "MedicationRequest", **extra: Any) -> Resource:
    r: Resource = {"resourceType": rtype, "id": f"o{uuid.uuid4().hex[:8]}", "status": status,
                   "subject": {"reference": PAT}}
    if rtype == "MedicationRequest":
        r |= {"intent": "order", "authoredOn": when(days_ago=120)}
    if ref is not None:
        r["medicationReference"] = {"reference": ref}
    else:
        r["medicationCodeableConcept"] = concept
    return r | extra


def aza_order(**kw: Any) -> Resource:
    return order(cc("197388", RX, "azathioprine 50 MG Oral Tablet"), **kw)


def obs(code: str, value: float | None, unit: str | None = None, *, ucum: str | None = None,
        system: str = LOINC, hours_ago: float = 3, **extra: Any) -> Resource:
    r: Resource = {"resourceType": "Observation", "id": f"ob{uuid.uuid4().hex[:8]}", "status": "final",
                   "code": cc(code, system), "subject": {"reference": PAT},
                   "effectiveDateTime": when(hours_ago=hours_ago)}
    if value is not None:
        q: Resource = {"value": value}
        if unit is not None:
            q["unit"] = unit
        if ucum is not None:
            q |= {"system": UCUM, "code": ucum}
        r["valueQuantity"] = q
    return r | extra


def temp(value: float = 36.8, ucum: str = "Cel", code: str = "8310-5", **kw: Any) -> Resource:
    return obs(code, value, ucum, ucum=ucum, **kw)


FEVER = temp(38.7)
NORMAL_TEMP = temp(36.9)


def condition(concept: Resource, *, status: str | None = "active", days_ago: float = 2, **extra: Any) -> Resource:
    r: Resource = {"resourceType": "Condition", "id": f"c{uuid.uuid4().hex[:8]}", "code": concept,
                   "subject": {"reference": PAT}, "recordedDate": when(days_ago=days_ago)}
    if status is not None:
        r["clinicalStatus"] = cc(status, CLINICAL)
    return r | extra


def recommendation(vaccine: Resource, forecast: Resource) -> Resource:
    return {"resourceType": "ImmunizationRecommendation", "id": f"ir{uuid.uuid4().hex[:8]}",
            "patient": {"reference": PAT}, "date": when(days_ago=1),
            "recommendation": [{"vaccineCode": [vaccine], "forecastStatus": forecast}]}


def transaction(*resources: Resource) -> Resource:
    """An Epic/Cerner-style transaction Bundle: every entry under a urn:uuid fullUrl, the Patient at PAT."""
    entries = [{"fullUrl": PAT, "resource": patient(), "request": {"method": "POST", "url": "Patient"}}]
    for r in resources:
        full = r.pop("_fullUrl", _uuid())
        entries.append({"fullUrl": full, "resource": r, "request": {"method": "POST", "url": r["resourceType"]}})
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


@dataclass(frozen=True)
class Case:
    name: str
    bundle: Resource
    rule: str
    expect: str  # "hold", "caution", "cannot-evaluate" or "not-hold"


def statuses(bundle: Resource, rule: str) -> list[str]:
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    return [str(f.status) for f in result.findings if f.rule == rule]


def _med_with_id(mid: str, concept: Resource, **extra: Any) -> Resource:
    return {"resourceType": "Medication", "id": mid, "code": concept} | extra


def _epic_medication_reference() -> Resource:
    med_url = _uuid()
    med = _med_with_id("m1", cc("197388", RX, "azathioprine 50 MG Oral Tablet")) | {"_fullUrl": med_url}
    return transaction(med, order(ref=med_url), FEVER)


def _searchset_include() -> Resource:
    base = "https://ehr.example.org/fhir"
    mr = order(ref="Medication/med-aza")
    mr["subject"] = {"reference": "Patient/rw-patient"}
    fever = temp(38.6)
    fever["subject"] = {"reference": "Patient/rw-patient"}
    med = _med_with_id("med-aza", cc("105611", RX, "Imuran 50 MG Oral Tablet"))
    entries = [
        {"fullUrl": f"{base}/Patient/rw-patient", "resource": patient(), "search": {"mode": "match"}},
        {"fullUrl": f"{base}/MedicationRequest/{mr['id']}", "resource": mr, "search": {"mode": "match"}},
        {"fullUrl": f"{base}/Medication/med-aza", "resource": med, "search": {"mode": "include"}},
        {"fullUrl": f"{base}/Observation/{fever['id']}", "resource": fever, "search": {"mode": "match"}},
    ]
    return {"resourceType": "Bundle", "type": "searchset", "total": 3, "entry": entries}


def _contained_ingredient_only() -> Resource:
    mr = order(ref="#med")
    mr["contained"] = [{"resourceType": "Medication", "id": "med", "ingredient": [
        {"itemCodeableConcept": cc("1256", RX, "azathioprine"), "isActive": True}]}]
    return transaction(mr, FEVER)


def _vitals_panel_fever() -> Resource:
    panel = {"resourceType": "Observation", "id": "vitals1", "status": "final",
             "code": cc("85353-1", LOINC, "Vital signs panel"), "subject": {"reference": PAT},
             "effectiveDateTime": when(hours_ago=2), "component": [
                 {"code": cc("8867-4", LOINC, "Heart rate"),
                  "valueQuantity": {"value": 112, "unit": "/min", "system": UCUM, "code": "/min"}},
                 {"code": cc("8310-5", LOINC, "Body temperature"),
                  "valueQuantity": {"value": 38.9, "unit": "Cel", "system": UCUM, "code": "Cel"}}]}
    return transaction(aza_order(), panel)


def _cbc_panel_low_wbc() -> Resource:
    panel = {"resourceType": "Observation", "id": "cbc1", "status": "final",
             "code": cc("58410-2", LOINC, "CBC panel - Blood by Automated count"), "subject": {"reference": PAT},
             "effectiveDateTime": when(days_ago=2), "component": [
                 {"code": cc("6690-2", LOINC, "WBC"),
                  "valueQuantity": {"value": 2.1, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}},
                 {"code": cc("777-3", LOINC, "Platelets"),
                  "valueQuantity": {"value": 240, "unit": "10*3/uL", "system": UCUM, "code": "10*3/uL"}}]}
    return transaction(aza_order(), panel)


def _statement_ended(days: float) -> Resource:
    st = order(cc("197388", RX, "azathioprine 50 MG Oral Tablet"), status="completed",
               rtype="MedicationStatement",
               effectivePeriod={"start": when(days_ago=900), "end": when(days_ago=days)})
    return transaction(st, recommendation(cc("03", CVX, "MMR"), cc("due", "http://terminology.hl7.org/"
                                                                  "CodeSystem/immunization-recommendation-status")))


def _dispense(days_ago: float, supply: float | None) -> Resource:
    d = order(cc("197388", RX, "azathioprine 50 MG Oral Tablet"), status="completed", rtype="MedicationDispense",
              whenHandedOver=when(days_ago=days_ago))
    if supply is not None:
        d["daysSupply"] = {"value": supply, "unit": "day", "system": UCUM, "code": "d"}
    return transaction(d, FEVER)


def _immunization(vaccine: Resource) -> Resource:
    imm = {"resourceType": "Immunization", "id": f"im{uuid.uuid4().hex[:6]}", "status": "completed",
           "vaccineCode": vaccine, "patient": {"reference": PAT}, "occurrenceDateTime": when(days_ago=5)}
    return transaction(aza_order(), imm)


def _service_request(concept: Resource) -> Resource:
    sr = {"resourceType": "ServiceRequest", "id": f"sr{uuid.uuid4().hex[:6]}", "status": "active",
          "intent": "order", "code": concept, "subject": {"reference": PAT}, "authoredOn": when(days_ago=1)}
    return transaction(aza_order(), sr)


def _lab(code: str, value: Any, unit: str | None, ucum: str | None = None, comparator: str | None = None,
         as_string: bool = False) -> Resource:
    o = obs(code, None, hours_ago=30)
    if as_string:
        o["valueString"] = str(value)
    else:
        q: Resource = {"value": value}
        if unit:
            q["unit"] = unit
        if ucum:
            q |= {"system": UCUM, "code": ucum}
        if comparator:
            q["comparator"] = comparator
        o["valueQuantity"] = q
    return transaction(aza_order(), o)


def _encounter_diagnosis(concept: Resource, days_ago: float = 2) -> Resource:
    c = condition(concept, status=None, days_ago=days_ago,
                  category=[cc("encounter-diagnosis", CATEGORY, "Encounter Diagnosis")])
    return transaction(aza_order(), NORMAL_TEMP, c)


FORECAST = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"

CASES: list[Case] = [
    # --- is the patient on azathioprine? (probe: a fever must hold) ---------------------------------------
    Case("Epic transaction: MedicationRequest.medicationReference -> Medication under a urn:uuid",
         _epic_medication_reference(), "infection-hold", "hold"),
    Case("searchset: Imuran Medication arrives as search.mode=include, absolute fullUrls",
         _searchset_include(), "infection-hold", "hold"),
    Case("contained Medication with only an ingredient code (RxNorm 1256)",
         _contained_ingredient_only(), "infection-hold", "hold"),
    Case("UK dm+d VMP under https://dmd.nhs.uk, no RxNorm",
         transaction(order(cc("42264911000001100", DMD, "Azathioprine 50mg tablets")), FEVER),
         "infection-hold", "hold"),
    Case("US pharmacy system: NDC only, 4-4-2 with hyphens (Roxane/Hikma azathioprine 50 mg)",
         transaction(order(cc("0054-4084-25", NDC)), FEVER), "infection-hold", "hold"),
    Case("US pharmacy system: NDC only, 11 digits without hyphens (same product)",
         transaction(order(cc("00054408425", NDC)), FEVER), "infection-hold", "hold"),
    Case("local code with text only, upper case: 'AZATHIOPRINE 50MG TAB'",
         transaction(order(cc("88231", EPIC_ERX, "AZATHIOPRINE 50MG TAB")), FEVER), "infection-hold", "hold"),
    Case("Epic tall-man text 'azaTHIOprine (IMURAN) 50 mg tablet' on a local code",
         transaction(order(cc("1455", EPIC_ERX, text="azaTHIOprine (IMURAN) 50 mg tablet")), FEVER),
         "infection-hold", "hold"),
    Case("German text only: 'Azathioprin 50 mg Filmtabletten'",
         transaction(order(cc(text="Azathioprin 50 mg Filmtabletten")), FEVER), "infection-hold", "hold"),
    Case("Spanish text only: 'Azatioprina 50 mg comprimidos recubiertos'",
         transaction(order(cc(text="Azatioprina 50 mg comprimidos recubiertos")), FEVER), "infection-hold", "hold"),
    Case("French brand: 'IMUREL 50 mg, comprimé pelliculé'",
         transaction(order(cc(text="IMUREL 50 mg, comprimé pelliculé")), FEVER), "infection-hold", "hold"),
    Case("RxNorm under its OID", transaction(order(cc("197388", "urn:oid:2.16.840.1.113883.6.88")), FEVER),
         "infection-hold", "hold"),
    Case("status in upper case 'ACTIVE' (not a FHIR code): therapy uncertain",
         transaction(aza_order(status="ACTIVE"), FEVER), "infection-hold", "cannot-evaluate"),
    Case("Medication referenced but not sent with the order",
         transaction(order(ref="Medication/not-sent"), FEVER), "infection-hold", "cannot-evaluate"),
    Case("dispense 20 days ago with 90 days' supply: current therapy",
         _dispense(20, 90), "infection-hold", "hold"),
    Case("dispense 400 days ago (supply long over): not on azathioprine (non-catch)",
         _dispense(400, 30), "infection-hold", "not-hold"),
    # --- vaccines however they are sent ---------------------------------------------------------------
    Case("statement completed, effectivePeriod ended 30 days ago + MMR due: within 3 months of stopping",
         _statement_ended(30), "vaccination-hold", "hold"),
    Case("statement completed, effectivePeriod ended 2 years ago + MMR due: no hold (non-catch)",
         _statement_ended(730), "vaccination-hold", "not-hold"),
    # A live dose already given: clinical-rules §2 "high: notify prescriber" (a caution, not a hold to act on).
    Case("Immunization completed, coded by NDC only (Varivax 0006-4827-00)",
         _immunization(cc("0006-4827-00", NDC)), "vaccination-hold", "caution"),
    Case("Immunization completed, text 'Varivax' only",
         _immunization(cc(text="Varivax")), "vaccination-hold", "caution"),
    Case("recommendation: yellow fever by text, forecastStatus as text 'Due' only",
         transaction(aza_order(), recommendation(cc(text="Yellow fever vaccine"), {"text": "Due"})),
         "vaccination-hold", "hold"),
    Case("recommendation: CVX 21 varicella, forecastStatus coding code 'Due' (wrong case)",
         transaction(aza_order(), recommendation(cc("21", CVX), cc("Due", FORECAST))), "vaccination-hold", "hold"),
    Case("ServiceRequest 'Yellow fever vaccination' as a SNOMED procedure",
         _service_request(cc("67308009", SCT, "Yellow fever vaccination")), "vaccination-hold", "hold"),
    Case("LAIV by brand: MedicationRequest 'FluMist Quadrivalent nasal spray'",
         transaction(aza_order(), order(cc(text="FluMist Quadrivalent nasal spray"))), "vaccination-hold", "hold"),
    Case("Spanish order: 'Vacuna contra la fiebre amarilla (Stamaril)'",
         transaction(aza_order(), order(cc(text="Vacuna contra la fiebre amarilla (Stamaril)"))),
         "vaccination-hold", "hold"),
    Case("Shingrix ordered as a ServiceRequest (recombinant: no live-vaccine hold, non-catch)",
         _service_request(cc(text="Shingrix (zoster vaccine recombinant, adjuvanted) IM")),
         "vaccination-hold", "not-hold"),
    # --- temperatures ----------------------------------------------------------------------------------
    Case("101.3 [degF] (UCUM)", transaction(aza_order(), temp(101.3, "[degF]")), "infection-hold", "hold"),
    Case("101.3 'degF' as the UCUM code (not UCUM)",
         transaction(aza_order(), obs("8310-5", 101.3, "degF", ucum="degF")), "infection-hold", "hold"),
    Case("101.3 with only the free-text unit '°F'",
         transaction(aza_order(), obs("8310-5", 101.3, "°F")), "infection-hold", "hold"),
    Case("tympanic 8333-7 38.4 Cel", transaction(aza_order(), temp(38.4, code="8333-7")), "infection-hold", "hold"),
    Case("axillary 8328-7 38.2 Cel", transaction(aza_order(), temp(38.2, code="8328-7")), "infection-hold", "hold"),
    Case("temporal artery 8334-5 38.3 Cel", transaction(aza_order(), temp(38.3, code="8334-5")),
         "infection-hold", "hold"),
    Case("vital-signs intravascular 8330-3 (a code the list lacks) 38.5 Cel beside a normal oral reading",
         transaction(aza_order(), temp(38.5, code="8330-3", category=[VITALS]),
                     temp(36.8, code="8331-1", hours_ago=48)),
         "infection-hold", "hold"),
    Case("Epic flowsheet row: local code 'TEMP', vital-signs category, 101.8 [degF]",
         transaction(aza_order(), temp(101.8, "[degF]", code="6", system=EPIC_FLOWSHEET, category=[VITALS]),
                     temp(98.2, "[degF]", hours_ago=40)),
         "infection-hold", "hold"),
    Case("a heart rate of 88 /min in vital signs is not a temperature (non-catch)",
         transaction(aza_order(), NORMAL_TEMP, obs("8867-4", 88, "/min", ucum="/min", category=[VITALS])),
         "infection-hold", "not-hold"),
    Case("fever in a vital-signs panel component (85353-1)", _vitals_panel_fever(), "infection-hold", "hold"),
    Case("fever coded with the LOINC OID beside a normal reading 2 days ago",
         transaction(aza_order(), temp(38.9, system="urn:oid:2.16.840.1.113883.6.1"), temp(36.8, hours_ago=48)),
         "infection-hold", "hold"),
    # --- labs ------------------------------------------------------------------------------------------
    Case("WBC 2.1 'x10E3/uL' (LabCorp style, unit text only)", _lab("6690-2", 2.1, "x10E3/uL"),
         "blood-counts", "hold"),
    Case("WBC 2.0 'K/uL' as the code without a system", _lab("6690-2", 2.0, "K/uL", ucum=None), "blood-counts",
         "hold"),
    Case("WBC 2.0 '10^9/L'", _lab("6690-2", 2.0, "10^9/L"), "blood-counts", "hold"),
    Case("neutrophils 900 'cells/uL'", _lab("751-8", 900, "cells/uL"), "blood-counts", "hold"),
    Case("WBC as valueString '2.1'", _lab("6690-2", 2.1, None, as_string=True), "blood-counts", "cannot-evaluate"),
    Case("WBC '<1.0' 10*3/uL", _lab("6690-2", 1.0, "10*3/uL", "10*3/uL", comparator="<"), "blood-counts", "hold"),
    Case("WBC '>3.0' 10*3/uL: cannot tell against 3.5", _lab("6690-2", 3.0, "10*3/uL", "10*3/uL", comparator=">"),
         "blood-counts", "cannot-evaluate"),
    Case("WBC 2.1 in a CBC panel component (58410-2)", _cbc_panel_low_wbc(), "blood-counts", "hold"),
    Case("WBC 2.1 with a unit the mappings do not know ('Gpt/L', French)", _lab("6690-2", 2.1, "Gpt/L"),
         "blood-counts", "cannot-evaluate"),
    # --- conditions ------------------------------------------------------------------------------------
    Case("pneumonia J18.9 under the ICD-10-CM OID",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("J18.9", ICD10CM_OID, "Pneumonia, unspecified"))),
         "infection-hold", "hold"),
    Case("WHO ICD-10 J15.9 bacterial pneumonia",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("J15.9", WHO_ICD10))), "infection-hold", "hold"),
    Case("SNOMED only 233604007 pneumonia",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("233604007", SCT, "Pneumonia"))),
         "infection-hold", "hold"),
    Case("text only 'Pneumonia'", transaction(aza_order(), NORMAL_TEMP, condition(cc(text="Pneumonia"))),
         "infection-hold", "hold"),
    Case("encounter diagnosis (no clinicalStatus) cellulitis L03.115 two days ago",
         _encounter_diagnosis(cc("L03.115", ICD10CM, "Cellulitis of right lower limb")), "infection-hold", "hold"),
    Case("status active but abatementDateTime set (contradictory): never cleared",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("A41.9", ICD10CM, "Sepsis, unspecified organism"),
                                                         abatementDateTime=when(days_ago=1))),
         "infection-hold", "hold"),
    Case("febrile neutropenia D70.9 + R50.81 (ICD-10-CM)",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("D70.9", ICD10CM)), condition(cc("R50.81", ICD10CM))),
         "infection-hold", "hold"),
    Case("febrile neutropenia SNOMED 409089005",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("409089005", SCT, "Febrile neutropenia"))),
         "infection-hold", "hold"),
    Case("febrile neutropenia as one WHO code D70 with the text 'Febrile neutropenia'",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("D70", WHO_ICD10, text="Febrile neutropenia"))),
         "infection-hold", "hold"),
    Case("clinicalStatus as text only 'Active', sepsis, no date",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("A41.9", ICD10CM), status=None,
                                                         clinicalStatus={"text": "Active"}, recordedDate=None)),
         "infection-hold", "cannot-evaluate"),
    Case("hay fever J30.1 active (non-catch)",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("J30.1", ICD10CM, "Allergic rhinitis due to pollen"))),
         "infection-hold", "not-hold"),
    # --- interactions and anti-infectives ---------------------------------------------------------------
    Case("allopurinol as Zyloric by dm+d AMP code and name",
         transaction(aza_order(), order(cc("3215811000001104", DMD, "Zyloric 100mg tablets"))), "interactions",
         "hold"),
    Case("allopurinol by NDC only (Zyloprim 100 mg, 65483-0991-10)",
         transaction(aza_order(), order(cc("65483-0991-10", NDC))), "interactions", "hold"),
    Case("co-trimoxazole IV: 'Co-trimoxazole 80mg/400mg/5ml concentrate for solution for infusion'",
         transaction(aza_order(), NORMAL_TEMP,
                     order(cc(text="Co-trimoxazole 80mg/400mg/5ml concentrate for solution for infusion"))),
         "infection-hold", "hold"),
    Case("Spanish co-trimoxazole: 'Sulfametoxazol/Trimetoprima 800/160 mg'",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Sulfametoxazol/Trimetoprima 800/160 mg"))),
         "infection-hold", "hold"),
    Case("German 'Piperacillin/Tazobactam 4 g/0,5 g i.v.' administered today",
         transaction(aza_order(), NORMAL_TEMP,
                     order(cc(text="Piperacillin/Tazobactam 4 g/0,5 g i.v."), status="completed",
                           rtype="MedicationAdministration", effectiveDateTime=when(hours_ago=5))),
         "infection-hold", "hold"),
]


def _patient_with(*resources: Resource, gender: str = "male", birth: str = "1968-03-14") -> Resource:
    bundle = transaction(*resources)
    bundle["entry"][0]["resource"] |= {"gender": gender, "birthDate": birth}
    return bundle


# Second round: written after the first fixes, to probe the neighbours of what failed.
CASES += [
    Case("a vaccine order coded only by an RxNorm code we do not list, no name: it may be a live vaccine",
         transaction(aza_order(), order(cc("1658031", RX))), "vaccination-hold", "cannot-evaluate"),
    Case("an antibiotic dispensed today coded only by an unlisted NDC, no name: infection not ruled out",
         transaction(aza_order(), NORMAL_TEMP, order(cc("68180-0722-06", NDC), status="completed",
                                                     rtype="MedicationDispense", whenHandedOver=when(days_ago=1))),
         "infection-hold", "cannot-evaluate"),
    Case("recommendation: Zostavax CVX 121 and Shingrix 187 in one recommendation, due",
         transaction(aza_order(), {"resourceType": "ImmunizationRecommendation", "id": "ir-zoster",
                                   "patient": {"reference": PAT}, "date": when(days_ago=1), "recommendation": [
                                       {"vaccineCode": [cc("121", CVX), cc("187", CVX)],
                                        "forecastStatus": cc("due", FORECAST)}]}),
         "vaccination-hold", "hold"),
    Case("German brand order 'Priorix-Tetra Pulver und Lösungsmittel'",
         transaction(aza_order(), order(cc(text="Priorix-Tetra Pulver und Lösungsmittel zur Herstellung einer "
                                                "Injektionslösung"))), "vaccination-hold", "hold"),
    Case("platelets 90 '10*9/L'", _lab("777-3", 90, "10*9/L", "10*9/L"), "blood-counts", "hold"),
    Case("WBC 2.4 '/nL' (German labs; UCUM /nL = 10*9/L)", _lab("6690-2", 2.4, "/nL", "/nL"), "blood-counts",
         "hold"),
    # 'G/L' is not UCUM and not in the alias table (the sandbox's "unknown unit" story): never a normal.
    Case("WBC 2.4 'G/L' (French labs: giga per litre, unit text only)", _lab("6690-2", 2.4, "G/L"),
         "blood-counts", "cannot-evaluate"),
    Case("ALT 250 'IU/L'", _lab("1742-6", 250, "IU/L"), "liver", "hold"),
    # The kidney rule's low eGFR is a caution by design (clinical-rules §4: discuss with the specialist).
    Case("creatinine 2.5 mg/dL only, 58-year-old man: CKD-EPI eGFR ~29",
         _patient_with(aza_order(), obs("2160-0", 2.5, "mg/dL", ucum="mg/dL", hours_ago=30)), "kidney", "caution"),
    Case("eGFR reported as '>60' (comparator): not below 60 (non-catch)",
         _lab("33914-3", 60, "mL/min/{1.73_m2}", "mL/min/{1.73_m2}", comparator=">"), "kidney", "not-hold"),
    Case("temperature as valueString '38.9 C'",
         transaction(aza_order(), obs("8310-5", None, valueString="38.9 C")), "infection-hold", "cannot-evaluate"),
    Case("only temperature is 80 h old: fever cannot be ruled out",
         transaction(aza_order(), temp(36.7, hours_ago=80)), "infection-hold", "cannot-evaluate"),
    Case("37.9 Cel (100.2 F) today: no fever (non-catch)", transaction(aza_order(), temp(37.9)), "infection-hold",
         "not-hold"),
    Case("hydroxychloroquine is not an anti-infective hold (non-catch)",
         transaction(aza_order(), NORMAL_TEMP, order(cc("5521", RX, "hydroxychloroquine"))), "infection-hold",
         "not-hold"),
    Case("mupirocin 2% nasal ointment is not systemic (non-catch)",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Mupirocin 2% nasal ointment"))), "infection-hold",
         "not-hold"),
    Case("valganciclovir 450 mg tablets (CMV treatment)",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Valganciclovir 450 mg tablets"))), "infection-hold",
         "hold"),
    Case("French 'Amoxicilline 1 g, comprimé dispersible'",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Amoxicilline 1 g, comprimé dispersible"))),
         "infection-hold", "hold"),
    Case("German 'Ciprofloxacin 500 mg Filmtabletten' (same spelling)",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Ciprofloxacin 500 mg Filmtabletten"))),
         "infection-hold", "hold"),
    Case("Spanish 'Aciclovir 800 mg comprimidos'",
         transaction(aza_order(), NORMAL_TEMP, order(cc(text="Aciclovir 800 mg comprimidos"))),
         "infection-hold", "hold"),
    Case("Spanish allopurinol 'Alopurinol 100 mg comprimidos'",
         transaction(aza_order(), order(cc(text="Alopurinol 100 mg comprimidos"))), "interactions", "hold"),
    Case("Condition SNOMED 91302008 sepsis, verificationStatus provisional",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("91302008", SCT, "Sepsis"), verificationStatus=cc(
             "provisional", "http://terminology.hl7.org/CodeSystem/condition-ver-status"))),
         "infection-hold", "hold"),
    Case("Condition text only in German 'Pneumonie'",
         transaction(aza_order(), NORMAL_TEMP, condition(cc(text="Pneumonie"))), "infection-hold", "hold"),
    Case("Condition text only in Spanish 'Neumonía adquirida en la comunidad'",
         transaction(aza_order(), NORMAL_TEMP, condition(cc(text="Neumonía adquirida en la comunidad"))),
         "infection-hold", "hold"),
    Case("Condition local code with display 'Urosepsis'",
         transaction(aza_order(), NORMAL_TEMP, condition(cc("123", "urn:oid:1.2.3.4", "Urosepsis"))),
         "infection-hold", "hold"),
    Case("Condition 'History of pneumonia' as text (non-catch)",
         transaction(aza_order(), NORMAL_TEMP, condition(cc(text="History of pneumonia"))), "infection-hold",
         "not-hold"),
]

@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_real_world_record(case: Case) -> None:
    got = statuses(case.bundle, case.rule)
    assert got, f"{case.rule} gave no finding"
    if case.expect == "not-hold":
        assert "hold" not in got, got
    elif case.expect in ("hold", "caution"):
        assert case.expect in got, got
    else:
        # cannot-evaluate expected: a hold is safe too; what must never come is only ok / not-applicable.
        assert set(got) & {"cannot-evaluate", "hold"}, got
