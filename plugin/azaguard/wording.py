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

from datetime import datetime, tzinfo
from typing import Literal

from msgspec import Struct

from azaguard.display import format_date, format_moment, format_quantity
from azaguard.drugnames import clinical_name
from azaguard.findings import SUMMARY_MAX_CHARS, Evidence, Finding, Quantity, RuleId, Severity, Status
from azaguard.mappings import Mappings
from azaguard.registry import SPEC

Audience = Literal["clinician"]  # the patient view adds "patient" with its own table
DateStyle = Literal["relative", "absolute"]  # "today 06:00" on screens; "20 Nov 2026 06:00" in the chart


class Template(Struct, frozen=True, kw_only=True):
    verb: str
    object: str
    reason: str
    advice: str | None = None


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
_LAB_HOLD = _T(verb="Hold", object="azathioprine", reason="{concept} {value} {on_when}, {reason}",
               advice="discuss with the specialist")
_LAB_REVIEW = _T(verb="Review", object="azathioprine", reason="{concept} {value} {on_when}, {reason}")

CLINICIAN: dict[str, Template] = {
    # Any rule that cannot check names what it cannot check and what is needed.
    "*/cannot-evaluate": _T(verb="Cannot check", object="{checks}", reason="{need}"),
    "*/hold": _T(verb="Hold", object="azathioprine", reason="{reason}"),
    "*/caution": _T(verb="Review", object="azathioprine", reason="{reason}"),
    # --- vaccination-hold
    "vaccination-hold/live-vaccine-planned": _T(
        verb="Do not give", object="the {subject} vaccine (live)", reason="{therapy}",
        advice="discuss with the prescriber"),
    "vaccination-hold/live-vaccine-after-wait": _T(
        verb="Ask the prescriber before", object="the {subject} vaccine (live)",
        reason="azathioprine stopped {stopped}, more than {wait} ago"),
    "vaccination-hold/live-vaccine-stop-date-unknown": _T(
        verb="Confirm the azathioprine stop date before", object="the {subject} vaccine (live)",
        reason="live vaccines need {wait} after stopping"),
    "vaccination-hold/ambiguous-vaccine-planned": _T(
        verb="Confirm the product before", object="the {subject} vaccine",
        reason="it may be live, and live vaccines are contraindicated on azathioprine",
        advice="ask the prescriber"),
    "vaccination-hold/inactivated-vaccine-planned": _T(
        verb="Ask the prescriber before", object="the {subject} vaccine",
        reason="not live, but the response may be reduced on azathioprine"),
    "vaccination-hold/live-vaccine-given": _T(
        verb="Tell the prescriber about", object="the {subject} vaccine (live)",
        reason="given {when} during azathioprine therapy", advice="watch for vaccine-strain infection"),
    "vaccination-hold/unidentified-vaccine-given": _T(
        verb="Identify", object="the vaccine given {when}",
        reason="it was given during azathioprine therapy and may have been live"),
    "vaccination-hold/live-vaccine-before-planned-start": _T(
        verb="Give", object="the {subject} vaccine (live) before azathioprine starts", reason="{reason}"),
    "vaccination-hold/live-vaccine-close-to-planned-start": _T(
        verb="Review the timing of", object="the {subject} vaccine (live)", reason="{reason}",
        advice="delay the start or discuss with the prescriber"),
    "vaccination-hold/live-vaccine-after-planned-stop": _T(
        verb="Confirm azathioprine has stopped before", object="the {subject} vaccine (live)", reason="{reason}"),
    "vaccination-hold/started-soon-after-live-vaccine": _T(
        verb="Watch", object="for vaccine-strain infection", reason="{reason}"),
    # --- infection-hold
    "infection-hold/fever": _T(verb="Hold", object="azathioprine", reason="fever {value} {when}",
                               advice="contact the prescriber"),
    "infection-hold/neutropenic-fever": _T(
        verb="Hold", object="azathioprine", reason="fever {value} {when} with low neutrophils",
        advice="urgent assessment now"),
    "infection-hold/febrile-neutropenia-coded": _T(
        verb="Hold", object="azathioprine", reason="febrile neutropenia on record ({subject})",
        advice="urgent assessment now"),
    "infection-hold/active-infection": _T(
        verb="Hold", object="azathioprine", reason="{subject} recorded {when}", advice="contact the prescriber"),
    # issue 17: what the leaflets tell patients to report, and what the lab already knows
    "infection-hold/warning-signs": _T(
        verb="Assess", object="for infection before the next dose",
        reason="warning sign of infection: {subject}, recorded {when}"),
    "infection-hold/warning-sign-neutropenic": _T(
        verb="Hold", object="azathioprine", reason="warning sign of infection ({subject}, {when}) with low neutrophils",
        advice="assess today"),
    "infection-hold/leaflet-fever": _T(
        verb="Recheck", object="the temperature", reason="{value} {when} is above the leaflet's 100 °F"),
    "infection-hold/lab-proven-infection": _T(
        verb="Hold", object="azathioprine", reason="{subject} shown by the lab {when}",
        advice="contact the prescriber"),
    "infection-hold/hbv-reactivation": _T(
        verb="Hold", object="azathioprine", reason="hepatitis B reactivation: HBV DNA {value} {when}",
        advice="refer to hepatology"),
    "infection-hold/viraemia": _T(verb="Refer", object="to hepatology", reason="{subject} detected {when}"),
    # issue 24: a diagnosis in a script the tables cannot read may be an infection (never silence)
    "infection-hold/diagnosis-unidentified": _T(
        verb="Identify", object="the diagnosis {subject}", reason="it could not be read and may be an infection",
        advice="check before the next dose"),
    "blood-counts/side-effect-reported": _T(verb="Check", object="{subject}", reason="{reason} {when}"),
    "liver/side-effect-reported": _T(verb="Check", object="{subject}", reason="{reason} {when}"),
    "vaccination-hold/live-vaccine-given-after-stop": _T(
        verb="Tell the prescriber about", object="the {subject} vaccine (live)", reason="given {when}, {reason}",
        advice="watch for vaccine-strain infection"),
    "pancreatitis/pancreatitis-diagnosed": _T(
        verb="Stop", object="azathioprine", reason="acute pancreatitis recorded {when}",
        advice="contact the prescriber"),
    "pancreatitis/lipase-high": _T(
        verb="Stop", object="azathioprine", reason="lipase {value} {when}, {reason}", advice="contact the prescriber"),
    "infection-hold/anti-infective": _T(
        verb="Hold", object="azathioprine", reason="{taking}", advice="{advice}"),
    # --- labs
    "blood-counts/*hold": _LAB_HOLD, "liver/*hold": _LAB_HOLD, "kidney/*hold": _LAB_HOLD,
    "blood-counts/*caution": _LAB_REVIEW, "liver/*caution": _LAB_REVIEW, "kidney/*caution": _LAB_REVIEW,
    "liver/alt-falling-in-autoimmune-hepatitis": _T(
        verb="Keep monitoring", object="ALT", reason="{concept} {value} {on_when}, {reason}", advice="{advice}"),
    # --- monitoring
    "monitoring-schedule/*caution": _T(verb="Order", object="{subject}", reason="last one {when}; {reason}"),
    # --- dose, TPMT, interactions
    "dose/*caution": _T(verb="Review", object="the azathioprine dose", reason="{reason}"),
    "tpmt/tpmt-family-history": _T(verb="Test", object="{subject}", reason="{reason}"),
    "tpmt/tpmt-after-transfusion": _T(verb="Retest or genotype", object="{subject}", reason="{reason}"),
    "tpmt/*hold": _T(verb="Hold", object="azathioprine", reason="{reason}", advice="{advice}"),
    "tpmt/*caution": _T(verb="Review", object="the azathioprine dose", reason="{reason}", advice="{advice}"),
    "interactions/thiopurine-antimetabolite": _T(
        verb="Hold", object="azathioprine", reason="{subject} is a second antimetabolite (duplicate therapy)",
        advice="confirm the switch: only one should be taken"),
    "infection-hold/anti-infective-prophylaxis": _T(
        verb="Check", object="for infection", reason="{subject} is given as prophylaxis", advice="{advice}"),
    "interactions/*hold": _T(verb="Hold", object="azathioprine", reason="it interacts with {subject}",
                             advice="{advice}"),
    "interactions/*caution": _T(verb="Review", object="azathioprine", reason="it interacts with {subject}",
                                advice="{advice}"),
}
TABLES: dict[str, dict[str, Template]] = {"clinician": CLINICIAN}

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
        table = TABLES[self.audience]
        for key in (f"{f.rule}/{f.code}", f"{f.rule}/*{f.status.value}", f"{f.rule}/*", f"*/{f.status.value}"):
            if key in table:
                return table[key]
        raise KeyError(f"no {self.audience} wording for {f.rule}/{f.code}")

    def action(self, f: Finding) -> Action:
        t = self.template(f)
        facts = self._facts(f)
        verb, obj = t.verb.format_map(facts), t.object.format_map(facts)
        reason = " ".join(t.reason.format_map(facts).split()) or lower_first(f.summary.rstrip("."))
        advice = t.advice.format_map(facts) if t.advice else None
        return Action(
            rule=f.rule, code=f.code, status=f.status, severity=f.severity, verb=verb, object=obj,
            reason=reason, advice=advice or None, summary=summary_of(verb, obj, reason, advice),
            detail=f.detail, evidence=self.rows(f), todo=tuple(x.rstrip(".") for x in f.missing),
            implicated=f.implicated,
        )

    def line(self, f: Finding) -> str:
        """A rule's headline sentence: its action's summary when actionable, else the rule's statement."""
        return self.action(f).summary if f.actionable else sentence(f.summary)

    def _facts(self, f: Finding) -> dict[str, str]:
        trig = f.trigger
        when = self.when(trig.at) if trig and trig.at else "date not recorded"
        statement = lower_first(f.summary.rstrip("."))
        checks = SPEC[f.rule].checks if f.rule in SPEC else f.rule
        facts = {
            # Drug names as a clinician writes them ("allopurinol 100 mg tablets", not an RxNorm display).
            "subject": clinical_name(f.subject or (trig.concept if trig else "") or checks),
            "concept": clinical_name(trig.concept) if trig else "",
            "value": self.quantity(trig.quantity) if trig else "",
            "when": when,
            "on_when": when if when.startswith(("today", "yesterday", "date")) else f"on {when}",
            "reason": f.reason or statement,
            "advice": f.advice or "",
            "checks": checks,
            "need": self._need(f),
            "statement": statement,
            "therapy": self._therapy(f),
            "stopped": self.when(f.therapy.stopped) if f.therapy and f.therapy.stopped else "on an unrecorded date",
            "wait": self._wait(),
        }
        facts["taking"] = (_TAKING.get(trig.source or "", "on {concept}") if trig else "{statement}").format_map(
            facts
        )
        return facts

    def _need(self, f: Finding) -> str:
        if not f.missing:
            return f.reason or lower_first(f.summary.rstrip("."))
        need = f.missing[0].rstrip(".")
        return need if need.lower().startswith(("no ", "not ", "missing")) else f"needs {need}"

    def _wait(self) -> str:
        days = int(self.m.policy.vaccination.post_stop_live_wait_days.value)
        return f"{days // 30} months" if days % 30 == 0 and days >= 60 else f"{days} days"

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


def summary_of(verb: str, obj: str, reason: str, advice: str | None) -> str:
    """'Hold azathioprine — fever 38.6 °C today 06:00; contact the prescriber.' (advice only if it fits)."""
    head = f"{verb} {obj} — {reason}"
    return sentence(f"{head}; {advice}" if advice and len(head) + len(advice) + 3 < SUMMARY_MAX_CHARS else head)
