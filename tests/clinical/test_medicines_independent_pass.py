"""Medicines as they are really prescribed: an independent pass, written before the code was changed.

Each record below was written from the guidelines (../shared clinical-rules §1-§9) and from how real EHRs
code medicines (Epic/Cerner transaction Bundles, contained Medications and Substances, dm+d, ATC-only
European exports, free text in other languages, children's suspensions, transplant and IBD
co-medication, every shape of FHIR Dosage), then run through `check_resources` (what `azaguard check
--bundle` runs). The docstring of each record says the situation and what a clinician expects:

- "hold"            the rule must hold (act now);
- "caution"         the rule must give a caution (and not hold);
- "cannot-evaluate" the data cannot be read or trusted: cannot-evaluate (a hold is safe too), never cleared;
- "ok"              the rule must pass (no hold, no caution, no cannot-evaluate): a false alarm erodes trust;
- "not-hold"        the rule must not hold;
- "info:WORD"       the rule must not hold or caution, and must name WORD (an info-level mention).
- "verdict:WORDS"   the clinician's verdict must show WORDS.

Run on the code before issue 16 these gave the counts in ../notes/ISSUE-16.md; `unsafe` means the rule
answered ok / not-applicable where it had to hold, caution or refuse.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.resources import resource_set_from_json
from azaguard.service import CheckResult, check_resources
from tests.clinical.builders import NOW, when
from tests.clinical.test_real_world_records import PAT, RX, SCT, UCUM, cc, obs, temp, transaction
from tests.fhirparity import disagreements
from tests.words import said

Resource = dict[str, Any]
ATC = "http://www.whocc.no/atc"
CPT = "http://www.ama-assn.org/go/cpt"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
LOCAL = "urn:oid:1.2.840.114350.1.13.0.1.7.2.698288"


def _id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def dosage(value: float | None = None, unit: str = "mg", *, per_day: float | None = None,
           repeat: Resource | None = None, code: str | None = None, **extra: Any) -> Resource:
    """One Dosage: a dose (UCUM unit) and either a per-day repeat, an explicit repeat, or a timing code."""
    d: Resource = {}
    if value is not None:
        d["doseAndRate"] = [{"doseQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit}}]
    timing: Resource = {}
    if per_day is not None:
        timing["repeat"] = {"frequency": per_day, "period": 1, "periodUnit": "d"}
    if repeat is not None:
        timing["repeat"] = repeat
    if code is not None:
        timing["code"] = {"coding": [{"system": GTS, "code": code}], "text": code}
    if timing:
        d["timing"] = timing
    return d | extra


def med_order(concept: Resource | None, *dosages: Resource, status: str = "active", days_ago: float = 120,
              ref: str | None = None, rid: str | None = None, **extra: Any) -> Resource:
    r: Resource = {"resourceType": "MedicationRequest", "id": rid or _id("mr"), "status": status,
                   "intent": "order", "subject": {"reference": PAT}, "authoredOn": when(days_ago=days_ago)}
    if ref is not None:
        r["medicationReference"] = {"reference": ref}
    else:
        r["medicationCodeableConcept"] = concept
    if dosages:
        r["dosageInstruction"] = list(dosages)
    return r | extra


AZA50 = cc("197388", RX, "azathioprine 50 MG Oral Tablet")


def aza(*dosages: Resource, **kw: Any) -> Resource:
    """Azathioprine 50 mg tablets (RxNorm SCD), 50 mg twice daily unless dosages are given."""
    return med_order(AZA50, *(dosages or (dosage(50, per_day=2),)), **kw)


def weight(kg: float, days_ago: float = 10) -> Resource:
    return obs("29463-7", kg, "kg", ucum="kg", hours_ago=24 * days_ago)


def labs_recent(days_ago: float = 20) -> list[Resource]:
    """A normal CBC and LFT panel."""
    h = 24 * days_ago
    return [obs("6690-2", 6.0, ucum="10*9/L", hours_ago=h), obs("751-8", 3.5, ucum="10*9/L", hours_ago=h),
            obs("731-0", 1.5, ucum="10*9/L", hours_ago=h), obs("777-3", 250, ucum="10*9/L", hours_ago=h),
            obs("1742-6", 25, ucum="U/L", hours_ago=h), obs("1920-8", 22, ucum="U/L", hours_ago=h)]


def other(name: str, code: str | None = None, system: str = RX, *dosages: Resource, **kw: Any) -> Resource:
    kw.setdefault("days_ago", 3)
    return med_order(cc(code, system, name, text=name) if code else cc(text=name), *dosages, **kw)


def reason(code: str | None, system: str | None, text: str) -> Resource:
    return {"reasonCode": [cc(code, system, text, text=text) if code else cc(text=text)]}


def contained_med(mid: str, code: Resource | None, ingredients: list[Resource], **extra: Any) -> Resource:
    m: Resource = {"resourceType": "Medication", "id": mid, "ingredient": ingredients} | extra
    if code is not None:
        m["code"] = code
    return m


FEVER = temp(38.6)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Resource]
    rule: str
    expect: str

    @property
    def situation(self) -> str:
        return (self.build.__doc__ or "").strip()


CASES: list[Case] = []


def case(rule: str, expect: str) -> Callable[[Callable[[], Resource]], Callable[[], Resource]]:
    def add(fn: Callable[[], Resource]) -> Callable[[], Resource]:
        CASES.append(Case(fn.__name__, fn, rule, expect))
        return fn
    return add


# --- dose: every shape of Dosage ---------------------------------------------------------------


@case("dose", "caution")
def child_suspension_ml() -> Resource:
    """An 18 kg child with IBD on azathioprine 50 mg/mL oral suspension (strength only in the product name),
    2.5 mL twice daily = 250 mg/day = 13.9 mg/kg/day: far above 3 mg/kg/day."""
    susp = cc(text="Azathioprine 50 mg/mL oral suspension (compounded)")
    return transaction(med_order(susp, dosage(2.5, "mL", per_day=2)), weight(18))


@case("dose", "ok")
def child_suspension_ml_in_range() -> Resource:
    """A 20 kg child on Jayempi 10 mg/mL oral suspension, 4 mL once daily = 40 mg/day = 2 mg/kg/day: within range."""
    susp = cc(text="Jayempi 10 mg/ml Suspension zum Einnehmen")
    return transaction(med_order(susp, dosage(4, "mL", per_day=1)), weight(20))


@case("dose", "ok")
def transplant_mg_per_kg() -> Resource:
    """A 70 kg kidney-transplant patient prescribed 2 mg/kg once daily (Cerner weight-based order):
    140 mg/day = 2 mg/kg/day, within 3 mg/kg/day."""
    return transaction(aza(dosage(2, "mg/kg", per_day=1)), weight(70))


@case("dose", "caution")
def transplant_mg_per_kg_high() -> Resource:
    """A 60 kg patient prescribed 3.5 mg/kg/day in one dose: above 3 mg/kg/day."""
    return transaction(aza(dosage(3.5, "mg/kg", per_day=1)), weight(60))


@case("dose", "caution")
def tablets_ingredient_strength() -> Resource:
    """A local-coded 75 mg tablet (strength only in Medication.ingredient.strength), 2 tablets ({tbl}) three
    times a day in a 70 kg patient = 450 mg/day = 6.4 mg/kg/day."""
    med = contained_med("m75", cc("AZA75", LOCAL, "AZATHIOPRINE 75 MG TAB"), [{
        "itemCodeableConcept": cc("1256", RX, "azathioprine"),
        "strength": {"numerator": {"value": 75, "unit": "mg", "system": UCUM, "code": "mg"},
                     "denominator": {"value": 1, "unit": "tablet", "system": UCUM, "code": "{tbl}"}}}])
    return transaction(med_order(None, dosage(2, "{tbl}", per_day=3), ref="#m75", contained=[med]), weight(70))


@case("dose", "caution")
def timing_code_bid() -> Resource:
    """100 mg with timing.code BID and no repeat (GTSAbbreviation, as Epic sends SIG codes), 60 kg:
    200 mg/day = 3.33 mg/kg/day."""
    return transaction(aza(dosage(100, code="BID")), weight(60))


@case("dose", "ok")
def timing_code_qod() -> Resource:
    """150 mg every other day (QOD) in a 40 kg patient: 75 mg/day = 1.9 mg/kg/day."""
    return transaction(aza(dosage(150, code="QOD")), weight(40))


@case("dose", "ok")
def finished_titration_sequence() -> Resource:
    """A titration in one order: 50 mg daily for 4 weeks (ended 30 days ago, sequence 1), then 150 mg daily
    (sequence 2, now). 60 kg: today 150 mg/day = 2.5 mg/kg/day (summing both steps would read 3.3)."""
    step1 = dosage(50, sequence=1, timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                   "boundsPeriod": {"start": when(days_ago=58), "end": when(days_ago=30)}}})
    step2 = dosage(150, sequence=2, timing={"repeat": {"frequency": 1, "period": 1, "periodUnit": "d",
                   "boundsPeriod": {"start": when(days_ago=30)}}})
    return transaction(aza(step1, step2), weight(60))


@case("dose", "caution")
def dose_range_upper() -> Resource:
    """doseRange 50-100 mg twice daily (titrate to response), 60 kg: judge the upper bound, 200 mg/day = 3.3."""
    d = {"doseAndRate": [{"doseRange": {"low": {"value": 50, "unit": "mg", "system": UCUM, "code": "mg"},
                                        "high": {"value": 100, "unit": "mg", "system": UCUM, "code": "mg"}}}],
         "timing": {"repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}}
    return transaction(aza(d), weight(60))


@case("dose", "caution")
def when_morning_evening() -> Resource:
    """100 mg at MORN and EVE (repeat.when, no frequency), 60 kg: 200 mg/day = 3.3 mg/kg/day."""
    return transaction(aza(dosage(100, repeat={"when": ["MORN", "EVE"]})), weight(60))


@case("dose", "caution")
def time_of_day_twice() -> Resource:
    """100 mg at 08:00 and 20:00 (timeOfDay, with the frequency left at 1 per day by the EHR), 60 kg:
    two doses a day = 200 mg/day = 3.3 mg/kg/day."""
    return transaction(aza(dosage(100, repeat={"frequency": 1, "period": 1, "periodUnit": "d",
                                               "timeOfDay": ["08:00:00", "20:00:00"]})), weight(60))


@case("dose", "caution")
def frequency_max() -> Resource:
    """100 mg once or twice a day (frequency 1, frequencyMax 2), 60 kg: judge the maximum, 3.3 mg/kg/day."""
    return transaction(aza(dosage(100, repeat={"frequency": 1, "frequencyMax": 2, "period": 1,
                                               "periodUnit": "d"})), weight(60))


@case("dose", "ok")
def max_dose_per_period() -> Resource:
    """100 mg twice daily but maxDosePerPeriod 150 mg per day, 60 kg: at most 150 mg/day = 2.5 mg/kg/day."""
    d = dosage(100, per_day=2, maxDosePerPeriod={
        "numerator": {"value": 150, "unit": "mg", "system": UCUM, "code": "mg"},
        "denominator": {"value": 1, "unit": "d", "system": UCUM, "code": "d"}})
    return transaction(aza(d), weight(60))


@case("dose", "ok")
def days_of_week() -> Resource:
    """An unusual regimen: 150 mg on Monday, Wednesday and Friday (dayOfWeek), 30 kg:
    3/7 x 150 = 64 mg/day = 2.1 mg/kg/day (reading it as daily would be 5 mg/kg/day)."""
    return transaction(aza(dosage(150, repeat={"frequency": 1, "period": 1, "periodUnit": "d",
                                               "dayOfWeek": ["mon", "wed", "fri"]})), weight(30))


@case("dose", "caution")
def every_8_hours() -> Resource:
    """75 mg every 8 hours (frequency 1, period 8 h), 60 kg: 225 mg/day = 3.75 mg/kg/day."""
    return transaction(aza(dosage(75, repeat={"frequency": 1, "period": 8, "periodUnit": "h"})), weight(60))


@case("dose", "caution")
def split_concurrent_doses() -> Resource:
    """Two instructions that apply together: 50 mg in the morning and 100 mg at night, 45 kg: 150 mg/day =
    3.3 mg/kg/day."""
    return transaction(aza(dosage(50, per_day=1, sequence=1), dosage(100, per_day=1, sequence=1)), weight(45))


@case("dose", "cannot-evaluate")
def suspension_without_strength() -> Resource:
    """5 mL daily of 'azathioprine oral suspension' with no strength anywhere: cannot be turned into mg."""
    return transaction(med_order(cc(text="azathioprine oral suspension"), dosage(5, "mL", per_day=1)), weight(20))


@case("dose", "cannot-evaluate")
def text_only_dosage() -> Resource:
    """'Take as directed by your gastroenterologist': no dose, no schedule. Never a silent ok."""
    return transaction(aza({"text": "Take as directed by your gastroenterologist"}), weight(60))


@case("dose", "ok")
def same_order_twice() -> Resource:
    """Paging overlap: the same order (one id) returned twice. 100 mg twice daily, 70 kg = 2.9 mg/kg/day
    (counted twice it would read 5.7)."""
    o = aza(dosage(100, per_day=2), rid="aza-dup")
    return transaction(o, dict(o), weight(70))


@case("dose", "ok")
def finished_titration_two_orders() -> Resource:
    """Titration as two orders: 50 mg daily (completed, ended 30 days ago) then 150 mg daily (active), 60 kg:
    today 2.5 mg/kg/day."""
    first = aza(dosage(50, per_day=1), status="completed", days_ago=60,
                dispenseRequest={"validityPeriod": {"start": when(days_ago=60), "end": when(days_ago=30)}})
    return transaction(first, aza(dosage(150, per_day=1), days_ago=30), weight(60))


# --- co-medication classes ------------------------------------------------------------------------


@case("interactions", "hold")
def mycophenolate_duplicate() -> Resource:
    """Transplant: mycophenolate mofetil (CellCept, RxNorm 68149) started while azathioprine is still active:
    duplicate antimetabolite therapy — hold, confirm the switch."""
    return transaction(aza(), other("CellCept 500 mg tablet", "68149"))


@case("interactions", "hold")
def methotrexate_atc() -> Resource:
    """A European export: methotrexate coded by ATC L04AX03 only, weekly: a second antimetabolite — hold."""
    return transaction(aza(), other("Methotrexat 15 mg wöchentlich", "L04AX03", ATC))


@case("interactions", "hold")
def mercaptopurine_brand() -> Resource:
    """Purixan (mercaptopurine suspension) by brand name only: a second thiopurine — hold."""
    return transaction(aza(), other("Purixan 20 mg/mL oral suspension"))


@case("interactions", "caution")
def clozapine() -> Resource:
    """Clozapine (Clozaril) for schizophrenia: agranulocytosis risk added to azathioprine's — at least caution."""
    return transaction(aza(), other("Clozaril 100 mg tablet", "2626"))


@case("interactions", "caution")
def tofacitinib() -> Resource:
    """Tofacitinib (Xeljanz), a JAK inhibitor: label advises against potent immunosuppressants — caution."""
    return transaction(aza(), other("Xeljanz 5 mg tablet"))


@case("interactions", "caution")
def upadacitinib_atc_class() -> Resource:
    """Upadacitinib coded by ATC L04AF03 (the JAK class L04AF): caution."""
    return transaction(aza(), other("Rinvoq 15 mg", "L04AF03", ATC))


@case("interactions", "caution")
def valganciclovir_myelosuppression() -> Resource:
    """Valganciclovir (Valcyte) after transplant: myelosuppression with azathioprine — caution."""
    return transaction(aza(), other("Valcyte 450 mg tablet", "275891"))


@case("interactions", "caution")
def mesalazine() -> Resource:
    """IBD: mesalazine (Pentasa, ATC A07EC02) raises 6-TGN — caution, monitor counts."""
    return transaction(aza(), other("Pentasa 1 g prolonged-release", "A07EC02", ATC))


@case("interactions", "caution")
def mesalamine_us_name() -> Resource:
    """The US name mesalamine (Lialda) as text: caution."""
    return transaction(aza(), other("mesalamine 1.2 g DR tablet"))


@case("interactions", "caution")
def warfarin() -> Resource:
    """Warfarin (Coumadin, RxNorm 11289): azathioprine reduces its effect — caution, monitor INR."""
    return transaction(aza(), other("Coumadin 5 mg tablet", "11289"))


@case("interactions", "caution")
def cyclophosphamide() -> Resource:
    """Cytotoxic chemotherapy: cyclophosphamide (ATC L01AA01): additive myelosuppression — caution."""
    return transaction(aza(), other("Cyclophosphamide 50 mg", "L01AA01", ATC))


@case("interactions", "caution")
def chloramphenicol_iv() -> Resource:
    """Systemic chloramphenicol 1 g IV (myelosuppression): caution."""
    return transaction(aza(), other("chloramphenicol sodium succinate 1 g injection"))


@case("interactions", "not-hold")
def chloramphenicol_eye_drops() -> Resource:
    """Chloramphenicol 0.5% eye drops: not systemic, not a myelosuppression interaction — no hold."""
    return transaction(aza(), other("Chloramphenicol 0.5% eye drops"))


@case("interactions", "caution")
def deferiprone() -> Resource:
    """Deferiprone (Ferriprox) for thalassaemia iron overload: agranulocytosis — at least caution."""
    return transaction(aza(), other("Ferriprox 500 mg"))


@case("interactions", "info:infliximab")
def infliximab_combination() -> Resource:
    """IBD combination therapy: infliximab (Remicade) with azathioprine is standard — info, never a hold."""
    return transaction(aza(), other("Remicade 100 mg infusion", "191831"))


@case("interactions", "info:tacrolimus")
def tacrolimus_combination() -> Resource:
    """Transplant triple therapy: tacrolimus (Prograf) with azathioprine — info (infection risk), no hold."""
    return transaction(aza(), other("Prograf 1 mg capsule", "42316"))


@case("interactions", "caution")
def allopurinol_deliberate_low_dose() -> Resource:
    """IBD low-dose allopurinol co-therapy: allopurinol 100 mg with azathioprine cut to 25 mg daily (timing.code
    QD), 70 kg = 0.36 mg/kg/day (≤ ⅓ of the usual dose) — caution (monitor), not hold."""
    return transaction(aza(dosage(25, code="QD")), other("allopurinol 100 MG Oral Tablet", "197319"), weight(70))


@case("interactions", "hold")
def allopurinol_full_dose() -> Resource:
    """Allopurinol with azathioprine 100 mg twice daily (timing.code BID), 70 kg: not reduced — hold."""
    return transaction(aza(dosage(100, code="BID")), other("Zyloric 300 mg"), weight(70))


@case("interactions", "hold")
def febuxostat_german() -> Resource:
    """A German record: Adenuric 80 mg (febuxostat): contraindicated — hold."""
    return transaction(aza(), other("Adenuric 80 mg Filmtabletten"))


@case("interactions", "hold")
def allopurinol_via_substance_reference() -> Resource:
    """A combination product (allopurinol + lesinurad, Duzallo) as a contained Medication whose ingredients
    point at contained Substances by itemReference: allopurinol counts — hold (dose not reduced)."""
    sub1 = {"resourceType": "Substance", "id": "s1", "code": cc("519", RX, "allopurinol")}
    sub2 = {"resourceType": "Substance", "id": "s2", "code": cc(text="lesinurad")}
    med = contained_med("duz", cc(text="Duzallo 300/200"), [{"itemReference": {"reference": "#s1"}},
                                                              {"itemReference": {"reference": "#s2"}}])
    return transaction(aza(), med_order(None, ref="#duz", contained=[med, sub1, sub2], authoredOn=when(days_ago=3)))


@case("interactions", "caution")
def ace_inhibitor_atc() -> Resource:
    """Ramipril coded ATC C09AA05: leukopenia/anaemia — caution."""
    return transaction(aza(), other("Ramipril 5 mg", "C09AA05", ATC))


@case("interactions", "caution")
def trimethoprim_alone() -> Resource:
    """Trimethoprim alone (Monotrim 200 mg at night): like co-trimoxazole — caution."""
    return transaction(aza(), other("Monotrim 200 mg tablets"))


# --- prophylaxis is not infection ---------------------------------------------------------------


@case("infection-hold", "caution")
def cmv_prophylaxis_valganciclovir() -> Resource:
    """Kidney transplant: valganciclovir 900 mg once daily, reason 'CMV prophylaxis' (SNOMED prophylaxis):
    caution, not a hold."""
    return transaction(aza(), other("valganciclovir 450 MG Oral Tablet", "275891", RX, dosage(900, per_day=1),
                                    **reason("169443000", SCT, "CMV prophylaxis")), temp(36.8))


@case("infection-hold", "hold")
def cmv_treatment_valganciclovir() -> Resource:
    """Valganciclovir 900 mg twice daily, no reason: the treatment dose — hold as today."""
    return transaction(aza(), other("valganciclovir 450 MG Oral Tablet", "275891", RX, dosage(900, per_day=2)),
                       temp(36.8))


@case("infection-hold", "caution")
def pjp_prophylaxis_three_times_weekly() -> Resource:
    """PJP prophylaxis: co-trimoxazole 960 mg (1 DS tablet) on Mon/Wed/Fri, no reason coded: the regimen
    says prophylaxis — caution."""
    return transaction(aza(), other("sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet", "198335", RX,
                                    dosage(1, "{tbl}", repeat={"frequency": 1, "period": 1, "periodUnit": "d",
                                                               "dayOfWeek": ["mon", "wed", "fri"]})),
                       temp(36.8))


@case("infection-hold", "hold")
def cotrimoxazole_treatment() -> Resource:
    """Co-trimoxazole 2 DS tablets twice daily, no reason: a treatment dose — hold."""
    return transaction(aza(), other("sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet", "198335", RX,
                                    dosage(2, "{tbl}", per_day=2)), temp(36.8))


@case("infection-hold", "caution")
def latent_tb_isoniazid() -> Resource:
    """Latent TB (ICD-10-CM Z22.7) treated with isoniazid 300 mg daily before anti-TNF: caution."""
    return transaction(aza(), other("isoniazid 300 MG Oral Tablet", "6038", RX, dosage(300, per_day=1),
                                    **reason("Z22.7", ICD10CM, "Latent tuberculosis")), temp(36.8))


@case("infection-hold", "caution")
def hbv_prophylaxis_entecavir() -> Resource:
    """HBsAg carrier on entecavir 0.5 mg daily as prophylaxis during immunosuppression: caution."""
    return transaction(aza(), other("entecavir 0.5 MG Oral Tablet", "306266", RX, dosage(0.5, per_day=1),
                                    **reason(None, None, "Hepatitis B reactivation prophylaxis")), temp(36.8))


@case("infection-hold", "caution")
def hsv_suppression() -> Resource:
    """Aciclovir 400 mg twice daily for HSV suppression: caution."""
    return transaction(aza(), other("Aciclovir 400 mg tablets", None, RX, dosage(400, per_day=2),
                                    **reason(None, None, "HSV suppression")), temp(36.8))


@case("infection-hold", "caution")
def uti_prophylaxis_nightly() -> Resource:
    """Nitrofurantoin 50 mg at night (when HS) for recurrent UTI prophylaxis: caution."""
    return transaction(aza(), other("Nitrofurantoin 50 mg capsules", None, RX,
                                    dosage(50, repeat={"when": ["HS"]}),
                                    **reason(None, None, "prophylaxis of recurrent urinary tract infection")),
                       temp(36.8))


@case("infection-hold", "caution")
def single_dose_before_dental_procedure() -> Resource:
    """Amoxicillin 2 g once (count 1) an hour before a dental extraction: caution."""
    return transaction(aza(), other("amoxicillin 500 MG Oral Capsule", "308191", RX,
                                    dosage(2000, repeat={"count": 1}),
                                    **reason(None, None, "antibiotic prophylaxis before dental procedure")),
                       temp(36.8))


@case("infection-hold", "hold")
def prophylaxis_reason_but_fever() -> Resource:
    """Co-trimoxazole prophylaxis, but a fever of 38.6 °C today: the fever holds."""
    return transaction(aza(), other("Bactrim DS", None, RX, dosage(1, "{tbl}", per_day=1),
                                    **reason(None, None, "PJP prophylaxis")), FEVER)


@case("infection-hold", "not-hold")
def eye_drops_in_other_language() -> Resource:
    """'Tobramycine collyre' (French eye drops): the route is only in the product name — no hold."""
    return transaction(aza(), other("Tobramycine 0,3 % collyre en solution"), temp(36.8))


@case("infection-hold", "not-hold")
def augentropfen() -> Resource:
    """'Ciprofloxacin 0,3 % Augentropfen' (German eye drops): no hold."""
    return transaction(aza(), other("Ciprofloxacin 0,3 % Augentropfen"), temp(36.8))


# --- recognition that fails safe -----------------------------------------------------------------


@case("infection-hold", "hold")
def polish_inn() -> Resource:
    """A Polish record: 'Azatiopryna 50 mg tabletki' (text only) and fever 38.6 °C: hold."""
    return transaction(med_order(cc(text="Azatiopryna 50 mg tabletki"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "hold")
def finnish_inn() -> Resource:
    """A Finnish record: 'Atsatiopriini 50 mg' / 'azatiopriini' and fever: hold."""
    return transaction(med_order(cc(text="Azatiopriini 50 mg tabletti"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "hold")
def hungarian_inn() -> Resource:
    """Hungarian/Norwegian 'Azatioprin 50 mg' and fever: hold."""
    return transaction(med_order(cc(text="Azatioprin 50 mg tabletta"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "hold")
def german_brand_zytrim() -> Resource:
    """A German brand: 'Zytrim 50 mg Filmtabletten' (azathioprine) and fever: hold."""
    return transaction(med_order(cc(text="Zytrim 50 mg Filmtabletten"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "cannot-evaluate")
def typo_azathiorpine() -> Resource:
    """A typo in a free-text order: 'azathiorpine 50mg' and fever: may be azathioprine — never not-applicable."""
    return transaction(med_order(cc(text="azathiorpine 50mg"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "cannot-evaluate")
def brand_typo_imuren() -> Resource:
    """A misspelt brand 'Imuren 50' and fever: may be azathioprine."""
    return transaction(med_order(cc(text="Imuren 50"), dosage(50, per_day=2)), FEVER)


@case("infection-hold", "not-applicable")
def azithromycin_is_not_a_near_miss() -> Resource:
    """Azithromycin only, no azathioprine: the near-miss matcher must not call it azathioprine."""
    return transaction(other("Azithromycin 250 mg"), FEVER)


@case("infection-hold", "hold")
def substance_item_reference() -> Resource:
    """A compounded product: Medication 'Compounded oral suspension' whose ingredient is an itemReference to a
    contained Substance coded SNOMED 372574004 (azathioprine); fever: hold."""
    sub = {"resourceType": "Substance", "id": "sub", "code": cc("372574004", SCT, "Azathioprine")}
    med = contained_med("comp", cc(text="Compounded oral suspension"), [{"itemReference": {"reference": "#sub"}}])
    return transaction(med_order(None, dosage(50, per_day=2), ref="#comp", contained=[med, sub]), FEVER)


@case("infection-hold", "hold")
def bundled_substance_reference() -> Resource:
    """The Medication and its Substance as separate Bundle entries (urn:uuid): azathioprine; fever: hold."""
    sub_url, med_url = f"urn:uuid:{uuid.uuid4()}", f"urn:uuid:{uuid.uuid4()}"
    sub = {"resourceType": "Substance", "id": "s9", "code": cc("1256", RX, "azathioprine"), "_fullUrl": sub_url}
    med = contained_med("m9", cc(text="Pharmacy compound"), [{"itemReference": {"reference": sub_url}}])
    med["_fullUrl"] = med_url
    return transaction(sub, med, med_order(None, dosage(50, per_day=2), ref=med_url), FEVER)


@case("infection-hold", "verdict:could not identify")
def unidentified_medication_listed() -> Resource:
    """A local-coded medication 'Xyzzolan 10 mg' beside azathioprine: the verdict lists it as not identified."""
    return transaction(aza(), other("Xyzzolan 10 mg", "X-99", LOCAL), temp(36.8))


# --- vaccines -----------------------------------------------------------------------------------


@case("vaccination-hold", "hold")
def yellow_fever_atc_only() -> Resource:
    """A European travel-clinic order: yellow fever vaccine coded ATC J07BL01, text 'Gelbfieber-Impfstoff': hold."""
    return transaction(aza(), other("Gelbfieber-Impfstoff", "J07BL01", ATC, days_ago=0))


@case("vaccination-hold", "hold")
def mmr_atc_only() -> Resource:
    """MMR coded ATC J07BD52 only: live — hold."""
    return transaction(aza(), other("Masern-Mumps-Röteln", "J07BD52", ATC, days_ago=0))


@case("vaccination-hold", "hold")
def italian_live_words() -> Resource:
    """An Italian order 'vaccino vivo attenuato' (no code): live — hold."""
    return transaction(aza(), other("Vaccino vivo attenuato (polvere e solvente)", days_ago=0))


@case("vaccination-hold", "hold")
def french_live_words() -> Resource:
    """A French order 'vaccin vivant atténué' (no code): live — hold."""
    return transaction(aza(), other("Vaccin vivant atténué, poudre et solvant", days_ago=0))


@case("vaccination-hold", "caution")
def mmr_given_as_procedure() -> Resource:
    """Claims data: MMR given 10 days ago recorded as a Procedure (CPT 90707) while on azathioprine:
    reported (caution: watch for vaccine-strain infection)."""
    proc = {"resourceType": "Procedure", "id": _id("pr"), "status": "completed", "subject": {"reference": PAT},
            "code": cc("90707", CPT, "MMR vaccine subcutaneous"), "performedDateTime": when(days_ago=10)}
    return transaction(aza(), proc)


@case("vaccination-hold", "caution")
def unclassifiable_vaccine_order() -> Resource:
    """A vaccine order coded ATC J07 with an unknown product ('Impfstoff XY'): never 'no vaccine planned'."""
    return transaction(aza(), other("Impfstoff XY", "J07XX99", ATC, days_ago=0))


@case("vaccination-hold", "not-hold")
def tetanus_atc() -> Resource:
    """Tetanus toxoid coded ATC J07AM01: not live — no hold."""
    return transaction(aza(), other("Tetanus-Adsorbat-Impfstoff", "J07AM01", ATC, days_ago=0))


# --- order history ------------------------------------------------------------------------------


@case("monitoring-schedule", "ok")
def renewal_is_not_a_new_start() -> Resource:
    """Azathioprine for 2 years; the order was renewed 5 days ago (the old one completed, priorPrescription
    points at it). Bloods 20 days ago: monthly monitoring is up to date; no first-month weekly schedule."""
    old = aza(status="completed", days_ago=400, rid="aza-old",
              dispenseRequest={"validityPeriod": {"start": when(days_ago=400), "end": when(days_ago=5)}})
    new = aza(days_ago=5, priorPrescription={"reference": "MedicationRequest/aza-old"})
    return transaction(old, new, *labs_recent(20))


@case("monitoring-schedule", "ok")
def renewal_without_link() -> Resource:
    """The same renewal without priorPrescription (many EHRs do not link): the previous azathioprine order ended
    the day the new one began — continuous therapy, not a new start."""
    old = aza(status="completed", days_ago=400,
              dispenseRequest={"validityPeriod": {"start": when(days_ago=400), "end": when(days_ago=5)}})
    return transaction(old, aza(days_ago=5), *labs_recent(20))


# --- running ---------------------------------------------------------------------------------------


def run(c: Case) -> CheckResult:
    return check_resources(resource_set_from_json(c.build()), mappings=load_mappings(), now=NOW)


def judge(c: Case, result: CheckResult) -> tuple[bool, bool, str]:
    """(right, unsafe, what came): unsafe = ok/not-applicable where a hold, caution or refusal was due."""
    found = [f for f in result.findings if f.rule == c.rule]
    got = {str(f.status) for f in found}
    came = f"{sorted(got)}: " + " | ".join(said(f).summary for f in found)
    alarm = {"hold", "caution", "cannot-evaluate"}
    if c.expect.startswith("verdict:"):
        want = c.expect.split(":", 1)[1].lower()
        v = result.verdict
        text = " ".join([v.headline, v.basis, *(a.summary + " " + a.detail for a in v.actions)]).lower() if v else ""
        return want in text, False, came + (f" | verdict basis: {v.basis}" if v else "")
    if c.expect.startswith("info:"):
        word = c.expect.split(":", 1)[1].lower()
        named = any(word in (said(f).summary + said(f).detail).lower() for f in found)
        return bool(found) and not (got & {"hold", "caution"}) and named, False, came
    if c.expect == "hold":
        return "hold" in got, not (got & alarm), came
    if c.expect == "caution":
        return "caution" in got and "hold" not in got, not (got & alarm), came
    if c.expect == "cannot-evaluate":
        return bool(got & {"cannot-evaluate", "hold"}), not (got & alarm), came
    if c.expect == "ok":
        return bool(found) and not (got & alarm), False, came
    if c.expect == "not-hold":
        return bool(found) and "hold" not in got, False, came
    if c.expect == "not-applicable":
        return got == {"not-applicable"}, False, came
    raise AssertionError(c.expect)


# Records the code does not yet answer right (issue 16 in progress): each must fail until fixed (strict).
PENDING: frozenset[str] = frozenset()


@pytest.mark.parametrize("c", [pytest.param(c, marks=pytest.mark.xfail(strict=True, reason="issue 16 pending"))
                               if c.name in PENDING else c for c in CASES], ids=[c.name for c in CASES])
def test_medicine_record(c: Case) -> None:
    right, _unsafe, came = judge(c, run(c))
    assert right, f"{c.situation}\nexpected {c.expect}; got {came}"


def test_the_reader_accepts_and_refuses_these_records_as_fhir_resources_does() -> None:
    """Every element the medicines read (Dosage, ingredients, Substances, reasons) is accepted or refused alike by
    the record's reader (fhirshapes) and by fhir.resources."""
    for c in CASES:
        bundle = c.build()
        assert disagreements(resource_set_from_json(bundle).resources) == [], c.name


if __name__ == "__main__":  # python -m tests.clinical.test_medicines_independent_pass: the before/after count
    wrong = unsafe = 0
    for c in CASES:
        try:
            right, bad, came = judge(c, run(c))
        except Exception as exc:
            right, bad, came = False, False, f"error {exc!r}"
        if not right:
            wrong += 1
            unsafe += bad
            print(f"{'UNSAFE' if bad else 'wrong '} {c.name}: expected {c.expect}; got {came[:200]}")
    print(f"{len(CASES)} records: {wrong} wrong, of which {unsafe} unsafe")
