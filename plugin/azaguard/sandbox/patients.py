"""Synthetic patients for the sandbox, the demo and examples/: one clinical situation each.

Every patient on azathioprine starts from the same well-monitored chart (a year on 50 mg twice
daily; CBC, LFTs and kidney function monthly; weight, temperature, a normal TPMT) and changes one
thing, so its expected findings read as "all ok except ...". Dates are relative to `now`, ids are
fixed (`Patient/aza-febrile-c`), so loading the transaction Bundle twice changes nothing and
examples/ is reproducible. The resources follow the shape of Synthea's R4 records.

`expected` is the clinical reading of shared/clinical-rules.md for each rule's headline (most
urgent) status; the tests of the rules compare against it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from azaguard.fhirtypes.reference import ref_of
from azaguard.findings import RULE_IDS

Resource = dict[str, Any]

EXAMPLES_NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
FORECAST_STATUS = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
MRN_SYSTEM = "https://sandbox.azaguard.example/mrn"
# Tags every synthetic resource so a shared server can be searched or cleaned with _tag.
TAG = {"system": "https://azaguard.example/tags", "code": "azaguard-synthetic",
       "display": "azaguard synthetic patient"}

_AZA_50 = ("197388", "azathioprine 50 MG Oral Tablet")
_AZA_100 = ("359228", "azathioprine 100 MG Oral Tablet")

# LOINC code, display, UCUM unit of the lab and vital-sign results the rules read.
_LABS: dict[str, tuple[str, str, str]] = {
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL"),
    "neutrophils": ("751-8", "Neutrophils [#/volume] in Blood by Automated count", "10*3/uL"),
    "lymphocytes": ("731-0", "Lymphocytes [#/volume] in Blood by Automated count", "10*3/uL"),
    "eosinophils": ("711-2", "Eosinophils [#/volume] in Blood by Automated count", "10*3/uL"),
    "platelets": ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*3/uL"),
    "hemoglobin": ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL"),
    "mcv": ("787-2", "MCV [Entitic volume] by Automated count", "fL"),
    "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "ast": ("1920-8", "Aspartate aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L"),
    "albumin": ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/dL"),
    "creatinine": ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL"),
    "egfr": ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum or "
             "Plasma by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}"),
    "weight": ("29463-7", "Body weight", "kg"),
    "temperature": ("8310-5", "Body temperature", "Cel"),
}
_CBC = ("wbc", "neutrophils", "lymphocytes", "eosinophils", "platelets", "hemoglobin", "mcv")
_LFT = ("alt", "ast", "albumin")
_RENAL = ("creatinine", "egfr")
# A stable patient's results, newest first (three draws a month apart: enough for the trend rule).
_NORMAL: dict[str, tuple[float, float, float]] = {
    "wbc": (6.2, 6.4, 6.0), "neutrophils": (3.8, 4.0, 3.6), "lymphocytes": (1.6, 1.7, 1.5),
    "eosinophils": (0.2, 0.2, 0.3), "platelets": (245, 251, 238), "hemoglobin": (13.6, 13.4, 13.7),
    "mcv": (91, 92, 91), "alt": (24, 27, 22), "ast": (22, 24, 21), "albumin": (4.1, 4.2, 4.0),
    "creatinine": (0.9, 0.88, 0.91), "egfr": (88, 90, 87),
}
_DRAW_DAYS = (10, 40, 70)  # days before `now` of the three routine draws
_FLAGS = {"H": "High", "L": "Low", "N": "Normal"}
# A nurse's telephone symptom checklist, held on the server (not contained in its responses): linkId ->
# (SNOMED CT finding, the question).
_CHECKLIST_URL = "https://sandbox.azaguard.example/Questionnaire/symptom-checklist"
_CHECKLIST = {
    "1": ("162397003", "Sore throat or pain when swallowing?"),
    "2": ("79740000", "White patches in the mouth or on the tongue?"),
    "3": ("49727002", "A cough for more than two days?"),
}

_TPMT = {
    "normal": ("LA25391-6", "Normal metabolizer"),
    "intermediate": ("LA10317-8", "Intermediate metabolizer"),
    "poor": ("LA9657-3", "Poor metabolizer"),
}
# The patients' diagnoses (the Condition id's suffix): SNOMED CT code, display, Condition category.
_DIAGNOSES = {
    "crohns": ("34000006", "Crohn's disease", "problem-list-item"),
    "ra": ("69896004", "Rheumatoid arthritis", "problem-list-item"),
    "uc": ("64766004", "Ulcerative colitis", "problem-list-item"),
    "sle": ("55464009", "Systemic lupus erythematosus", "problem-list-item"),
    "aih": ("408335007", "Autoimmune hepatitis", "problem-list-item"),
    "mg": ("91637004", "Myasthenia gravis", "problem-list-item"),
    "kt": ("429451003", "Disorder related to renal transplantation", "problem-list-item"),
    "htn": ("38341003", "Hypertensive disorder", "problem-list-item"),
    "gout": ("90560007", "Gout", "problem-list-item"),
    "pneumonia": ("233604007", "Pneumonia", "encounter-diagnosis"),
}
# Who a patient is: given name, family name, gender, birth date, MRN, city.
_Person = tuple[str, str, str, str, str, str]


@dataclass(frozen=True)
class SyntheticPatient:
    id: str  # the Patient resource id
    name: str
    story: str  # one line a clinician can read
    resources: list[Resource]
    expected: dict[str, str]  # rule id -> expected headline status

    @property
    def reference(self) -> str:
        return f"Patient/{self.id}"

    @property
    def expected_verdict(self) -> str:
        """The words the verdict banner should show for this patient (verdict.WORDS_OF)."""
        statuses = set(self.expected.values())
        for status, words in (("hold", "Hold"), ("cannot-evaluate", "Cannot check"), ("caution", "Caution")):
            if status in statuses:
                return words
        return "No action needed" if "ok" in statuses else "Does not apply"

    @property
    def expected_focus(self) -> tuple[str, ...]:
        """The rules behind the expected verdict (those with its status), in rule order."""
        wanted = {"Hold": "hold", "Cannot check": "cannot-evaluate", "Caution": "caution"}.get(self.expected_verdict)
        return tuple(rule for rule, status in self.expected.items() if status == wanted)


def _ts(dt: datetime) -> str:
    return dt.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _category(code: str) -> Resource:
    return {"coding": [{"system": OBS_CATEGORY, "code": code, "display": code}]}


def _cc(system: str, code: str, display: str, text: str | None = None) -> Resource:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": text or display}


def _quantity(value: float, code: str, unit: str | None = None) -> Resource:
    """A UCUM Quantity (its unit shown as `unit`, else as its code)."""
    return {"value": value, "unit": unit or code, "system": UCUM, "code": code}


@dataclass
class _Chart:
    """One patient's resources under construction; ids are `<patient id>-<suffix>`."""

    pid: str
    now: datetime
    resources: list[Resource] = field(default_factory=list)

    @property
    def subject(self) -> Resource:
        return {"reference": f"Patient/{self.pid}"}

    def at(self, days_ago: float = 0, hours_ago: float = 0) -> str:
        return _ts(self.now - timedelta(days=days_ago, hours=hours_ago))

    def add(self, resource_type: str, suffix: str, body: Resource) -> Resource:
        resource: Resource = {"resourceType": resource_type, "id": f"{self.pid}-{suffix}",
                              "meta": {"tag": [TAG]}}
        resource.update(body)
        self.resources.append(resource)
        return resource

    # --- demographics and problems ---

    def patient(self, given: str, family: str, gender: str, birth_date: str, mrn: str, city: str) -> None:
        resource: Resource = {
            "resourceType": "Patient", "id": self.pid, "meta": {"tag": [TAG]},
            "identifier": [{"type": _cc(IDENTIFIER_TYPE, "MR", "Medical Record Number"),
                            "system": MRN_SYSTEM, "value": mrn}],
            "active": True,
            "name": [{"use": "official", "family": family, "given": [given]}],
            "gender": gender,
            "birthDate": birth_date,
            "address": [{"city": city, "state": "Massachusetts", "country": "US"}],
        }
        self.resources.insert(0, resource)

    def diagnosis(self, key: str, *, days_ago: float) -> None:
        """A confirmed, active Condition of `_DIAGNOSES`, diagnosed and recorded `days_ago`."""
        code, display, category = _DIAGNOSES[key]
        self.add("Condition", key, {
            "clinicalStatus": {"coding": [{"system": CONDITION_CLINICAL, "code": "active"}]},
            "verificationStatus": {"coding": [{"system": CONDITION_VERIFICATION, "code": "confirmed"}]},
            "category": [{"coding": [{"system": CONDITION_CATEGORY, "code": category}]}],
            "code": _cc(SNOMED, code, display),
            "subject": self.subject,
            "onsetDateTime": self.at(days_ago),
            "recordedDate": self.at(days_ago),
        })

    # --- medications ---

    def azathioprine(
        self,
        *,
        drug: tuple[str, str] = _AZA_50,
        tablets_mg: int = 50,
        per_day: int = 2,
        started_days_ago: float = 400,
        stopped_days_ago: float | None = None,
        by_reference: bool = False,
    ) -> None:
        code, display = drug
        body: Resource = {"status": "active" if stopped_days_ago is None else "stopped", "intent": "order"}
        if by_reference:
            self.add("Medication", "aza-med", {
                "code": _cc(RXNORM, code, display),
                "form": _cc(SNOMED, "385055001", "Tablet"),
                "ingredient": [{"itemCodeableConcept": _cc(RXNORM, "1256", "azathioprine"), "isActive": True,
                                "strength": {"numerator": _quantity(tablets_mg, "mg"),
                                             "denominator": _quantity(1, "{tbl}", "tablet")}}],
            })
            body["medicationReference"] = {"reference": f"Medication/{self.pid}-aza-med", "display": display}
        else:
            body["medicationCodeableConcept"] = _cc(RXNORM, code, display)
        bounds: Resource = {"start": self.at(started_days_ago)}
        if stopped_days_ago is not None:
            bounds["end"] = self.at(stopped_days_ago)
            body["statusReason"] = {"text": "Disease in remission; stopped by the gastroenterologist"}
        times = "once" if per_day == 1 else "twice" if per_day == 2 else f"{per_day} times"
        body.update({
            "subject": self.subject,
            "authoredOn": self.at(started_days_ago),
            "dosageInstruction": [{
                "sequence": 1,
                "text": f"Take 1 tablet ({tablets_mg} mg) by mouth {times} daily",
                "timing": {"repeat": {"frequency": per_day, "period": 1, "periodUnit": "d",
                                      "boundsPeriod": bounds}},
                "route": _cc(SNOMED, "26643006", "Oral route"),
                "doseAndRate": [{"doseQuantity": _quantity(tablets_mg, "mg")}],
            }],
        })
        self.add("MedicationRequest", "aza", body)

    def other_drug(self, suffix: str, code: str, display: str, *, started_days_ago: float, text: str) -> None:
        self.add("MedicationRequest", suffix, {
            "status": "active", "intent": "order",
            "medicationCodeableConcept": _cc(RXNORM, code, display),
            "subject": self.subject,
            "authoredOn": self.at(started_days_ago),
            "dosageInstruction": [{"sequence": 1, "text": text}],
        })

    # --- vaccines ---

    def recommendation(self, suffix: str, cvx: str, display: str, *, due_in_days: float) -> None:
        self.add("ImmunizationRecommendation", suffix, {
            "patient": self.subject,
            "date": self.at(1),
            "recommendation": [{
                "vaccineCode": [_cc(CVX, cvx, display)],
                "forecastStatus": {"coding": [{"system": FORECAST_STATUS, "code": "due", "display": "Due"}]},
                "dateCriterion": [{"code": _cc(LOINC, "30980-7", "Date vaccine due"),
                                   "value": self.at(-due_in_days)}],
            }],
        })

    def vaccine_order(self, suffix: str, resource_type: str, cvx: str, display: str, *, reason: str) -> None:
        body: Resource = {"status": "active", "intent": "order", "subject": self.subject,
                          "authoredOn": self.at(0, hours_ago=2), "note": [{"text": reason}]}
        element = "code" if resource_type == "ServiceRequest" else "medicationCodeableConcept"
        body[element] = _cc(CVX, cvx, display)
        self.add(resource_type, suffix, body)

    # --- observations ---

    def observation(
        self, suffix: str, analyte: str, value: float, *, days_ago: float, hours_ago: float = 0,
        unit: str | None = None, unit_text: str | None = None,
    ) -> None:
        loinc, display, default_unit = _LABS[analyte]
        code = unit or default_unit
        vital = analyte in ("weight", "temperature")
        self.result(suffix, _cc(LOINC, loinc, display), "vital-signs" if vital else "laboratory",
                    taken=self.at(days_ago, hours_ago), issued=self.at(days_ago, hours_ago - (0 if vital else 3)),
                    valueQuantity=_quantity(value, code, unit_text))

    def result(self, suffix: str, code: Resource, category: str, *, taken: str, issued: str, **more: object) -> None:
        """A final Observation of this patient: its code, when it was taken and issued, then its value and the
        rest (`more`, in order)."""
        self.add("Observation", suffix, {
            "status": "final", "category": [_category(category)], "code": code, "subject": self.subject,
            "effectiveDateTime": taken, "issued": issued, **more,
        })

    def lab_result(
        self, suffix: str, code: str, display: str | None, value: float, unit: str, *, days_ago: float,
        low: float | None = None, high: float | None = None, flag: str | None = None,
    ) -> None:
        """A laboratory result read against the lab's own range and flag (a viral load, an enzyme activity)."""
        coding: Resource = {"system": LOINC, "code": code}
        if display:
            coding["display"] = display
        more: Resource = {"valueQuantity": _quantity(value, unit)}
        if flag:
            more["interpretation"] = [_cc(INTERPRETATION, flag, _FLAGS[flag])]
        if low is not None or high is not None:
            more["referenceRange"] = [{k: _quantity(v, unit) for k, v in (("low", low), ("high", high))
                                       if v is not None}]
        self.result(suffix, {"coding": [coding]}, "laboratory", taken=self.at(days_ago, -8.5),
                    issued=self.at(days_ago, -12), **more)

    def checklist(self, *, days_ago: float, answers: dict[str, bool]) -> None:
        """A nurse's symptom checklist answered yes/no. The response names its items by linkId only: what
        each item asks, and its SNOMED code, are in the Questionnaire (held on the server, not contained)."""
        self.add("Questionnaire", "checklist", {
            "url": _CHECKLIST_URL, "version": "1", "status": "active", "name": "SymptomChecklist",
            "title": "Symptom checklist (nurse telephone review)",
            "item": [{"linkId": link, "text": text, "type": "boolean", "code": [{"system": SNOMED, "code": code}]}
                     for link, (code, text) in _CHECKLIST.items()],
        })
        self.add("QuestionnaireResponse", "checkin", {
            "questionnaire": f"{_CHECKLIST_URL}|1",
            "status": "completed",
            "subject": self.subject,
            "authored": self.at(days_ago),
            "item": [{"linkId": link, "answer": [{"valueBoolean": yes}]} for link, yes in answers.items()],
        })

    def tpmt(self, phenotype: str, *, days_ago: float = 430) -> None:
        answer, display = _TPMT[phenotype]
        self.result("tpmt", _cc(LOINC, "79713-4", "TPMT phenotype"), "laboratory", taken=self.at(days_ago),
                    issued=self.at(days_ago - 7), valueCodeableConcept=_cc(LOINC, answer, display))


def _routine(
    c: _Chart,
    *,
    latest: dict[str, float] | None = None,
    units: dict[str, tuple[str, str]] | None = None,
    cbc_days: tuple[int, ...] = _DRAW_DAYS,
    weight: tuple[float, str] | None = (72.0, "kg"),
    temperature: tuple[float, str] = (36.8, "Cel"),
    tpmt: str | None = "normal",
) -> None:
    """The monitored patient's results: three monthly draws, a weight, today's temperature, TPMT."""
    latest = latest or {}
    units = units or {}
    for analytes, days in ((_CBC, cbc_days), (_LFT + _RENAL, _DRAW_DAYS)):
        for i, day in enumerate(days):
            for a in analytes:
                value = latest.get(a, _NORMAL[a][0]) if i == 0 else _NORMAL[a][i]
                unit, text = units.get(a, (None, None)) if i == 0 else (None, None)
                # Drawn at 08:30 when `now` is noon (hours_ago is negative: later on that day).
                c.observation(f"{a}-{i + 1}", a, value, days_ago=day, hours_ago=-8.5, unit=unit,
                              unit_text=text)
    if weight is not None:
        c.observation("weight", "weight", weight[0], days_ago=_DRAW_DAYS[0], unit=weight[1])
    c.observation("temp", "temperature", temperature[0], days_ago=0, hours_ago=6, unit=temperature[1])
    if tpmt is not None:  # None: the patient's TPMT is measured otherwise (an enzyme activity)
        c.tpmt(tpmt)


def _expect(**changes: str) -> dict[str, str]:
    """All nine rules ok, except the given ones (keyword = rule id with '_' for '-')."""
    expected: dict[str, str] = dict.fromkeys(RULE_IDS, "ok")
    for key, status in changes.items():
        rule = key.replace("_", "-")
        if rule not in expected:
            raise KeyError(f"unknown rule id {rule!r}")
        expected[rule] = status
    return expected


_ALL_NOT_APPLICABLE: dict[str, str] = dict.fromkeys(RULE_IDS, "not-applicable")

# --- the patients ------------------------------------------------------------------


def _on_azathioprine(c: _Chart, person: _Person, *diagnoses: tuple[str, float], **order: Any) -> None:
    """Who the patient is, their diagnoses (key, days ago), and their azathioprine order (_Chart.azathioprine)."""
    c.patient(*person)
    for key, days_ago in diagnoses:
        c.diagnosis(key, days_ago=days_ago)
    c.azathioprine(**order)


def _stable(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Margaret", "Okafor", "female", "1968-03-14", "AZA-1001", "Worcester"), ("crohns", 1500))
    _routine(c)
    return _expect()


def _febrile_c(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Daniel", "Reyes", "male", "1979-11-02", "AZA-1002", "Springfield"), ("ra", 2200))
    _routine(c, temperature=(38.6, "Cel"))
    return _expect(infection_hold="hold")


def _febrile_f(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Linda", "Hoffman", "female", "1961-07-23", "AZA-1003", "Lowell"), ("sle", 3000))
    _routine(c, temperature=(101.8, "[degF]"), weight=(165.0, "[lb_av]"))
    return _expect(infection_hold="hold")


def _pneumonia(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Samuel", "Brennan", "male", "1955-01-30", "AZA-1004", "Quincy"),
                     ("uc", 2600), ("pneumonia", 2))
    _routine(c)
    return _expect(infection_hold="hold")


def _antibiotic(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Priya", "Natarajan", "female", "1984-09-09", "AZA-1005", "Cambridge"), ("crohns", 1800))
    c.other_drug("amox", "308192", "Amoxicillin 500 MG Oral Tablet", started_days_ago=1,
                 text="Take 1 tablet by mouth three times daily for 7 days")
    _routine(c)
    return _expect(infection_hold="hold")


def _mmr_due(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Thomas", "Lindqvist", "male", "1990-04-18", "AZA-1006", "Boston"), ("aih", 900))
    c.recommendation("mmr", "03", "measles, mumps and rubella virus vaccine", due_in_days=7)
    _routine(c)
    return _expect(vaccination_hold="hold")


def _yellow_fever_order(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Grace", "Adeyemi", "female", "1987-12-05", "AZA-1007", "Brookline"), ("ra", 1400))
    c.vaccine_order("yf", "MedicationRequest", "37", "yellow fever vaccine, live",
                    reason="Travel clinic: trip to Ghana in 3 weeks")
    _routine(c)
    return _expect(vaccination_hold="hold")


def _varicella_order(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Kevin", "Walsh", "male", "1993-06-27", "AZA-1008", "Newton"), ("crohns", 700))
    c.vaccine_order("var", "ServiceRequest", "21", "varicella virus vaccine, live",
                    reason="Varicella IgG negative: vaccinate")
    _routine(c)
    return _expect(vaccination_hold="hold")


def _shingrix(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Eleanor", "Whitfield", "female", "1952-10-11", "AZA-1009", "Salem"), ("ra", 4000))
    c.recommendation("rzv", "187", "zoster vaccine recombinant, adjuvanted", due_in_days=14)
    _routine(c)
    return _expect(vaccination_hold="caution")


def _leukopenic(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Robert", "Castellano", "male", "1966-02-19", "AZA-1010", "Lynn"), ("uc", 2000))
    _routine(c, latest={"wbc": 2.9, "neutrophils": 1.8, "lymphocytes": 0.8})
    return _expect(blood_counts="hold")


def _neutropenic(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Aisha", "Karimi", "female", "1975-05-08", "AZA-1011", "Waltham"), ("sle", 2500))
    # UK-style units (10*9/L) for the whole count: the same values as 10*3/uL.
    uk = ("10*9/L", "10*9/L")
    _routine(c, latest={"wbc": 3.9, "neutrophils": 1.1},
             units={a: uk for a in ("wbc", "neutrophils", "lymphocytes", "eosinophils", "platelets")})
    return _expect(blood_counts="hold")


def _alt_raised(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Henry", "Doucette", "male", "1971-08-30", "AZA-1012", "Haverhill"), ("aih", 1100))
    _routine(c, latest={"alt": 146, "ast": 92})
    return _expect(liver="hold")


def _cbc_overdue(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Sofia", "Marchetti", "female", "1982-01-16", "AZA-1013", "Medford"), ("crohns", 1600))
    # Last CBC 50 days ago: still recent enough to read (< 92 days), but the monthly CBC is overdue.
    _routine(c, cbc_days=(50, 80, 110))
    return _expect(monitoring_schedule="caution")


def _no_weight(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Marcus", "Bell", "male", "1988-03-03", "AZA-1014", "Malden"), ("ra", 1300))
    _routine(c, weight=None)
    return _expect(dose="cannot-evaluate")


def _unknown_unit(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Ingrid", "Sorensen", "female", "1977-09-21", "AZA-1015", "Framingham"), ("uc", 1900))
    # "G/L" is what some European labs print; it is not a UCUM unit and not in the alias table.
    _routine(c, latest={"wbc": 5.9}, units={"wbc": ("G/L", "G/L")})
    return _expect(blood_counts="cannot-evaluate")


def _medication_reference(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Oliver", "Nakamura", "male", "1969-12-12", "AZA-1016", "Somerville"),
                     ("crohns", 2100), by_reference=True)
    _routine(c)
    return _expect()


def _stopped_live_due(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Hannah", "Schultz", "female", "1985-02-28", "AZA-1017", "Arlington"),
                     ("crohns", 2400), started_days_ago=700, stopped_days_ago=42)
    c.recommendation("mmr", "03", "measles, mumps and rubella virus vaccine", due_in_days=3)
    return {**_ALL_NOT_APPLICABLE, "vaccination-hold": "hold"}


def _not_on_azathioprine(c: _Chart) -> dict[str, str]:
    c.patient("George", "Papadopoulos", "male", "1958-05-17", "AZA-1018", "Peabody")
    c.diagnosis("htn", days_ago=3000)
    c.other_drug("lisinopril", "314076", "lisinopril 10 MG Oral Tablet", started_days_ago=900,
                 text="Take 1 tablet by mouth once daily")
    c.recommendation("mmr", "03", "measles, mumps and rubella virus vaccine", due_in_days=10)
    c.observation("temp", "temperature", 38.4, days_ago=0, hours_ago=3)
    return dict(_ALL_NOT_APPLICABLE)


def _allopurinol(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Walter", "Jensen", "male", "1957-11-29", "AZA-1019", "Beverly"), ("ra", 3500), ("gout", 20))
    c.other_drug("allopurinol", "197319", "allopurinol 100 MG Oral Tablet", started_days_ago=14,
                 text="Take 1 tablet by mouth once daily")
    _routine(c)
    return _expect(interactions="hold")


def _tpmt_intermediate(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Chloe", "Dubois", "female", "1995-08-04", "AZA-1020", "Everett"), ("aih", 500))
    _routine(c, tpmt="intermediate")
    return _expect(tpmt="caution")


def _high_dose(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Nora", "Fitzgerald", "female", "1973-04-12", "AZA-1021", "Dedham"),
                     ("mg", 1700), drug=_AZA_100, tablets_mg=100)
    _routine(c, weight=(58.0, "kg"))
    return _expect(dose="caution")


def _warning_signs(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Helen", "Marsh", "female", "1981-06-22", "AZA-1022", "Quincy"), ("uc", 900))
    _routine(c, tpmt=None)
    # TPMT measured as an enzyme activity (a number), by its LOINC code alone, within the lab's range.
    c.lab_result("tpmt", "21563-2", None, 31.0, "U/mL", days_ago=430, low=24.0, high=44.0, flag="N")
    c.checklist(days_ago=1, answers={"1": True, "2": True, "3": False})
    return _expect(infection_hold="caution")


def _cmv_viraemia(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Samuel", "Achterberg", "male", "1966-02-09", "AZA-1023", "Framingham"), ("kt", 2000))
    _routine(c)
    c.lab_result("cmv", "72493-0", "Cytomegalovirus DNA [Units/volume] (viral load) in Serum or Plasma by NAA with "
                 "probe detection", 5200.0, "[IU]/mL", days_ago=2, high=137.0, flag="H")
    return _expect(infection_hold="hold")


def _pancreatitis(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Ines", "Carvalho", "female", "1990-10-30", "AZA-1024", "Lowell"),
                     ("crohns", 300), started_days_ago=400)
    _routine(c)
    c.lab_result("lipase", "3040-3", "Triacylglycerol lipase [Enzymatic activity/volume] in Serum or Plasma",
                 250.0, "U/L", days_ago=1, low=13.0, high=60.0, flag="H")
    return _expect(pancreatitis="hold")


def _tpmt_activity_low(c: _Chart) -> dict[str, str]:
    _on_azathioprine(c, ("Arjun", "Mehta", "male", "1979-12-03", "AZA-1025", "Waltham"), ("aih", 600))
    _routine(c, tpmt=None)
    # Below the lab's range, flagged L: an intermediate activity (the lab decides, not a cut-off of ours).
    c.lab_result("tpmt", "21563-2", None, 19.5, "U/mL", days_ago=430, low=24.0, high=44.0, flag="L")
    return _expect(tpmt="caution")


_Scenario = tuple[str, str, Callable[[_Chart], dict[str, str]]]

# (patient id, one-line story, builder); the order is the order of build_patients().
SCENARIOS: tuple[_Scenario, ...] = (
    ("aza-stable",
     "On azathioprine 50 mg twice daily for a year, monitored monthly, normal TPMT: all checks "
     "pass.",
     _stable),
    ("aza-febrile-c",
     "On azathioprine with a temperature of 38.6 °C this morning: infection hold.",
     _febrile_c),
    ("aza-febrile-f",
     "On azathioprine with a temperature of 101.8 °F (38.8 °C), weight in pounds: infection "
     "hold.",
     _febrile_f),
    ("aza-pneumonia",
     "On azathioprine, diagnosed with pneumonia 2 days ago (active Condition): infection hold.",
     _pneumonia),
    ("aza-antibiotic",
     "On azathioprine, started amoxicillin yesterday: infection hold.",
     _antibiotic),
    ("aza-mmr-due",
     "On azathioprine with an MMR dose recommended (due in 7 days): hold the live vaccine.",
     _mmr_due),
    ("aza-yellow-fever-order",
     "On azathioprine, yellow fever vaccine ordered for travel (MedicationRequest, CVX 37): hold"
     " the live vaccine.",
     _yellow_fever_order),
    ("aza-varicella-order",
     "On azathioprine, varicella vaccine ordered (ServiceRequest, CVX 21): hold the live "
     "vaccine.",
     _varicella_order),
    ("aza-shingrix",
     "On azathioprine with Shingrix (recombinant zoster, not live) due: prescriber approval "
     "only.",
     _shingrix),
    ("aza-leukopenic",
     "On azathioprine, latest WBC 2.9 ×10⁹/L (was 6.0): withhold and discuss.",
     _leukopenic),
    ("aza-neutropenic",
     "On azathioprine, latest neutrophils 1.1 ×10⁹/L (UK units): withhold and discuss.",
     _neutropenic),
    ("aza-alt-raised",
     "On azathioprine, latest ALT 146 U/L: withhold and discuss.",
     _alt_raised),
    ("aza-cbc-overdue",
     "On azathioprine for a year, last CBC 50 days ago (monthly due): blood count overdue.",
     _cbc_overdue),
    ("aza-no-weight",
     "On azathioprine, no body weight on file: the mg/kg dose cannot be checked.",
     _no_weight),
    ("aza-unknown-unit",
     "On azathioprine, latest WBC reported in 'G/L', not a known UCUM unit: cannot evaluate.",
     _unknown_unit),
    ("aza-medication-reference",
     "On azathioprine ordered through a Medication resource (medicationReference): all checks "
     "pass.",
     _medication_reference),
    ("aza-stopped",
     "Azathioprine stopped 6 weeks ago, MMR now recommended: still hold the live vaccine (wait 3"
     " months).",
     _stopped_live_due),
    ("aza-not-on",
     "Not on azathioprine (lisinopril only), MMR due and a temperature: nothing applies.",
     _not_on_azathioprine),
    ("aza-allopurinol",
     "On azathioprine 100 mg/day, allopurinol started 2 weeks ago without a dose cut: "
     "interaction hold.",
     _allopurinol),
    ("aza-tpmt-intermediate",
     "On azathioprine with an intermediate TPMT phenotype: reduced dose advised.",
     _tpmt_intermediate),
    ("aza-high-dose",
     "On azathioprine 100 mg twice daily at 58 kg (3.4 mg/kg/day): above the 3 mg/kg/day "
     "maximum.",
     _high_dose),
    ("aza-warning-signs",
     "On azathioprine, told the nurse yesterday of a sore throat and white patches in the mouth "
     "(a checklist coded on the server); TPMT activity 31 U/mL: warning signs of infection.",
     _warning_signs),
    ("aza-cmv-viraemia",
     "On azathioprine after a kidney transplant, CMV DNA 5200 IU/mL two days ago: infection "
     "shown by the lab, hold.",
     _cmv_viraemia),
    ("aza-pancreatitis",
     "On azathioprine, lipase 250 U/L yesterday (over 3× the lab's upper limit of 60): "
     "pancreatitis, stop.",
     _pancreatitis),
    ("aza-tpmt-activity-low",
     "On azathioprine, TPMT activity 19.5 U/mL, below the lab's range (24–44): intermediate "
     "activity, reduced dose advised.",
     _tpmt_activity_low),
)


def build_patients(now: datetime) -> list[SyntheticPatient]:
    """Every synthetic patient, with dates relative to `now` (timezone-aware)."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    patients = []
    for pid, story, build in SCENARIOS:
        chart = _Chart(pid, now)
        expected = build(chart)
        patient = chart.resources[0]
        name = patient["name"][0]
        patients.append(SyntheticPatient(
            id=pid, name=f"{name['given'][0]} {name['family']}", story=story,
            resources=chart.resources, expected=expected,
        ))
    return patients


@cache
def stories() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    """Patient id -> (story, expected verdict words, rules behind it): what the sandbox launcher shows."""
    return {p.id: (p.story, p.expected_verdict, p.expected_focus) for p in build_patients(EXAMPLES_NOW)}


def transaction_bundle(patients: list[SyntheticPatient]) -> Resource:
    """One transaction of PUTs with fixed ids: loading it twice leaves one copy of everything."""
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": ref_of(r)}}
            for p in patients for r in p.resources
        ],
    }


def collection_bundle(patient: SyntheticPatient, now: datetime) -> Resource:
    return {
        "resourceType": "Bundle",
        "id": patient.id,
        "type": "collection",
        "timestamp": _ts(now),
        "entry": [{"resource": r} for r in patient.resources],
    }


def example_files(now: datetime = EXAMPLES_NOW) -> dict[str, str]:
    """What examples/ holds: file name -> exact text."""
    patients = build_patients(now)
    files = {f"{p.id}.json": json.dumps(collection_bundle(p, now), indent=2, ensure_ascii=False) + "\n"
             for p in patients}
    files["README.md"] = _readme(patients, now)
    return files


def write_examples(directory: Path, now: datetime = EXAMPLES_NOW) -> list[Path]:
    """Write one collection Bundle per patient plus README.md; drop stale aza-*.json files."""
    directory.mkdir(parents=True, exist_ok=True)
    files = example_files(now)
    for stale in directory.glob("aza-*.json"):
        if stale.name not in files:
            stale.unlink()
    written = []
    for name, text in files.items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _readme(patients: list[SyntheticPatient], now: datetime) -> str:
    stamp = _ts(now)
    lines = [
        "# Synthetic example patients",
        "",
        "Generated by `azaguard.sandbox.patients.write_examples` — do not edit by hand; regenerate with",
        "",
        "```",
        "python -c \"from pathlib import Path; from azaguard.sandbox.patients import write_examples; "
        "write_examples(Path('examples'))\"",
        "```",
        "",
        f"Each file is a FHIR R4 `collection` Bundle for one patient, dated relative to {stamp}.",
        f"Evaluate with `--now {stamp}` to reproduce the expected findings below (with another",
        "`now`, windows such as 72 hours for fever or the monitoring intervals move and the results change).",
        "The same patients, dated relative to the current time, are what the sandbox server loads.",
        "",
        "Expected: each rule's headline (most urgent) status.",
        "",
        "| file | patient | story | expected |",
        "|---|---|---|---|",
    ]
    lines += [f"| [{p.id}.json]({p.id}.json) | {p.name} | {p.story} | {_expected_text(p.expected)} |"
              for p in patients]
    return "\n".join(lines) + "\n"


def _expected_text(expected: dict[str, str]) -> str:
    """'ok except infection-hold: hold' — the usual status, then the rules that differ."""
    usual = Counter(expected.values()).most_common(1)[0][0]
    rest = [f"{rule}: {status}" for rule, status in expected.items() if status != usual]
    return f"{usual} except " + ", ".join(rest) if rest else f"all {usual}"
