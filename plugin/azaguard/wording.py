"""Facts → words: the one wording layer every surface renders.

A finding carries facts (azaguard.findings: trigger, therapy, subject, reason, advice, evidence with
roles and quantities). `Words(now, mappings, tz, style, audience).action(finding)` turns an actionable
finding into an Action (verb, object, reason, advice, summary, detail, evidence rows, to-do) through
one Template per rule and finding code in the audience's table. The page, CLI text and JSON,
DetectedIssue/Flag, CDS cards and the scan report all show that Action, so they say the same thing.

Tables: TABLES[audience]["rule/code"] → Template, with fallbacks "rule/*<status>", "rule/*",
"*/<status>". Placeholders (str.format) are the finding's facts in words: {subject}, {concept},
{value} (trigger quantity in display units), {when} / {on_when} (trigger instant in the date style),
{therapy} (the therapy state as a reason), {stopped} (its stop date), {reason}, {advice}, {checks}
(registry), {need} (the first missing item), {statement} (the rule's own one-line summary), {taking}
(a drug as recorded: ordered / taking / dispensed / given), {wait} (post-stop live-vaccine wait).
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Literal, Protocol

from msgspec import Struct

from azaguard.display import cite, format_date, format_day, format_moment, format_quantity
from azaguard.drugnames import clinical_name
from azaguard.fhirtypes import dates
from azaguard.findings import RULE_IDS, SUMMARY_MAX_CHARS, Evidence, Finding, Quantity, RuleId, Severity, Status
from azaguard.mappings import Mappings
from azaguard.registry import SPEC

if TYPE_CHECKING:  # types only: nothing to define at run time

    class _Named(Protocol):
        @property
        def name(self) -> str: ...

    class PatientContent(Protocol):
        """What the patient audience reads of patient.json (patient.content.PatientContent, validated there:
        the patient/ package sits above this module)."""

        @property
        def contact(self) -> str: ...
        @property
        def checks(self) -> Mapping[str, str]: ...
        @property
        def fallbacks(self) -> Mapping[str, str]: ...
        @property
        def tests(self) -> Mapping[str, _Named]: ...

Audience = Literal["clinician", "patient"]
Urgency = Literal["now", "today", "before", "week", "next-visit", "info"]  # the patient's (patient.json urgencies)
DateStyle = Literal["relative", "absolute"]  # "today 06:00" on screens; "20 Nov 2026 06:00" in the chart


class Template(Struct, frozen=True, kw_only=True):
    """The clinician's words for a finding: the action (verb, object, reason, advice) when it needs one; the
    rule's one-line statement (`line`) when it needs none (ok, does not apply); and the explanation
    (`detail`; without one, the reason and the source the finding rests on)."""

    verb: str = ""
    object: str = ""
    reason: str = ""
    advice: str | None = None
    line: str | None = None
    detail: str | None = None


class EvidenceRow(Struct, frozen=True, kw_only=True):
    """One line of an evidence table: what, the value as a clinician reads it, when, and where from."""

    what: str
    value: str
    date: str
    reference: str  # "Observation/123": the page links it, never shows it as text
    role: str = "context"


class Action(Struct, frozen=True, kw_only=True):
    """One thing to do (or that cannot yet be checked), the same on every surface."""

    rule: RuleId
    code: str
    status: Status
    severity: Severity
    verb: str  # "Hold", "Do not give", "Cannot check", "Order", "Review"
    object: str  # "azathioprine", "the MMR vaccine (live)", "the dose"
    reason: str  # "fever 38.6 °C today 06:00"
    advice: str | None  # "contact the prescriber"
    summary: str  # one sentence < 140 characters: "Hold azathioprine — fever 38.6 °C today 06:00; contact …"
    detail: str  # plain language, the source named as clinicians cite it
    evidence: tuple[EvidenceRow, ...] = ()
    todo: tuple[str, ...] = ()  # the missing data, as things to record
    implicated: tuple[str, ...] = ()


_T = Template
_LAB_DETAIL = "{Concept} {value} {on_when}: {reason}. {advice_sentence} {checked_sentence}"
_LAB_HOLD = _T(verb="Hold", object="azathioprine", reason="{concept} {value} {on_when}, {reason}",
               advice="discuss with the specialist", detail=_LAB_DETAIL)
_LAB_REVIEW = _T(verb="Review", object="azathioprine", reason="{concept} {value} {on_when}, {reason}",
                 detail=_LAB_DETAIL)

CLINICIAN: dict[str, Template] = {
    # Any rule that cannot check names what it cannot check and what is needed.
    "*/cannot-evaluate": _T(verb="Cannot check", object="{checks}", reason="{need}",
                            detail="{Reason}. Until this is resolved, azaguard cannot check {checks}."),
    "*/hold": _T(verb="Hold", object="azathioprine", reason="{reason}"),
    "*/caution": _T(verb="Review", object="azathioprine", reason="{reason}"),
    "*/ok": _T(line="Nothing found that needs action ({checks})", detail="Checked: {checked}."),
    "*/not-applicable": _T(line="Does not apply: {reason}", detail="{Reason}."),
    # --- every rule: whether it applies (rules.common.applicability), and a check that failed
    "*/patient-deceased": _T(
        line="The patient is deceased{dated}: no checks apply",
        detail="The record says the patient died{dated} (Patient.deceased), so azathioprine safety checks do not "
               "apply."),
    "*/medication-unknown": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="At least one medication record could not be identified or has a status the rules do not expect, "
               "so azathioprine therapy can be neither confirmed nor excluded: {subject}."),
    "*/not-current": _T(
        line="Azathioprine recently stopped: this rule applies to current therapy",
        detail="Azathioprine was stopped; this rule checks patients currently taking it. The vaccination rule "
               "still applies after stopping."),
    "*/not-on-azathioprine": _T(
        line="Not on azathioprine (no current or recent order)",
        detail="No active, on-hold, or recently stopped azathioprine order is on the record."),
    "*/no-result": _T(verb="Cannot check", object="{checks}", reason="the check returned no result",
                      detail="The check returned no result, so it cannot be relied on; check by hand."),
    "*/internal-error": _T(verb="Cannot check", object="{checks}", reason="the check failed on this record",
                           detail="The check failed on this record ({subject}); check by hand."),
    "*/data-unread": _T(
        verb="Cannot check", object="{checks}", reason="part of the record could not be read",
        detail="The server could not answer part of the request ({subject}); what it would have returned may "
               "change this check. Fetch the record again."),
    # --- vaccination-hold
    "vaccination-hold/live-vaccine-planned": _T(
        verb="Do not give", object="the {subject} vaccine (live)", reason="{therapy}",
        advice="discuss with the prescriber",
        detail="{exposure} Live vaccines are contraindicated during azathioprine therapy and for {wait} after "
               "stopping it ({source}). Do not give the vaccine; discuss with the prescriber."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-after-wait": _T(
        verb="Ask the prescriber before", object="the {subject} vaccine (live)",
        reason="azathioprine stopped {stopped}, more than {wait} ago",
        detail="{exposure} The {wait} wait after stopping azathioprine has passed ({source}): confirm with the "
               "prescriber before the live vaccine."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-stop-date-unknown": _T(
        verb="Confirm the azathioprine stop date before", object="the {subject} vaccine (live)",
        reason="live vaccines need {wait} after stopping",
        detail="{exposure} The stop date is not recorded, so the {wait} wait after stopping ({source}) cannot "
               "be checked. Confirm the stop date before giving a live vaccine."
               " {checked_sentence}"),
    "vaccination-hold/ambiguous-vaccine-planned": _T(
        verb="Confirm the product before", object="the {subject} vaccine",
        reason="it may be live, and live vaccines are contraindicated on azathioprine",
        advice="ask the prescriber",
        detail="{exposure} The planned vaccine ({subject}) could not be classified as live or not live (see the "
               "evidence). Live vaccines are contraindicated on azathioprine: confirm the exact product with the "
               "prescriber before it is given. This alert is never cleared automatically."
               " {checked_sentence}"),
    "vaccination-hold/inactivated-vaccine-planned": _T(
        verb="Ask the prescriber before", object="the {subject} vaccine",
        reason="not live, but the response may be reduced on azathioprine",
        detail="{exposure} Non-live vaccines may be given on azathioprine, but only with the prescriber's "
               "approval, and the immune response may be reduced."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-given": _T(
        verb="Tell the prescriber about", object="the {subject} vaccine (live)",
        reason="given {when} during azathioprine therapy", advice="watch for vaccine-strain infection",
        detail="A live vaccine ({subject}) was recorded as given {when}, while the patient was on azathioprine. "
               "Notify the prescriber and watch for infection by the vaccine strain."
               " {checked_sentence}"),
    "vaccination-hold/unidentified-vaccine-given": _T(
        verb="Identify", object="the vaccine given {when}",
        reason="it was given during azathioprine therapy and may have been live",
        detail="A vaccine dose ({subject}) was recorded while the patient was on azathioprine, but the product "
               "could not be classified as live or not live (see the evidence). If it was a live vaccine, notify "
               "the prescriber and watch for infection by the vaccine strain. This alert is never cleared "
               "automatically."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-before-planned-start": _T(
        verb="Give", object="the {subject} vaccine (live) before azathioprine starts", reason="{reason}",
        detail="The live vaccine ({subject}) is {reason}, within the advice to give live vaccines before starting "
               "azathioprine ({source}): do not delay the vaccine, or delay the start."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-close-to-planned-start": _T(
        verb="Review the timing of", object="the {subject} vaccine (live)", reason="{reason}",
        advice="delay the start or discuss with the prescriber",
        detail="The live vaccine ({subject}) is planned {reason} ({source}): delay the start, or discuss the "
               "timing with the prescriber."
               " {checked_sentence}"),
    "vaccination-hold/live-vaccine-after-planned-stop": _T(
        verb="Confirm azathioprine has stopped before", object="the {subject} vaccine (live)", reason="{reason}",
        detail="The live vaccine ({subject}) is {reason} ({source}). Give it only if azathioprine has really "
               "stopped by then and was not restarted."
               " {checked_sentence}"),
    "vaccination-hold/started-soon-after-live-vaccine": _T(
        verb="Watch", object="for vaccine-strain infection", reason="{reason}",
        detail="{Reason} ({source}). Watch for infection by the vaccine strain."),
    "vaccination-hold/order-unidentified": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}: these open orders name no product azaguard can identify, so a live vaccine among them "
               "cannot be ruled out: {subject}. Check the product before any vaccination."),
    "vaccination-hold/vaccine-record-unreadable": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}: they could hold a planned, ordered or given vaccine: {subject}. Check them by hand "
               "before any vaccination."),
    "vaccination-hold/no-vaccine-planned": _T(
        line="No vaccine planned or ordered in the record",
        detail="No due/overdue immunization recommendation and no open vaccine order (MedicationRequest or "
               "ServiceRequest, however coded) is on the record. Only recorded plans were checked: a vaccine "
               "planned elsewhere (pharmacy, travel clinic) is not visible here, so the patient must still ask the "
               "prescriber before any vaccination."),
    # --- infection-hold
    "infection-hold/fever": _T(
        verb="Hold", object="azathioprine", reason="fever {value} {when}", advice="contact the prescriber",
        detail="Temperature {value} {on_when} ({reason}). Fever on azathioprine may signal a serious infection: "
               "consider holding azathioprine; contact the prescriber."),
    "infection-hold/neutropenic-fever": _T(
        verb="Hold", object="azathioprine", reason="fever {value} {when} with low neutrophils",
        advice="urgent assessment now",
        detail="Temperature {value} {on_when} ({reason}). Fever with neutropenia is a medical emergency on "
               "azathioprine: consider holding azathioprine immediately, contact the prescriber and arrange urgent "
               "assessment."),
    "infection-hold/febrile-neutropenia-coded": _T(
        verb="Hold", object="azathioprine", reason="febrile neutropenia on record ({subject})",
        advice="urgent assessment now",
        detail="Neutropenia and fever are both current on the record ({subject}): fever with neutropenia is a "
               "medical emergency on azathioprine: consider holding azathioprine immediately, contact the "
               "prescriber and arrange urgent assessment."),
    "infection-hold/active-infection": _T(
        verb="Hold", object="azathioprine", reason="{subject} recorded {when}", advice="contact the prescriber",
        detail="A current infection ({subject}) is on the record while the patient is on azathioprine: consider "
               "holding azathioprine; contact the prescriber. Stop during severe infection (IV therapy or "
               "hospital admission) until recovery (BSR 2025)."),
    "infection-hold/temperature-unreadable": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}; each of them might show a fever: {subject}. Check the temperature by hand."),
    "infection-hold/no-temperature": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}, so fever cannot be excluded. Ask about fever, sweats or chills, or record a "
               "temperature."),
    "infection-hold/condition-undated": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}: whether the infection is current cannot be told: {subject}. Confirm with the "
               "clinician."),
    "infection-hold/record-unreadable": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Reason}: they might show an infection or an anti-infective treatment but could not be read, "
               "identified or placed in time: {subject}."),
    "infection-hold/no-infection-signs": _T(
        line="No fever (latest {value}), no active infection or anti-infective on record",
        detail="Temperatures in the last {fever_window} are below {fever_threshold}; no active infection is on "
               "the problem list and no systemic anti-infective is ordered ({reason}). Symptoms reported outside "
               "the record (sweats, chills, sore throat) still need the prescriber. {advice_sentence}"),
    # issue 17: what the leaflets tell patients to report, and what the lab already knows
    "infection-hold/warning-signs": _T(
        verb="Assess", object="for infection before the next dose",
        reason="warning sign of infection: {subject}, recorded {when}",
        detail="The leaflets tell patients on azathioprine to report these at once: {checked}. Assess for infection "
               "before the next dose; hold and contact the prescriber if infection is confirmed."),
    "infection-hold/warning-sign-neutropenic": _T(
        verb="Hold", object="azathioprine", reason="warning sign of infection ({subject}, {when}) with low neutrophils",
        advice="assess today",
        detail="{Checked}. A sign of infection in a patient with low neutrophils on azathioprine: consider holding "
               "azathioprine; contact the prescriber, and assess today."),
    "infection-hold/leaflet-fever": _T(
        verb="Recheck", object="the temperature", reason="{value} {when} is above the leaflet's 100 °F",
        detail="Temperature {value} {on_when}: {reason}. Recheck the temperature and ask about other signs of "
               "infection."),
    "infection-hold/lab-proven-infection": _T(
        verb="Hold", object="azathioprine", reason="{subject} shown by the lab {when}",
        advice="contact the prescriber",
        detail="A laboratory result shows a current infection while the patient is on azathioprine: {checked}. "
               "Consider holding azathioprine; contact the prescriber."),
    "infection-hold/hbv-reactivation": _T(
        verb="Hold", object="azathioprine", reason="hepatitis B reactivation: HBV DNA {value} {when}",
        advice="refer to hepatology",
        detail="HBV DNA has risen on azathioprine: {checked}: consider holding azathioprine; contact the prescriber, "
               "refer to hepatology for antiviral treatment and check liver tests."),
    "infection-hold/viraemia": _T(verb="Refer", object="to hepatology", reason="{subject} detected {when}",
        detail="Viral nucleic acid detected on azathioprine: {checked}. With no earlier result showing a rise this "
               "is not called reactivation: compare with the baseline, check liver tests and refer to hepatology."),
    "blood-counts/side-effect-reported": _T(verb="Check", object="{subject}", reason="{reason} {when}",
        detail="{Checked}."),
    "liver/side-effect-reported": _T(verb="Check", object="{subject}", reason="{reason} {when}",
        detail="{Checked}."),
    # issue 24: a diagnosis in a script the tables cannot read may be an infection (never silence)
    "infection-hold/diagnosis-unidentified": _T(
        verb="Identify", object="the diagnosis {subject}", reason="it could not be read and may be an infection",
        advice="check before the next dose",
        detail="{Checked}. Whether it is an infection could not be checked: read it, and check for infection before "
               "the next dose."),
    "vaccination-hold/live-vaccine-given-after-stop": _T(
        verb="Tell the prescriber about", object="the {subject} vaccine (live)", reason="given {when}, {reason}",
        advice="watch for vaccine-strain infection",
        detail="A live vaccine ({subject}) was recorded as given {when}, {reason} after stopping ({source}). "
               "Notify the prescriber and watch for infection by the vaccine strain."
               " {checked_sentence}"),
    "pancreatitis/pancreatitis-diagnosed": _T(
        verb="Stop", object="azathioprine", reason="acute pancreatitis recorded {when}",
        advice="contact the prescriber",
        detail="Acute pancreatitis ({subject}) is on the record while the patient is on azathioprine; azathioprine "
               "can cause it, and the label says to stop it: contact the prescriber. Do not restart without "
               "specialist advice."),
    "pancreatitis/lipase-high": _T(
        verb="Stop", object="azathioprine", reason="lipase {value} {when}, {reason}", advice="contact the prescriber",
        detail="Lipase {value} {on_when} is {reason}, which suggests acute pancreatitis on azathioprine: stop "
               "azathioprine, contact the prescriber and assess for pancreatitis."
               " {checked_sentence}"),
    "infection-hold/anti-infective": _T(
        verb="Hold", object="azathioprine", reason="{taking}", advice="{advice}",
        detail="An active systemic anti-infective ({subject}) suggests an infection is being treated while the "
               "patient is on azathioprine: consider holding azathioprine; {advice}. {reason_sentence}"),
    # --- labs
    "blood-counts/*hold": _LAB_HOLD, "liver/*hold": _LAB_HOLD, "kidney/*hold": _LAB_HOLD,
    "blood-counts/*caution": _LAB_REVIEW, "liver/*caution": _LAB_REVIEW, "kidney/*caution": _LAB_REVIEW,
    "liver/alt-falling-in-autoimmune-hepatitis": _T(
        verb="Keep monitoring", object="ALT", reason="{concept} {value} {on_when}, {reason}", advice="{advice}",
        detail="{Checked}: each result lower than the one before, so the high value reflects the disease responding "
               "to treatment, not drug toxicity. A rise would be the alarm."),
    # --- monitoring
    "monitoring-schedule/*caution": _T(
        verb="Order", object="{subject}", reason="last one {when}; {reason}",
        detail="{Subject} overdue: the last one was {when}, and it is {reason} (grace included). Order the test. "
               "{Checked}."),
    "monitoring-schedule/*ok": _T(line="{Subject} up to date: last one {when}",
                                  detail="{Subject} up to date: last one {when}; {reason}. {Checked}."),
    "monitoring-schedule/*cannot-evaluate": _T(verb="Cannot check", object="{checks}", reason="{need}",
                                               detail="{Reason}. {Checked}."),
    # --- dose, TPMT, interactions
    "dose/*caution": _T(
        verb="Review", object="the azathioprine dose", reason="{reason}",
        detail="Azathioprine {reason}. Computed: {checked}. Maximum {dose_max} ({dose_max_source}); the US label "
               "RA maximum is {dose_label_max} ({dose_label_source}). Review the dose."),
    "dose/dose-within-max": _T(
        line="Azathioprine {reason}",
        detail="Azathioprine {reason}. Computed: {checked}. Maximum {dose_max} ({dose_max_source}); the US label "
               "RA maximum is {dose_label_max} ({dose_label_source})."),
    "dose/dose-cannot-evaluate": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="The dose in mg/kg/day needs the dose per administration, the administrations per day and a "
               "recent weight. Missing: {missing}."),
    "tpmt/*hold": _T(verb="Hold", object="azathioprine", reason="{reason}", advice="{advice}",
                     detail="{Reason} ({checked}). {advice_sentence}"),
    "tpmt/*caution": _T(verb="Review", object="the azathioprine dose", reason="{reason}", advice="{advice}",
                        detail="{Reason} ({checked}). {advice_sentence}"),
    "tpmt/*cannot-evaluate": _T(verb="Cannot check", object="{checks}", reason="{need}",
                                detail="{Reason} ({checked}). {advice_sentence}"),
    "tpmt/*ok": _T(line="{Advice}", detail="{checked_sentence} {advice_sentence} {reason_sentence}"),
    "tpmt/observation-unreadable": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Subject}: review it in the chart before relying on TPMT/NUDT15 status."),
    "interactions/thiopurine-antimetabolite": _T(
        verb="Hold", object="azathioprine", reason="{subject} is a second antimetabolite (duplicate therapy)",
        advice="confirm the switch: only one should be taken"),
    "infection-hold/anti-infective-prophylaxis": _T(
        verb="Check", object="for infection", reason="{subject} is given as prophylaxis", advice="{advice}",
        detail="An active systemic anti-infective ({subject}) {reason} is not a treated infection: {advice} before "
               "the next azathioprine dose."),
    "interactions/*hold": _T(verb="Hold", object="azathioprine", reason="it interacts with {subject}",
                             advice="{advice}", detail="{Checked}."),
    "interactions/*caution": _T(verb="Review", object="azathioprine", reason="it interacts with {subject}",
                                advice="{advice}", detail="{Checked}."),
    "interactions/interaction-status-uncertain": _T(
        verb="Cannot check", object="{checks}", reason="{need}", detail="{Reason}. {advice_sentence}"),
    "interactions/medication-unreadable": _T(
        verb="Cannot check", object="{checks}", reason="{need}",
        detail="{Subject}: interactions with it cannot be excluded."),
    "interactions/no-interaction": _T(
        line="No interacting drug among {reason}",
        detail="Checked the other current medication records ({checked}) against: {subject}."),
    "infection-hold/lab-result-undecided": _T(
        verb="Cannot check",
        object="{checks}",
        reason="{need}",
        detail="{Reason}: {checked}. Ask the lab or repeat the test."),
    "*/side-effect-reported": _T(
        verb="Check",
        object="{subject}",
        reason="{reason} {when}",
        detail="{Checked}."),
    "pancreatitis/no-pancreatitis": _T(
        line="No acute pancreatitis on record",
        detail="{Checked}."),
    "pancreatitis/lipase-unjudged": _T(
        verb="Cannot check",
        object="{checks}",
        reason="{need}",
        detail="{Reason}. Check the result with the lab."),
    "kidney/on-dialysis": _T(
        line="On dialysis ({subject}): eGFR and creatinine thresholds do not apply",
        detail="{Checked}. The record shows dialysis ({subject}). Kidney function is judged by the renal team; "
               "azathioprine dosing on dialysis follows the prescriber."),
    "tpmt/tpmt-family-history": _T(
        verb="Test",
        object="{subject}",
        reason="{reason}",
        detail="{Checked}."),
    "tpmt/tpmt-after-transfusion": _T(
        verb="Retest or genotype",
        object="{subject}",
        reason="{reason}",
        detail="{Checked}: the phenotype may be falsely normal; retest or genotype."),
    "*/observation-unreadable": _T(
        verb="Cannot check",
        object="{checks}",
        reason="{need}",
        detail="{Subject} might hold a result for {checks}: review it in the chart."),
    "blood-counts/*ok": _T(
        line="Within limits: {checked}",
        detail="Checked, each recent, readable and within its threshold: {checked}. {advice_sentence}"),
    "liver/*ok": _T(
        line="Within limits: {checked}",
        detail="Checked, each recent, readable and within its threshold: {checked}. {advice_sentence}"),
    "kidney/*ok": _T(
        line="Within limits: {checked}",
        detail="Checked, each recent, readable and within its threshold: {checked}. {advice_sentence}"),
}

class Message(Struct, frozen=True, kw_only=True):
    """What a patient is told about a finding, what to do, and how soon. Never to stop or change the
    medicine: whom to contact and when (tests/patient/test_messages.py)."""

    urgency: Urgency
    text: str
    todo: str


_M = Message
_LIVE = _M(urgency="before", text="Your record shows the {vaccine} vaccine {planned}. It is a live vaccine.",
           todo="Talk to your doctor before you have it.")
_ANY_VACCINE = _M(urgency="before", text="Your record shows a vaccine {planned}.",
                  todo="Talk to your doctor before you have any vaccine.")
_LOOK = "If they have not called you, call them today."
_NEXT_VISIT = "Ask about it at your next visit."

# The patient's words (after the azathioprine patient leaflets: US Imuran Medication Guide, NHS patient
# information; Flesch-Kincaid grade 8 or below, tests/patient/test_readability.py). Placeholders: the facts
# in a patient's words (PATIENT_FACTS); a fact the finding does not state gets patient.json's fallback words.
PATIENT: dict[str, Message] = {
    "*/side-effect-reported": _M(urgency="today", text="Your record shows a possible side effect of azathioprine.",
                                 todo="Call {contact} today. They may want a blood test."),
    "infection-hold/warning-sign-neutropenic": _M(
        urgency="now", text="You have a sign of infection, and your last blood count showed few white blood cells.",
        todo="Call {contact} now."),
    "infection-hold/warning-signs": _M(urgency="today", text="Your record shows a sign of infection from the last "
                                       "few days.", todo="Call {contact} today."),
    "infection-hold/leaflet-fever": _M(urgency="today", text="Your temperature was {temperature} {when}. That is a "
                                       "little high.", todo="Take it again. If it is {threshold} or more, call "
                                       "{contact}."),
    "infection-hold/lab-proven-infection": _M(urgency="today", text="A lab test shows an infection.",
                                              todo="Call {contact} today."),
    "infection-hold/hbv-reactivation": _M(urgency="today", text="A lab test shows the hepatitis B virus is active "
                                          "again.", todo="Call {contact} today."),
    **dict.fromkeys(("infection-hold/neutropenic-fever", "infection-hold/febrile-neutropenia-coded"), _M(
        urgency="now", text="You have a fever and a low white blood cell count. This can be serious.",
        todo="Call {contact} now. If you cannot reach them, go to an emergency room.")),
    "infection-hold/fever": _M(urgency="today", text="Your temperature was {temperature} {when}.",
                               todo="Call {contact} today."),
    "infection-hold/active-infection": _M(urgency="today", text="Your record shows an infection: {condition}.",
                                          todo="Call {contact} today. Ask what to do about your medicine while you "
                                          "have it."),
    "infection-hold/anti-infective": _M(urgency="today", text="You have a new medicine for an infection: {drug}.",
                                        todo="Call {contact} today. Tell them you take azathioprine."),
    **dict.fromkeys((f"vaccination-hold/{code}" for code in (
        "live-vaccine-planned", "live-vaccine-after-wait", "live-vaccine-stop-date-unknown",
        "live-vaccine-after-planned-stop", "live-vaccine-before-planned-start",
        "live-vaccine-close-to-planned-start")), _LIVE),
    "vaccination-hold/ambiguous-vaccine-planned": _M(
        urgency="before", text="Your record shows a vaccine {planned}. We cannot tell if it is a live vaccine.",
        todo="Talk to your doctor before you have it."),
    "vaccination-hold/inactivated-vaccine-planned": _M(
        urgency="before", text="Your record shows the {vaccine} vaccine {planned}. It is not a live vaccine.",
        todo="Ask your doctor if it is OK before you have it. It may work less well for you."),
    "vaccination-hold/live-vaccine-given": _M(
        urgency="today", text="Your record shows a live vaccine, {vaccine}, {planned}.",
        todo="Tell {contact} today. Call them right away if you get a fever or a rash."),
    "vaccination-hold/*hold": _ANY_VACCINE,
    "vaccination-hold/*caution": _ANY_VACCINE,
    # A code family: "cbc-overdue", "lft-overdue", ... ({test} names the group).
    "monitoring-schedule/*-overdue": _M(urgency="week", text="Your {test} is overdue. Your last one was {date}.",
                                        todo="Book a blood test this week."),
    "monitoring-schedule/*-no-result": _M(urgency="week", text="We could not find your last {test}.",
                                          todo="Ask {contact} when your next blood test is due."),
    "blood-counts/*hold": _M(urgency="today", text="Your last blood count needs a look from {contact}.", todo=_LOOK),
    "liver/*hold": _M(urgency="today", text="Your last liver test needs a look from {contact}.", todo=_LOOK),
    "kidney/*hold": _M(urgency="today", text="Your last kidney test needs a look from {contact}.", todo=_LOOK),
    "interactions/*hold": _M(urgency="today", text="One of your other medicines, {drug}, can change how "
                             "azathioprine works.", todo="Call {contact} today."),
    "interactions/*caution": _M(urgency="next-visit", text="One of your other medicines, {drug}, can change how "
                                "azathioprine works.", todo=_NEXT_VISIT),
    "blood-counts/*caution": _M(urgency="next-visit", text="Your blood count has changed a little.", todo=_NEXT_VISIT),
    "liver/*caution": _M(urgency="next-visit", text="Your liver test has changed a little.", todo=_NEXT_VISIT),
    "kidney/*caution": _M(urgency="next-visit", text="Your kidney test has changed a little.", todo=_NEXT_VISIT),
    "dose/*caution": _M(urgency="next-visit", text="Your care team may want to check your dose.", todo=_NEXT_VISIT),
    "pancreatitis/*hold": _M(urgency="today", text="A test shows your pancreas may be inflamed.",
                             todo="Call {contact} today. Tell them if you have bad pain in your belly."),
    "tpmt/*caution": _M(urgency="next-visit", text="A gene test shows your body may break down azathioprine slowly.",
                        todo="Ask about your dose at your next visit."),
    "*/hold": _M(urgency="today", text="Your record shows something {contact} needs to look at.",
                 todo="Call them today."),
    "*/caution": _M(urgency="next-visit", text="Your care team may want to check something in your record.",
                    todo=_NEXT_VISIT),
    "*/cannot-evaluate": _M(urgency="next-visit", text="We could not check your {check} from your record.",
                            todo="Ask {contact} about it at your next visit."),
}
TABLES: dict[Audience, dict[str, Template] | dict[str, Message]] = {"clinician": CLINICIAN, "patient": PATIENT}

# How a drug on the record reads: an order is "ordered", a statement is being taken.
_TAKING = {
    "request": "{concept} ordered {when}",
    "statement": "taking {concept} (recorded {when})",
    "dispense": "{concept} dispensed {when}",
    "administration": "{concept} given {when}",
}


def sentence(text: str, limit: int = SUMMARY_MAX_CHARS) -> str:
    """One whole sentence under `limit` characters: cut at a clause boundary, never mid-word."""
    text = " ".join(text.split()).strip()
    if not text:
        return text
    if len(text) > limit:
        cut = text[: limit - 1]
        for mark in (". ", "; ", " — ", ": ", ", "):
            i = cut.rfind(mark)
            if i > limit // 2:
                cut = cut[:i]
                break
        else:
            cut = cut.rsplit(" ", 1)[0]
        text = cut.rstrip(" ,;:—-")
    if text[-1] not in ".!?":
        text += "."
    return text[0].upper() + text[1:]


def _whole(text: str | None) -> str:
    """A clause as a whole sentence of an explanation (no length limit: the detail is not an alert line)."""
    return sentence(text, limit=100_000) if text else ""


def lower_first(text: str) -> str:
    """Lower-case a leading word unless it is an acronym ("WBC", "ALT")."""
    return text[0].lower() + text[1:] if len(text) > 1 and not text[1].isupper() else text


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


class Words(Struct, frozen=True):
    """The wording for one audience, moment, time zone and date style."""

    now: datetime
    m: Mappings
    tz: tzinfo | None = None
    style: DateStyle = "relative"
    audience: Audience = "clinician"

    # --- values -----------------------------------------------------------------------------

    def when(self, value: datetime | str | None) -> str:
        if self.style == "relative":
            return format_date(value, self.now, self.tz)
        return format_moment(value, self.tz)

    def quantity(self, q: Quantity | None) -> str:
        if q is None:
            return ""
        return format_quantity(q.value, q.unit, self.m, recorded_decimals=q.decimals, comparator=q.comparator)

    def rows(self, f: Finding) -> tuple[EvidenceRow, ...]:
        return tuple(self.row(e) for e in f.evidence)

    def row(self, e: Evidence) -> EvidenceRow:
        value = self.quantity(e.quantity) if e.quantity is not None else (e.text or "")
        return EvidenceRow(what=sentence_case(e.description), value=value,
                           date=self.when(e.date) if e.date else "", reference=e.reference, role=e.role)

    # --- the action ---------------------------------------------------------------------------

    def template(self, f: Finding) -> Template:
        """The clinician's template for the finding (the most specific key of the table)."""
        found = CLINICIAN[key_for(CLINICIAN, f)]
        return found

    def message(self, f: Finding, content: PatientContent) -> Told:
        """What the patient is told about an actionable finding: the patient table's row, filled with the
        facts the rule stated (trigger, subject, therapy) in a patient's words."""
        key = key_for(PATIENT, f)
        row = PATIENT[key]
        facts = self._patient_facts(f, content)
        return Told(urgency=row.urgency, text=fill(row.text, facts, content.fallbacks),
                    todo=fill(row.todo, facts, content.fallbacks), general=key in _general_keys(f))

    def action(self, f: Finding) -> Action:
        t = self.template(f)
        facts = self._facts(f)
        verb, obj = t.verb.format_map(facts), t.object.format_map(facts)
        reason = " ".join(t.reason.format_map(facts).split()) or facts["reason"]
        advice = t.advice.format_map(facts) if t.advice else None
        return Action(
            rule=f.rule, code=f.code, status=f.status, severity=f.severity, verb=verb, object=obj,
            reason=reason, advice=advice or None, summary=summary_of(verb, obj, reason, advice),
            detail=self._detail(f, t, facts), evidence=self.rows(f), todo=tuple(x.rstrip(".") for x in f.missing),
            implicated=f.implicated,
        )

    def line(self, f: Finding) -> str:
        """A rule's headline sentence: its action's summary when actionable, else the rule's statement (its
        template's `line`: "No vaccine planned or ordered in the record.")."""
        if f.actionable:
            return self.action(f).summary
        t = self.template(f)
        facts = self._facts(f)
        return sentence((t.line or "{reason}").format_map(facts))

    def said(self, f: Finding) -> tuple[str, str]:
        """(line, detail) of a finding that needs no action, its facts worked out once."""
        t = self.template(f)
        facts = self._facts(f)
        return sentence((t.line or "{reason}").format_map(facts)), self._detail(f, t, facts)

    def detail(self, f: Finding) -> str:
        """The finding explained: its template's `detail`, else its reason, with the source it rests on."""
        return self._detail(f, self.template(f), self._facts(f))

    def _detail(self, f: Finding, t: Template, facts: dict[str, str]) -> str:
        text = t.detail.format_map(facts) if t.detail else _whole(facts["reason"])
        if f.source and not (t.detail and "{source}" in t.detail):
            text += f" Source: {facts['source']}."
        return " ".join(text.split())

    def _facts(self, f: Finding) -> _Facts:
        trig = f.trigger
        when = self.when(trig.at) if trig and trig.at else "date not recorded"
        checks = SPEC[f.rule].checks if f.rule in SPEC else f.rule
        facts = _Facts({
            # Drug names as a clinician writes them ("allopurinol 100 mg tablets", not an RxNorm display).
            "subject": clinical_name(f.subject or (trig.concept if trig else "") or checks),
            "concept": clinical_name(trig.concept) if trig else "",
            "value": self.quantity(trig.quantity) if trig else "",
            "when": when,
            "on_when": when if when.startswith(("today", "yesterday", "date")) else f"on {when}",
            "reason": f.reason or self._need(f),
            "advice": f.advice or "",
            "checks": checks,
            "need": self._need(f),
            "dated": f" on {format_day(trig.at, self.tz)}" if trig and trig.at else "",
            "count": str(len(f.evidence)),
            "stopped": self.when(f.therapy.stopped) if f.therapy and f.therapy.stopped else "on an unrecorded date",
        }, {
            "source": lambda: source_words(f.source, self.m),
            "checked": lambda: "; ".join(f.checked or self._checked(f)) or "nothing",
            "missing": lambda: "; ".join(x.rstrip(".") for x in f.missing) or "nothing",
            "dose_max": lambda: f"{self.m.policy.dose.max_mg_per_kg_day.value:g} mg/kg/day",
            "dose_max_source": lambda: source_words(self.m.policy.dose.max_mg_per_kg_day.source, self.m),
            "dose_label_max": lambda: f"{self.m.policy.dose.label_ra_max_mg_per_kg_day.value:g} mg/kg/day",
            "dose_label_source": lambda: source_words(self.m.policy.dose.label_ra_max_mg_per_kg_day.source, self.m),
            "therapy": lambda: self._therapy(f),
            "exposure": lambda: self._exposure(f),
            "wait": self._wait,
            "advice_sentence": lambda: _whole(f.advice),
            "reason_sentence": lambda: _whole(f.reason),
            "checked_sentence": lambda: _whole("; ".join(f.checked)),
            "fever_window": lambda: f"{self.m.policy.infection.fever_window_hours.value:g} h",
            "fever_threshold": lambda: format_quantity(self.m.policy.infection.fever_threshold_cel.value, "Cel",
                                                       self.m),
        })
        facts["taking"] = (_TAKING.get(trig.source or "", "on {concept}") if trig else "{reason}").format_map(facts)
        return facts

    def _checked(self, f: Finding) -> list[str]:
        """'WBC 5.2 ×10⁹/L (30 Oct 2026)': what an ok finding checked, from its evidence (not the therapy)."""
        out = []
        for e in f.evidence:
            if e.role == "therapy":
                continue
            row = self.row(e)
            value = f" {row.value}" if row.value else ""
            when = f" ({format_day(e.date, self.tz)})" if e.date else ""
            out.append(f"{row.what}{value}{when}")
        return out

    def _patient_facts(self, f: Finding, content: PatientContent) -> dict[str, str]:
        """The patient placeholders (PATIENT_FACTS) from the facts the rule stated: the trigger's concept,
        quantity, time and kind of record; the subject. Times as a patient says them ("this morning")."""
        from azaguard import plainwords as words  # the patient audience only: `check` never loads it

        check = content.checks.get(f.rule) or (SPEC[f.rule].checks if f.rule in SPEC else "")
        threshold = self.m.policy.infection.fever_threshold_cel.value
        facts: dict[str, str] = {"contact": content.contact, "check": check,
                                 "threshold": format_quantity(threshold, "Cel", self.m)}
        trig = f.trigger
        at = _instant(trig.at) if trig is not None else None
        named = f.subject or (trig.concept if trig is not None else "")
        if trig is not None and trig.quantity is not None and f.rule == "infection-hold":
            facts["temperature"] = self.quantity(trig.quantity)
        if at is not None:
            facts["when"] = facts["date"] = words.when(at, self.now, self.tz)
        if f.rule == "monitoring-schedule":
            group = f.code.split("-", 1)[0]  # the monitoring group of the finding code ("cbc-overdue" → "cbc")
            facts["test"] = content.tests[group].name if group in content.tests else ""
        elif f.rule == "vaccination-hold" and trig is not None:
            facts["vaccine"] = words.vaccine_name(trig.concept)
            if at is not None:
                facts["planned"] = _VACCINE_WHEN.get(trig.recorded_in or "", "ordered {date}").format(
                    date=facts["date"])
        elif named:
            facts["condition"] = facts["drug"] = named
        return facts

    def _need(self, f: Finding) -> str:
        if not f.missing:
            return f.reason or SPEC[f.rule].checks if f.rule in SPEC else f.rule
        need = f.missing[0].rstrip(".")
        return need if need.lower().startswith(("no ", "not ", "missing")) else f"needs {need}"

    def _wait(self) -> str:
        days = int(self.m.policy.vaccination.post_stop_live_wait_days.value)
        return f"{days // 30} months" if days % 30 == 0 and days >= 60 else f"{days} days"

    def _exposure(self, f: Finding) -> str:
        """One sentence on the patient's azathioprine, from the therapy fact ("" when there is none)."""
        t = f.therapy
        if t is None:
            return ""
        return {
            "current": "The patient is on azathioprine.",
            "on-hold": "Azathioprine is on hold, not stopped.",
            "starting": "Azathioprine is being ordered and has not started yet.",
            "stopped": self._stopped_on(t.stopped),
            "completed": self._stopped_on(t.stopped),
            "stop-date-unknown": "Azathioprine was stopped on an unrecorded date.",
        }[t.state]

    def _stopped_on(self, stopped: str | None) -> str:
        """'Azathioprine was stopped on 4 Aug 2026 (89 days ago).'"""
        at = _instant(stopped)
        if at is None:
            return "Azathioprine was stopped on an unrecorded date."
        days = (self.now - at).days
        ago = f" ({days} days ago)" if days >= 0 else ""
        return f"Azathioprine was stopped on {format_day(at, self.tz)}{ago}."

    def _therapy(self, f: Finding) -> str:
        """The therapy state as a reason a live vaccine (or anything else) must wait."""
        t = f.therapy
        if t is None:
            return "the patient is on azathioprine"
        before = int(self.m.policy.vaccination.live_before_start_days.value)
        return {
            "current": "the patient is on azathioprine",
            "on-hold": "azathioprine is on hold, not stopped",
            "starting": f"a new azathioprine order: live vaccines go at least {before} days before starting "
                        "azathioprine",
            "stopped": f"azathioprine stopped less than {self._wait()} ago",
            "completed": f"azathioprine stopped less than {self._wait()} ago",
            "stop-date-unknown": "azathioprine stopped on an unrecorded date",
        }[t.state]


class _Facts(dict[str, str]):
    """The facts in words, each worked out when a template asks for it (`lazy`); "{Reason}" is "{reason}"
    with a capital first letter (a sentence starts with it)."""

    def __init__(self, values: dict[str, str], lazy: dict[str, Callable[[], str]]) -> None:
        super().__init__(values)
        self.lazy = lazy

    def __missing__(self, key: str) -> str:
        if key in self.lazy:
            self[key] = value = self.lazy[key]()
            return value
        lower = key[:1].lower() + key[1:]
        if key[:1].isupper() and (lower in self or lower in self.lazy):
            return sentence_case(self[lower])
        raise KeyError(key)


def _known(name: str, known: frozenset[str]) -> bool:
    return name in known or (name[:1].isupper() and name[:1].lower() + name[1:] in known)


class Told(Struct, frozen=True, kw_only=True):
    """A finding in the patient's words; `general` when the rule's general words were used (not its code's)."""

    urgency: Urgency
    text: str
    todo: str
    general: bool


# How a vaccine on the record is dated for the patient, by the kind of record that holds it.
_VACCINE_WHEN = {"ImmunizationRecommendation": "due {date}", "Immunization": "given {date}"}
CLINICIAN_FACTS = frozenset({
    "advice", "advice_sentence", "checked", "checked_sentence", "checks", "concept", "count", "dated",
    "dose_label_max", "dose_label_source", "dose_max", "dose_max_source", "exposure", "fever_threshold",
    "fever_window", "missing", "need", "on_when", "reason", "reason_sentence", "source", "stopped", "subject",
    "taking", "therapy", "value", "wait", "when"
})
PATIENT_FACTS = frozenset({"contact", "temperature", "when", "condition", "drug", "vaccine", "planned", "date",
                           "test", "check", "reported", "threshold"})


def source_words(source: str | None, m: Mappings) -> str:
    """A mappings source as clinicians cite it ("BSR 2017 monitoring guideline"), else as the mappings word it;
    a project document is not a source a clinician can look up: "azaguard's clinical rules"."""
    if not source:
        return ""
    return cite(source, m) or ("azaguard's clinical rules" if ".md" in source else source)


def key_for(table: Mapping[str, object], f: Finding) -> str:
    """The most specific key of `table` for the finding: "rule/code", "*/code" (any rule), "rule/*-suffix"
    (a code family: "monitoring-schedule/*-overdue"), then the general "rule/*<status>", "rule/*", "*/<status>"."""
    parts = f.code.split("-")
    families = (f"{f.rule}/*-{'-'.join(parts[i:])}" for i in range(1, len(parts)))
    for key in (f"{f.rule}/{f.code}", f"*/{f.code}", *families, *_general_keys(f)):
        if key in table:
            return key
    raise KeyError(f"no wording for {f.rule}/{f.code}")


def _general_keys(f: Finding) -> tuple[str, str, str]:
    return f"{f.rule}/*{f.status.value}", f"{f.rule}/*", f"*/{f.status.value}"


def fill(template: str, facts: Mapping[str, str], fallbacks: Mapping[str, str]) -> str:
    """The template with its facts; a fact not stated gets its fallback words (never a guess)."""
    values = {name: facts.get(name) or fallbacks.get(name, "")
              for _, name, _, _ in string.Formatter().parse(template) if name}
    return " ".join(template.format(**values).split())


def _instant(value: str | None) -> datetime | None:
    return dates.zoned(value)  # a date without a zone is not placed in a day


def validate_tables() -> None:
    """Every key names a registered rule (or "*") and every placeholder is a known fact: run on import, so a
    wording table that cannot be filled never loads."""
    for audience, table, known in (("clinician", CLINICIAN, CLINICIAN_FACTS), ("patient", PATIENT, PATIENT_FACTS)):
        for key, entry in table.items():
            rule, _, code = key.partition("/")
            if (rule != "*" and rule not in RULE_IDS) or not code:
                raise ValueError(f"{audience} wording {key!r}: not 'rule/code' for a registered rule")
            texts = [getattr(entry, name) or "" for name in entry.__struct_fields__ if name != "urgency"]
            unknown = {n for t in texts for _, n, _, _ in string.Formatter().parse(t) if n and not _known(n, known)}
            if unknown:
                raise ValueError(f"{audience} wording {key!r}: unknown placeholder(s) {sorted(unknown)}")


def summary_of(verb: str, obj: str, reason: str, advice: str | None) -> str:
    """'Hold azathioprine — fever 38.6 °C today 06:00; contact the prescriber.' (advice only if it fits)."""
    head = f"{verb} {obj} — {reason}"
    return sentence(f"{head}; {advice}" if advice and len(head) + len(advice) + 3 < SUMMARY_MAX_CHARS else head)


validate_tables()
