"""The independent second pass of issue 24: whose, whether, which version, in which script, context, vaccines in time.

Written from the FHIR R4 specification and the guidelines (../shared clinical-rules §2, §6, §9) BEFORE the code
that reads them, and run first on the unmodified code (the closing note /work/notes/ISSUE-24.md has the counts).
Where a FHIR element decides the case, its definition is quoted in the case's `why`.

Each record goes through `check_resources` (what `azaguard check --bundle` runs). Expectations:
- "hold", "caution", "cannot-evaluate", "ok", "not-applicable": the rule's headline status;
- "not-hold": anything but hold (a false alarm erodes trust too);
- `says`: words that must appear in what the rule or the warnings say (whose it is, why a threshold is off).

A wrong answer is *unsafe* when it is quieter than the expected one (hold > cannot-evaluate > caution > ok >
not-applicable), or when a "not-hold" case is answered "ok"/"not-applicable" where "says" was required; other
wrong answers are false alarms. `python -m tests.clinical.test_meaning_pass` prints the tally.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.resources import InputError, resource_set_from_json
from azaguard.service import CheckResult, check_resources
from tests.clinical.builders import NOW, when
from tests.words import said

Resource = dict[str, Any]
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SCT = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
FORECAST = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
PID = "m1"
PAT = f"Patient/{PID}"
_ids = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}{next(_ids)}"


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


def future(days: float) -> str:
    return (NOW + timedelta(days=days)).isoformat()


def patient(pid: str = PID, **extra: Any) -> Resource:
    return {"resourceType": "Patient", "id": pid, "gender": "female", "birthDate": "1975-02-03"} | extra


def med(concept: Resource, *, status: str = "active", subject: str = PAT, days_ago: float = 200,
        dose: bool = False, **extra: Any) -> Resource:
    r: Resource = {"resourceType": "MedicationRequest", "id": _id("mr"), "status": status, "intent": "order",
                   "subject": {"reference": subject}, "medicationCodeableConcept": concept,
                   "authoredOn": when(days_ago=days_ago)}
    if dose:
        r["dosageInstruction"] = [{
            "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}},
            "doseAndRate": [{"doseQuantity": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"}}]}]
    return r | extra


def aza(**kw: Any) -> Resource:
    kw.setdefault("dose", True)
    return med(cc("197388", RX, "azathioprine 50 MG Oral Tablet"), **kw)


def obs(loinc: str, value: float | None, unit: str | None, *, hours_ago: float = 3, days_ago: float = 0,
        status: str = "final", subject: str = PAT, **extra: Any) -> Resource:
    r: Resource = {"resourceType": "Observation", "id": _id("ob"), "status": status, "code": cc(loinc, LOINC),
                   "subject": {"reference": subject}, "effectiveDateTime": when(days_ago=days_ago, hours_ago=hours_ago)}
    if value is not None:
        r["valueQuantity"] = {"value": value, "unit": unit, "system": UCUM, "code": unit}
    return r | extra


def temp(v: float, **kw: Any) -> Resource:
    return obs("8310-5", v, "Cel", **kw)


def wbc(v: float | None, **kw: Any) -> Resource:
    return obs("6690-2", v, "10*3/uL", **kw)


def alt(v: float, **kw: Any) -> Resource:
    return obs("1742-6", v, "U/L", **kw)


def weight(v: float = 70, **kw: Any) -> Resource:
    kw.setdefault("days_ago", 5)
    return obs("29463-7", v, "kg", **kw)


def tpmt(answer: tuple[str, str], *, days_ago: float = 30, **extra: Any) -> Resource:
    r = obs("79713-4", None, None, days_ago=days_ago)
    r["valueCodeableConcept"] = cc(answer[0], LOINC, answer[1])
    return r | extra


NORMAL = ("LA25391-6", "Normal metabolizer")
POOR = ("LA9657-3", "Poor metabolizer")


def condition(concept: Resource, *, days_ago: float = 2, status: str | None = "active", **extra: Any) -> Resource:
    r: Resource = {"resourceType": "Condition", "id": _id("c"), "code": concept, "subject": {"reference": PAT},
                   "recordedDate": when(days_ago=days_ago)}
    if status:
        r["clinicalStatus"] = cc(status, CLINICAL)
    return r | extra


def recommendation(vaccine: Resource, *, forecast: str = "due", due_in_days: float = 7, **item: Any) -> Resource:
    return {"resourceType": "ImmunizationRecommendation", "id": _id("ir"), "patient": {"reference": PAT},
            "date": when(days_ago=1),
            "recommendation": [{"vaccineCode": [vaccine], "forecastStatus": cc(forecast, FORECAST),
                                "dateCriterion": [{"code": cc("30980-7", LOINC), "value": future(due_in_days)}]}
                               | item]}


def immunization(vaccine: Resource, *, days_ago: float = 5) -> Resource:
    return {"resourceType": "Immunization", "id": _id("im"), "status": "completed", "vaccineCode": vaccine,
            "patient": {"reference": PAT}, "occurrenceDateTime": when(days_ago=days_ago)}


def service_request(concept: Resource, **extra: Any) -> Resource:
    return {"resourceType": "ServiceRequest", "id": _id("sr"), "status": "active", "intent": "order",
            "code": concept, "subject": {"reference": PAT}, "authoredOn": when(days_ago=1)} | extra


def record(*resources: Resource, head: list[Resource] | None = None, btype: str = "collection") -> Resource:
    entries = [{"fullUrl": f"https://ehr.example.org/fhir/{r['resourceType']}/{r.get('id', _id('x'))}",
                "resource": r} for r in [*(head if head is not None else [patient()]), *resources]]
    return {"resourceType": "Bundle", "type": btype, "entry": entries}


FEVER = {"hours_ago": 3}
MMR = cc("03", CVX, "MMR")


@dataclass(frozen=True)
class Case:
    name: str
    bundle: Resource
    rule: str
    expect: str
    says: tuple[str, ...] = ()
    why: str = ""
    tags: tuple[str, ...] = field(default=())


def run(case: Case) -> tuple[str, str, CheckResult | None]:
    try:
        result = check_resources(resource_set_from_json(case.bundle), mappings=load_mappings(), now=NOW)
    except InputError as exc:  # refused as unusable input: the record is not checked at all
        return "(refused)", str(exc), None
    found = [f for f in result.findings if f.rule == case.rule]
    status = str(found[0].status) if found else "(none)"
    text = " ".join(
        [said(f).summary + " " + said(f).detail + " " + " ".join(e.description for e in f.evidence) for f in found]
        + result.warnings
    )
    return status, text, result


def judge(case: Case, status: str, text: str) -> bool:
    ok = (status != "hold") if case.expect == "not-hold" else (status == case.expect)
    return ok and all(s.lower() in text.lower() for s in case.says)


_RANK = {"hold": 0, "cannot-evaluate": 1, "caution": 2, "ok": 3, "not-applicable": 4, "(none)": 5, "(refused)": 5}


def unsafe(case: Case, status: str) -> bool:
    """Quieter than expected: a hazard missed, a result taken as the patient's that is not, a fail-safe lost."""
    if case.expect == "not-hold":
        return False
    return _RANK[status] > _RANK[case.expect]


# --- whose ---------------------------------------------------------------------------------------------------

FOCUS_DEF = ("Observation.focus: 'The actual focus of an observation when it is not the patient of record "
             "representing something or someone associated with the patient such as a spouse, parent, fetus, or "
             "donor. ... The focus of an observation could also be an existing condition, an intervention, the "
             "subject's diet, another observation of the subject, or a body structure such as tumor or implanted "
             "device.'")
LINK_DEF = ("Patient.link: 'Link to another patient resource that concerns the same actual patient.' "
            "replaces: 'The link points back to an inactive patient resource that has been merged into this "
            "resource, and should be consulted to retrieve additional referenced information.'")
FMH_DEF = ("FamilyMemberHistory: 'Significant health conditions for a person related to the patient relevant "
           "in the context of care for the patient.'")

_donor_specimen = {"resourceType": "Specimen", "id": "spec-donor", "subject": {"reference": "Patient/donor-7",
                                                                                "display": "Deceased organ donor"}}
_aih = condition(cc("K75.4", ICD10CM, "Autoimmune hepatitis"), days_ago=400)

WHOSE = [
    Case("fetal platelet count (focus: the fetus) in the mother's record",
         record(aza(), obs("777-3", 40, "10*3/uL", days_ago=1,
                           focus=[{"reference": "Patient/fetus-1", "display": "Fetus"}]),
                obs("777-3", 250, "10*3/uL", days_ago=6), wbc(6.0, days_ago=6)),
         "blood-counts", "not-hold", ("fetus",), FOCUS_DEF),
    Case("kidney donor's eGFR (focus: the donor) in the recipient's record",
         record(aza(), obs("33914-3", 45, "mL/min/{1.73_m2}", days_ago=1,
                           focus=[{"reference": "Patient/donor-7", "display": "Living kidney donor"}]),
                obs("33914-3", 75, "mL/min/{1.73_m2}", days_ago=8)),
         "kidney", "not-hold", ("donor",), FOCUS_DEF),
    Case("mother's TPMT 'poor' (focus: RelatedPerson) in the child's record: not the patient's phenotype",
         record(aza(), tpmt(POOR, focus=[{"reference": "RelatedPerson/mother-1", "display": "Mother"}])),
         "tpmt", "not-hold", ("mother",), FOCUS_DEF),
    Case("ALT 250 whose focus is the patient's own condition: still the patient's value (non-catch)",
         record(aza(), _aih, alt(250, days_ago=1, focus=[{"reference": f"Condition/{_aih['id']}"}])),
         "liver", "hold", (), FOCUS_DEF),
    Case("ALT 300 measured on the donor's specimen (Specimen.subject is the donor)",
         record(_donor_specimen, aza(), alt(300, days_ago=1, specimen={"reference": "Specimen/spec-donor"}),
                alt(30, days_ago=10)),
         "liver", "not-hold", ("donor",),
         "Specimen.subject: 'Where the specimen came from.' A result on another person's specimen is theirs."),
    Case("parent's TPMT deficiency (FamilyMemberHistory), no TPMT of the patient: a reason to test, not a phenotype",
         record(aza(), {"resourceType": "FamilyMemberHistory", "id": "fmh1", "status": "completed",
                        "patient": {"reference": PAT}, "relationship": cc("FTH", "http://terminology.hl7.org/"
                                                                               "CodeSystem/v3-RoleCode", "father"),
                        "condition": [{"code": cc(text="TPMT deficiency (thiopurine methyltransferase deficiency)")}]}),
         "tpmt", "cannot-evaluate", ("father",), FMH_DEF),
    Case("parent's TPMT deficiency beside the patient's own normal TPMT: the patient's result decides (non-catch)",
         record(aza(), tpmt(NORMAL), {"resourceType": "FamilyMemberHistory", "id": "fmh2", "status": "completed",
                                      "patient": {"reference": PAT}, "relationship": cc(text="mother"),
                                      "condition": [{"code": cc(text="TPMT deficiency")}]}),
         "tpmt", "ok", (), FMH_DEF),
    Case("merged record: azathioprine ordered under the old id that Patient.link 'replaces'",
         record(aza(subject="Patient/old-9"), temp(38.7, **FEVER),
                head=[patient(link=[{"other": {"reference": "Patient/old-9"}, "type": "replaces"}])]),
         "infection-hold", "hold", (), LINK_DEF),
    Case("Patient.link 'seealso': a low WBC filed under the patient's other record",
         record(aza(), wbc(2.0, days_ago=1, subject="Patient/lab-sys-3"),
                head=[patient(link=[{"other": {"reference": "Patient/lab-sys-3"}, "type": "seealso"}])]),
         "blood-counts", "hold", (), LINK_DEF),
    Case("both merged Patient resources in the Bundle, the replaced one first",
         record(aza(), temp(38.9, subject="Patient/old-9", **FEVER),
                head=[patient("old-9", active=False,
                              link=[{"other": {"reference": PAT}, "type": "replaced-by"}]),
                      patient(link=[{"other": {"reference": "Patient/old-9"}, "type": "replaces"}])]),
         "infection-hold", "hold", (), LINK_DEF),
    Case("another patient's fever without any link stays out (non-catch)",
         record(aza(), temp(36.8, **FEVER), temp(39.5, subject="Patient/x-2", **FEVER)),
         "infection-hold", "ok"),
]

# --- whether --------------------------------------------------------------------------------------------------

DNP_MR = ("MedicationRequest.doNotPerform: 'If true indicates that the provider is asking for the medication "
          "request not to occur.'")
DNP_SR = ("ServiceRequest.doNotPerform: 'Set this to true if the record is saying that the service/procedure "
          "should NOT be performed.'")
REGISTERED = ("Observation.status registered: 'The existence of the observation is registered, but there is no "
              "result yet available.'")

WHETHER = [
    Case("do-not-give azathioprine order (TPMT deficient) is not therapy",
         record(aza(doNotPerform=True), temp(38.8, **FEVER)), "infection-hold", "not-applicable", (), DNP_MR),
    Case("do-not-give MMR order while on azathioprine is a safety measure, not a plan",
         record(aza(), med(MMR, days_ago=1, doNotPerform=True)), "vaccination-hold", "not-hold", (), DNP_MR),
    Case("do-not-perform yellow fever vaccination ServiceRequest",
         record(aza(), service_request(cc("67308009", SCT, "Yellow fever vaccination"), doNotPerform=True)),
         "vaccination-hold", "not-hold", (), DNP_SR),
    Case("doNotPerform false on an MMR order: an order like any other (non-catch)",
         record(aza(), med(MMR, days_ago=1, doNotPerform=False)), "vaccination-hold", "hold", (), DNP_MR),
    Case("MMR recommendation with forecastStatus 'contraindicated'",
         record(aza(), recommendation(MMR, forecast="contraindicated")), "vaccination-hold", "not-hold", (),
         "ImmunizationRecommendation.recommendation.forecastStatus contraindicated: the vaccine must not be given."),
    Case("do-not-give allopurinol order is not co-medication",
         record(aza(), med(cc("519", RX, "allopurinol"), days_ago=3, doNotPerform=True)),
         "interactions", "not-hold", (), DNP_MR),
    Case("fever finding recorded as absent (valueBoolean false) with a normal temperature",
         record(aza(), temp(36.7, **FEVER),
                {"resourceType": "Observation", "id": "neg1", "status": "final", "subject": {"reference": PAT},
                 "code": cc("386661006", SCT, "Fever"), "effectiveDateTime": when(hours_ago=4),
                 "valueBoolean": False}),
         "infection-hold", "not-hold", (), "Observation.valueBoolean false: the finding is absent."),
    Case("pneumonia recorded with the SNOMED 'Absent' qualifier (2667000)",
         record(aza(), temp(36.7, **FEVER),
                {"resourceType": "Observation", "id": "neg2", "status": "final", "subject": {"reference": PAT},
                 "code": cc("233604007", SCT, "Pneumonia"), "effectiveDateTime": when(hours_ago=4),
                 "valueCodeableConcept": cc("2667000", SCT, "Absent")}),
         "infection-hold", "not-hold"),
    Case("questionnaire 'Fever or chills in the last 7 days?' answered no",
         record(aza(), temp(36.7, **FEVER),
                {"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
                 "subject": {"reference": PAT}, "authored": when(hours_ago=5),
                 "item": [{"linkId": "fever", "text": "Fever or chills in the last 7 days?",
                           "answer": [{"valueBoolean": False}]},
                          {"linkId": "cough", "text": "Cough for more than two days?",
                           "answer": [{"valueCoding": {"system": LOINC, "code": "LA32-8", "display": "No"}}]}]}),
         "infection-hold", "not-hold"),
    Case("SARS-CoV-2 RNA 'Not detected' is evidence of absence",
         record(aza(), temp(36.7, **FEVER),
                {"resourceType": "Observation", "id": "neg3", "status": "final", "subject": {"reference": PAT},
                 "code": cc("94500-6", LOINC, "SARS-CoV-2 RNA NAA+probe Ql (Resp)"),
                 "effectiveDateTime": when(hours_ago=20), "valueCodeableConcept": cc("260415000", SCT,
                                                                                      "Not detected")}),
         "infection-hold", "not-hold"),
    Case("WBC registered today (no value yet) after a normal WBC 10 days ago",
         record(aza(), wbc(None, status="registered", hours_ago=2), wbc(6.1, days_ago=10),
                obs("751-8", 3.9, "10*3/uL", days_ago=10), obs("777-3", 250, "10*3/uL", days_ago=10)),
         "blood-counts", "ok", (), REGISTERED),
    Case("registered CBC and ALT today do not make monitoring up to date (last results 45 days ago)",
         record(aza(), wbc(None, status="registered", hours_ago=2), alt(25, days_ago=45),
                obs("1742-6", None, None, status="registered", hours_ago=2), wbc(6.0, days_ago=45)),
         "monitoring-schedule", "caution", (), REGISTERED),
    Case("a CBC ordered today (ServiceRequest, no result yet) is not a result",
         record(aza(), service_request(cc("58410-2", LOINC, "CBC panel")), wbc(6.0, days_ago=45),
                alt(25, days_ago=45)),
         "monitoring-schedule", "caution"),
]

# --- which version ------------------------------------------------------------------------------------------------

VERSION_DEF = ("Meta.versionId: 'The version specific identifier, as it appears in the version portion of the URL. "
               "This value changes when the resource is created, updated, or deleted.'")
HISTORY_DEF = ("RESTful history: 'The return content is a Bundle with type set to history containing the specified "
               "version history, sorted with oldest versions last, and including deleted resources.'")
PRELIM_DEF = ("Observation.status preliminary: 'This is an initial or interim observation: data may be incomplete or "
              "unverified.' corrected: 'Subsequent to being Final, the observation has been modified to correct an "
              "error in the test result.'")
HASMEMBER_DEF = ("Observation.hasMember: 'This observation is a group observation (e.g. a battery, a panel of tests, "
                 "a set of vital sign measurements) that includes the target as a member of the group.' "
                 "Resource.contained: 'These resources do not have an independent existence apart from the resource "
                 "that contains them'.")


def _aza_v(version: str, status: str, **extra: Any) -> Resource:
    r = aza(status=status, **extra)
    r["id"] = "aza-1"
    r["meta"] = {"versionId": version, "lastUpdated": when(days_ago=300 - int(version) * 100)}
    return r


_stopped = {"dispenseRequest": {"validityPeriod": {"start": when(days_ago=400), "end": when(days_ago=200)}}}


def _history_allopurinol() -> Resource:
    newest = med(cc("519", RX, "allopurinol"), status="stopped", days_ago=60,
                 dispenseRequest={"validityPeriod": {"start": when(days_ago=60), "end": when(days_ago=20)}})
    older = med(cc("519", RX, "allopurinol"), status="active", days_ago=60)
    for r, updated in ((newest, 20), (older, 60)):
        r["id"] = "allo-1"
        r["meta"] = {"lastUpdated": when(days_ago=updated)}
    return record(aza(), newest, older, btype="history")


def _obs_versions() -> Resource:
    v2 = wbc(6.0, days_ago=1, status="amended")
    v1 = wbc(2.0, days_ago=1, status="final")
    v2["id"] = v1["id"] = "wbc-7"
    v1["meta"], v2["meta"] = {"versionId": "1"}, {"versionId": "2"}
    v2["effectiveDateTime"] = v1["effectiveDateTime"]
    return record(aza(), v2, v1, obs("751-8", 3.9, "10*3/uL", days_ago=1), obs("777-3", 250, "10*3/uL", days_ago=1))


def _prelim_final(prelim: float, final: float, final_status: str = "final") -> Resource:
    p, f = wbc(prelim, days_ago=1, status="preliminary"), wbc(final, days_ago=1, status=final_status)
    f["effectiveDateTime"] = p["effectiveDateTime"]
    return record(aza(), p, f, obs("751-8", 3.9, "10*3/uL", days_ago=1), obs("777-3", 250, "10*3/uL", days_ago=1))


def _contained_panel(member: Resource, code: str, display: str) -> Resource:
    member = dict(member)
    member.pop("subject", None)
    member["id"] = "m-a"
    panel: Resource = {"resourceType": "Observation", "id": _id("panel"), "status": "final",
                       "code": cc(code, LOINC, display), "subject": {"reference": PAT},
                       "effectiveDateTime": member["effectiveDateTime"], "contained": [member],
                       "hasMember": [{"reference": "#m-a"}]}
    return panel


VERSIONS = [
    Case("order version 2 stopped it (version 1 active), listed newest first",
         record(_aza_v("2", "stopped", **_stopped), _aza_v("1", "active"), temp(38.8, **FEVER)),
         "infection-hold", "not-applicable", (), VERSION_DEF),
    Case("order version 2 restarted it (version 1 stopped): latest wins (non-catch)",
         record(_aza_v("1", "stopped", **_stopped), _aza_v("2", "active"), temp(38.8, **FEVER)),
         "infection-hold", "hold", (), VERSION_DEF),
    Case("history Bundle: allopurinol stopped in the newest version, active in the older",
         _history_allopurinol(), "interactions", "not-hold", (), HISTORY_DEF),
    Case("WBC amended from 2.0 (version 1) to 6.0 (version 2), same id",
         _obs_versions(), "blood-counts", "ok", (), VERSION_DEF),
    Case("preliminary WBC 2.1 superseded by the final 5.8 for the same sample",
         _prelim_final(2.1, 5.8), "blood-counts", "ok", (), PRELIM_DEF),
    Case("preliminary WBC 5.8 corrected to 2.1 (non-catch)",
         _prelim_final(5.8, 2.1, "corrected"), "blood-counts", "hold", (), PRELIM_DEF),
    Case("a preliminary WBC 2.0 of a newer sample still counts (non-catch)",
         record(aza(), wbc(2.0, status="preliminary", hours_ago=5), wbc(6.0, days_ago=7),
                obs("751-8", 3.9, "10*3/uL", days_ago=7), obs("777-3", 250, "10*3/uL", days_ago=7)),
         "blood-counts", "hold", (), PRELIM_DEF),
    Case("CBC panel whose WBC 2.1 is a contained member reached through hasMember '#id'",
         record(aza(), _contained_panel(wbc(2.1, days_ago=1), "58410-2", "CBC panel")),
         "blood-counts", "hold", (), HASMEMBER_DEF),
    Case("vital-signs panel whose temperature 38.9 is a contained member",
         record(aza(), _contained_panel(temp(38.9, **FEVER), "85353-1", "Vital signs panel")),
         "infection-hold", "hold", (), HASMEMBER_DEF),
]

# --- which script --------------------------------------------------------------------------------------------------


def _named(text: str) -> Resource:
    return med(cc(text=text), dose=False)


SCRIPTS = [
    Case("Chinese: 硫唑嘌呤片 50mg", record(_named("硫唑嘌呤片 50mg"), temp(38.7, **FEVER)), "infection-hold", "hold"),
    Case("Japanese: アザチオプリン錠50mg", record(_named("アザチオプリン錠50mg"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Japanese half-width katakana: ｱｻﾞﾁｵﾌﾟﾘﾝ錠", record(_named("ｱｻﾞﾁｵﾌﾟﾘﾝ錠50mg"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Korean: 아자티오프린 정 50mg", record(_named("아자티오프린 정 50mg"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Russian: Азатиоприн таблетки 50 мг", record(_named("Азатиоприн таблетки 50 мг"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Greek: Αζαθειοπρίνη 50mg", record(_named("Αζαθειοπρίνη 50mg δισκία"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Arabic: أزاثيوبرين 50 ملغ", record(_named("أزاثيوبرين 50 ملغ"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Hebrew: אזתיופרין 50 מ\"ג", record(_named("אזתיופרין 50 מ\"ג"), temp(38.7, **FEVER)),
         "infection-hold", "hold"),
    Case("Chinese allopurinol 别嘌醇片 beside azathioprine", record(aza(), _named("别嘌醇片 100mg")),
         "interactions", "hold"),
    Case("Japanese febuxostat フェブキソスタット beside azathioprine",
         record(aza(), _named("フェブキソスタット錠20mg")), "interactions", "hold"),
    Case("Russian co-trimoxazole Ко-тримоксазол: a systemic anti-infective",
         record(aza(), temp(36.8, **FEVER), _named("Ко-тримоксазол 480 мг таблетки")), "infection-hold", "hold"),
    Case("Thai azathioprine อะซาไธโอพรีน (a script the tables do not read): never 'not on azathioprine'",
         record(_named("อะซาไธโอพรีน 50 มก."), temp(38.7, **FEVER)), "infection-hold", "cannot-evaluate"),
    Case("Chinese diagnosis 肺炎 (pneumonia), text only", record(aza(), temp(36.8, **FEVER),
                                                         condition(cc(text="肺炎"))), "infection-hold", "hold"),
    Case("Chinese live MMR vaccine recommended: 麻疹腮腺炎风疹联合减毒活疫苗",
         record(aza(), recommendation(cc(text="麻疹腮腺炎风疹联合减毒活疫苗"))), "vaccination-hold", "hold"),
]

# --- context that changes a threshold -------------------------------------------------------------------------------

DAPSONE = cc("J04BA02", ATC, "dapsone")


def _dapsone(reason: Resource) -> Resource:
    return med(DAPSONE, days_ago=30, reasonCode=[reason])


def _transfusion(days_ago: float) -> Resource:
    return {"resourceType": "Procedure", "id": _id("proc"), "status": "completed", "subject": {"reference": PAT},
            "code": cc("116863004", SCT, "Transfusion of red blood cells"),
            "performedDateTime": when(days_ago=days_ago)}


CONTEXT = [
    Case("autoimmune hepatitis, ALT falling on treatment 450 → 280 → 160: response, not the alarm",
         record(aza(), _aih, alt(450, days_ago=60), alt(280, days_ago=30), alt(160, days_ago=2),
                obs("1920-8", 90, "U/L", days_ago=2)),
         "liver", "not-hold", ("autoimmune hepatitis",)),
    Case("autoimmune hepatitis, ALT rising 90 → 160 → 260: the alarm (non-catch)",
         record(aza(), _aih, alt(90, days_ago=60), alt(160, days_ago=30), alt(260, days_ago=2)),
         "liver", "hold"),
    Case("dapsone for dermatitis herpetiformis is not treatment of an infection",
         record(aza(), temp(36.8, **FEVER), _dapsone(cc("L13.0", ICD10CM, "Dermatitis herpetiformis"))),
         "infection-hold", "not-hold"),
    Case("dapsone for bullous pemphigoid is not treatment of an infection",
         record(aza(), temp(36.8, **FEVER), _dapsone(cc("L12.0", ICD10CM, "Bullous pemphigoid"))),
         "infection-hold", "not-hold"),
    Case("dapsone for leprosy is (non-catch)",
         record(aza(), temp(36.8, **FEVER), _dapsone(cc("A30.9", ICD10CM, "Leprosy, unspecified"))),
         "infection-hold", "hold"),
    Case("on haemodialysis: eGFR 8 is not a kidney alert, and the rule says why",
         record(aza(), condition(cc("Z99.2", ICD10CM, "Dependence on renal dialysis"), days_ago=300),
                obs("33914-3", 8, "mL/min/{1.73_m2}", days_ago=2)),
         "kidney", "not-hold", ("dialysis",)),
    Case("weight marked estimated (method) is not used for mg/kg",
         record(aza(), weight(70, method=cc("414135002", SCT, "Estimated"))), "dose", "cannot-evaluate",
         ("estimated",)),
    Case("weight with a note 'stated by patient, not weighed' is not used for mg/kg",
         record(aza(), weight(70, note=[{"text": "Stated by patient, not weighed (unreliable)"}])), "dose",
         "cannot-evaluate"),
    Case("a measured weight is used (non-catch)", record(aza(), weight(70)), "dose", "ok"),
    Case("TPMT 'normal' 30 days after a red-cell transfusion: retest or genotype",
         record(aza(), tpmt(NORMAL, days_ago=30), _transfusion(60)), "tpmt", "caution", ("transfusion",)),
    Case("TPMT 'normal' 5 months after a transfusion (non-catch)",
         record(aza(), tpmt(NORMAL, days_ago=30), _transfusion(180)), "tpmt", "ok"),
    Case("natalizumab with azathioprine (PML risk)",
         record(aza(), med(cc("354770", RX, "natalizumab"), days_ago=30)), "interactions", "caution",
         ("natalizumab",)),
    Case("fingolimod with azathioprine (additive immunosuppression)",
         record(aza(), med(cc(text="Gilenya (fingolimod) 0.5 mg capsule"), days_ago=30)), "interactions",
         "caution", ("fingolimod",)),
    Case("interferon beta-1a (Avonex): information, monitor counts, never a hold",
         record(aza(), med(cc(text="Avonex (interferon beta-1a) 30 mcg"), days_ago=30)), "interactions",
         "not-hold", ("interferon",)),
]

# --- vaccines in time -----------------------------------------------------------------------------------------------


def _planned_stop(days_to_stop: float) -> Resource:
    return aza(dispenseRequest={"validityPeriod": {"start": when(days_ago=200), "end": future(days_to_stop)}})


def _planned_start(days_to_start: float) -> Resource:
    r = aza(days_ago=1)
    r["dosageInstruction"][0]["timing"]["repeat"]["boundsPeriod"] = {"start": future(days_to_start)}
    return r


VACCINES = [
    Case("live vaccine due 4 months after the planned stop date: confirm the stop, not a hold",
         record(_planned_stop(20), recommendation(MMR, due_in_days=20 + 120)), "vaccination-hold", "caution"),
    Case("live vaccine due 2 months after the planned stop: still inside the wait (non-catch)",
         record(_planned_stop(20), recommendation(MMR, due_in_days=20 + 60)), "vaccination-hold", "hold"),
    Case("live vaccine today, azathioprine planned to start in 3 weeks: the pre-start rule (≥ 4 weeks)",
         record(_planned_start(21), recommendation(MMR, due_in_days=0)), "vaccination-hold", "caution"),
    Case("live vaccine today, azathioprine planned to start in 8 weeks: advised timing",
         record(_planned_start(56), recommendation(MMR, due_in_days=0)), "vaccination-hold", "not-hold"),
    Case("live vaccine today, azathioprine to start in 1 week: inside the 2 weeks to avoid (non-catch)",
         record(_planned_start(7), recommendation(MMR, due_in_days=0)), "vaccination-hold", "hold"),
    Case("VariZIG given (CVX 36, an immune globulin): not a vaccine, never 'may be live'",
         record(aza(), immunization(cc("36", CVX, "VZIG"))), "vaccination-hold", "ok"),
    Case("rabies immune globulin ordered after a bite: not a vaccine",
         record(aza(), immunization(cc("34", CVX, "RIG"), days_ago=1)), "vaccination-hold", "ok"),
    Case("nirsevimab (Beyfortus) recommended: a monoclonal antibody, not a vaccine",
         record(aza(), recommendation(cc(text="Beyfortus (nirsevimab-alip) 50 mg"))), "vaccination-hold", "ok"),
    Case("palivizumab (Synagis) monthly: a monoclonal antibody, not a vaccine",
         record(aza(), recommendation(cc("93", CVX, "RSV-IGIM"))), "vaccination-hold", "ok"),
    Case("rabies vaccine (Imovax, inactivated) still needs approval (non-catch)",
         record(aza(), recommendation(cc("175", CVX, "Rabies - IM Diploid cell culture"))),
         "vaccination-hold", "caution"),
]

CASES: list[Case] = [*WHOSE, *WHETHER, *VERSIONS, *SCRIPTS, *CONTEXT, *VACCINES]


# Waiting for the medicines issue's order reasons and drug classes: expected to fail until they land (strict).
PENDING: frozenset[str] = frozenset({
})


@pytest.mark.parametrize("case", [
    pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="rule change pending")) if c.name in PENDING else c
    for c in CASES], ids=[c.name for c in CASES])
def test_meaning(case: Case) -> None:
    status, text, _ = run(case)
    assert judge(case, status, text), f"{case.name}: got {status}, expected {case.expect} {case.says}\n{text[:600]}"


def tally() -> tuple[int, int, int]:
    wrong = unsafe_n = 0
    for case in CASES:
        status, text, _ = run(case)
        if not judge(case, status, text):
            wrong += 1
            bad = unsafe(case, status)
            unsafe_n += bad
            print(f"{'UNSAFE' if bad else 'wrong '} {case.name}: got {status}, expected {case.expect} {case.says}")
    print(f"{len(CASES)} cases: {wrong} wrong, of which {unsafe_n} unsafe")
    return len(CASES), wrong, unsafe_n


if __name__ == "__main__":
    tally()
