"""Findings → the clinician's message: what to do, most urgent first, in a clinician's words.

`build_verdict(findings, record, now, mappings, tz)` is a pure function computed once per check and
rendered by every surface: the page, the CLI text and JSON reports, the DetectedIssue/Flag text and
CDS Hooks cards. Each action names its verb and object ("Hold azathioprine", "Do not give the MMR
vaccine (live)", "Cannot check the dose") and the reason, with units and dates for people
(display.py). A verdict without actions says so and on what data ("No action needed — all 9 checks
passed").

The wording is built from the Finding's fields (rule, status, evidence, missing, summary), so a
rule that changes its own text keeps a clinician-readable verdict.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Literal

from msgspec import Struct

from azaguard.display import (
    cite,
    decimals_of,
    format_date,
    format_day,
    format_moment,
    format_quantity,
    humanise_quantity,
    humanise_text,
    sentence,
)
from azaguard.findings import RULE_IDS, SEVERITY_RANK, STATUS_RANK, Evidence, Finding, RuleId, Severity, Status
from azaguard.mappings import Mappings
from azaguard.record import PatientRecord

Tone = Literal["red", "amber", "green", "grey"]
# Banner colour and the icon that says the same without colour.
TONE_OF: dict[Status, Tone] = {
    Status.HOLD: "red",
    Status.CANNOT_EVALUATE: "grey",
    Status.CAUTION: "amber",
    Status.OK: "green",
    Status.NOT_APPLICABLE: "grey",
}
ICON_OF: dict[Status, str] = {
    Status.HOLD: "✖",
    Status.CANNOT_EVALUATE: "?",
    Status.CAUTION: "⚠",
    Status.OK: "✓",
    Status.NOT_APPLICABLE: "–",
}
WORDS_OF: dict[Status, str] = {
    Status.HOLD: "Hold",
    Status.CANNOT_EVALUATE: "Cannot check",
    Status.CAUTION: "Caution",
    Status.OK: "Passed",
    Status.NOT_APPLICABLE: "Does not apply",
}
ACTION_STATUSES = (Status.HOLD, Status.CANNOT_EVALUATE, Status.CAUTION)

_REF = re.compile(r"\b(?:Observation|MedicationRequest|MedicationStatement|MedicationAdministration|Medication|"
                  r"Condition|Immunization|ImmunizationRecommendation|ServiceRequest|Patient|Encounter|"
                  r"DetectedIssue|Flag|Device)/[A-Za-z0-9\-.]{1,64}\b")
_NOUN = {
    "Observation": "the result", "MedicationRequest": "the order", "MedicationStatement": "the medication entry",
    "MedicationAdministration": "the administration", "Medication": "the medication", "Condition": "the condition",
    "Immunization": "the vaccination", "ImmunizationRecommendation": "the recommendation",
    "ServiceRequest": "the order", "Patient": "the patient", "Encounter": "the encounter",
    "DetectedIssue": "the alert", "Flag": "the flag", "Device": "azaguard",
}
_PROJECT_FILES = re.compile(r"\s*\(?(?:see )?clinical-rules\.md(?: section \d+)?\)?:?\s*", re.IGNORECASE)
_RESOURCE_STATUS = re.compile(
    r",? (?:ImmunizationRecommendation|ServiceRequest|MedicationRequest|Immunization|MedicationStatement) status (\S+)"
)
_REF_IN_PARENS = re.compile(r"\(\s*" + _REF.pattern + r"\s*\)")
_REF_LAST_IN_PARENS = re.compile(r"(?<=, )" + _REF.pattern + r"(?=\))")
_REF_AS_SUBJECT = re.compile(r"(^|\. |: )" + _REF.pattern)
_REF_ANYWHERE = re.compile(r"\s*" + _REF.pattern)
_SOURCE = re.compile(r"Source: (.*?)(?=\.\s|\.$|$)")
_EMPTY_LEAD = re.compile(r"\(\s*,\s*")
_EMPTY_TAIL = re.compile(r",\s*\)")
_EMPTY_PARENS = re.compile(r"\(\s*\)")
_SPACE_BEFORE = re.compile(r"\s+([.,;:)])")
_SEVERITY_WORDS = re.compile(r"\s*\((?:critical|high|moderate|low|info)\)", re.IGNORECASE)


class _Ctx(Struct, frozen=True):
    now: datetime
    m: Mappings
    tz: tzinfo | None
    relative: bool  # "9 days ago" on screens; absolute dates in text that stays in the chart

    def when(self, value: datetime | str | None) -> str:
        return format_date(value, self.now, self.tz) if self.relative else format_moment(value, self.tz)

    def text(self, value: str) -> str:
        return clinician_text(value, self.now, self.m, self.tz)


class EvidenceRow(Struct, frozen=True, kw_only=True):
    """One line of an evidence table: what, the value as a clinician reads it, when, and where from."""

    what: str
    value: str
    date: str
    reference: str  # "Observation/123": the page links it, never shows it as text


class Action(Struct, frozen=True, kw_only=True):
    """One thing the clinician should do (or cannot yet check)."""

    rule: RuleId
    code: str
    status: Status
    severity: Severity
    verb: str  # "Hold", "Do not give", "Cannot check", "Order", "Review"
    object: str  # "azathioprine", "the MMR vaccine (live)", "the dose"
    reason: str  # "fever 38.6 °C today 06:00"
    summary: str  # one sentence < 140 characters: "Hold azathioprine — fever 38.6 °C today 06:00; contact …"
    detail: str  # plain language, the source named as clinicians cite it
    evidence: tuple[EvidenceRow, ...] = ()
    todo: tuple[str, ...] = ()  # the missing data, as things to record
    implicated: tuple[str, ...] = ()


class RuleLine(Struct, frozen=True, kw_only=True):
    """A rule's headline, for the page's list of checks."""

    rule: RuleId
    label: str
    status: Status
    words: str
    icon: str
    summary: str


class Verdict(Struct, frozen=True, kw_only=True):
    """The clinical message of one check, computed once, rendered everywhere."""

    status: Status  # the most urgent status over all rules
    tone: Tone
    icon: str
    words: str  # "Hold", "Cannot check", "Caution", "No action needed", "Does not apply"
    headline: str  # the first action's summary, or "No action needed — all 9 checks passed."
    basis: str  # when and on what data
    actions: tuple[Action, ...]
    passed: tuple[RuleLine, ...]  # rules with nothing to do (ok, not applicable), folded on the page
    rules: tuple[RuleLine, ...]  # every rule's headline, in rule order

    @property
    def holds(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.status is Status.HOLD)


def build_verdict(
    findings: list[Finding],
    record: PatientRecord | None,
    now: datetime,
    mappings: Mappings,
    tz: tzinfo | None = None,
    *,
    relative_dates: bool = True,
) -> Verdict:
    """The verdict over one patient's findings (pure: no I/O, no clock).

    `tz`: the EHR user's time zone when known (dates are shown in it; UTC otherwise).
    `relative_dates=False` for text that stays in the chart ("20 Nov 2026 06:00", not "today 06:00").
    """
    c = _Ctx(now, mappings, tz, relative_dates)
    ordered = sorted(
        findings,
        key=lambda f: (STATUS_RANK[f.status], SEVERITY_RANK[f.severity], RULE_IDS.index(f.rule), f.code),
    )
    by_finding = {id(f): _action(f, c) for f in ordered if f.status in ACTION_STATUSES}
    actions = tuple(by_finding.values())
    rules = tuple(_rule_line(rule, ordered, c, by_finding) for rule in RULE_IDS)
    passed = tuple(r for r in rules if r.status in (Status.OK, Status.NOT_APPLICABLE))
    basis = _basis(record, now, tz)
    if actions:
        first = actions[0]
        return Verdict(
            status=first.status, tone=TONE_OF[first.status], icon=ICON_OF[first.status],
            words=WORDS_OF[first.status],
            headline=first.summary, basis=basis,
            actions=actions, passed=passed, rules=rules,
        )
    ok = sum(1 for r in rules if r.status is Status.OK)
    if ok == 0:
        return Verdict(
            status=Status.NOT_APPLICABLE, tone="grey", icon=ICON_OF[Status.NOT_APPLICABLE], words="Does not apply",
            headline="No checks apply — not on azathioprine now or in the last 3 months.", basis=basis,
            actions=(), passed=passed, rules=rules,
        )
    skipped = len(rules) - ok
    headline = (
        f"No action needed — all {ok} checks passed."
        if not skipped
        else f"No action needed — {ok} checks passed, {skipped} do not apply."
    )
    return Verdict(
        status=Status.OK, tone="green", icon=ICON_OF[Status.OK], words="No action needed",
        headline=headline, basis=basis, actions=(), passed=passed, rules=rules,
    )


def action_of(
    f: Finding, now: datetime, m: Mappings, tz: tzinfo | None = None, *, relative_dates: bool = True
) -> Action:
    """One actionable finding as the clinician's action."""
    return _action(f, _Ctx(now, m, tz, relative_dates))


def _action(f: Finding, c: _Ctx) -> Action:
    verb, obj, reason, advice = _wording(f, c)
    head = f"{verb} {obj} — {reason}"
    summary = sentence(f"{head}; {advice}" if advice and len(head) + len(advice) < 134 else head)
    return Action(
        rule=f.rule, code=f.code, status=f.status, severity=f.severity, verb=verb, object=obj, reason=reason,
        summary=summary, detail=c.text(f.detail), evidence=_evidence_rows(f, c),
        todo=tuple(c.text(x).rstrip(".") for x in f.missing), implicated=f.implicated,
    )


def clinician_text(text: str, now: datetime, m: Mappings, tz: tzinfo | None = None) -> str:
    """Rule text for a clinician: display units and dates, sources cited by name, no ids or project files."""
    out = _SEVERITY_WORDS.sub("", text)
    if "/" in out:  # only text naming a resource can hold a FHIR id
        out = _REF_IN_PARENS.sub("", out)
        out = _REF_LAST_IN_PARENS.sub("", out)
        out = _REF_AS_SUBJECT.sub(_ref_noun, out)  # a reference as subject: "The order …"
        out = _REF_ANYWHERE.sub("", out)
    out = _RESOURCE_STATUS.sub(r", status \1", out)
    out = _PROJECT_FILES.sub(" ", out)
    if "Source: " in out:
        out = _SOURCE.sub(lambda mt: f"Source: {cite(mt.group(1), m) or mt.group(1)}", out)
    out = humanise_text(out, m, now, tz)
    out = _EMPTY_LEAD.sub("(", out)
    out = _EMPTY_TAIL.sub(")", out)
    out = _EMPTY_PARENS.sub("", out)
    out = _SPACE_BEFORE.sub(r"\1", out)
    return " ".join(out.split())


def _ref_noun(match: re.Match[str]) -> str:
    lead = match.group(1)
    noun = _NOUN.get(match.group(0)[len(lead):].split("/", 1)[0], "the resource")
    return lead + (noun[0].upper() + noun[1:] if lead != ": " else noun)


def evidence_rows(
    f: Finding, now: datetime, m: Mappings, tz: tzinfo | None = None, *, relative_dates: bool = True
) -> tuple[EvidenceRow, ...]:
    return _evidence_rows(f, _Ctx(now, m, tz, relative_dates))


def _evidence_rows(f: Finding, c: _Ctx) -> tuple[EvidenceRow, ...]:
    rows = []
    for e in f.evidence:
        rows.append(
            EvidenceRow(
                what=_sentence_case(c.text(_what(e))),
                value=humanise_quantity(e.value, c.m) if e.value else "",
                date=c.when(e.date) if e.date else "",
                reference=e.reference,
            )
        )
    return tuple(rows)


# --- wording ---------------------------------------------------------------------------------


def _wording(f: Finding, c: _Ctx) -> tuple[str, str, str, str | None]:
    """(verb, object, reason, advice) for an actionable finding."""
    m = c.m
    summary = c.text(f.summary).rstrip(".")
    if f.status is Status.CANNOT_EVALUATE:
        checks = m.display.rules[f.rule].checks
        if f.missing:
            need = c.text(f.missing[0]).rstrip(".")
            reason = need if need.lower().startswith(("no ", "not ", "missing")) else f"needs {need}"
        else:
            reason = _after_colon(summary)
        return "Cannot check", checks, reason, None
    primary = _primary(f)
    if f.rule == "vaccination-hold":
        vaccine = _vaccine_name(primary) or "planned"
        if f.status is Status.HOLD:
            stopped = any(_is_aza(e) and "status stopped" in e.description for e in f.evidence)
            reason = "azathioprine stopped less than 3 months ago" if stopped else "the patient is on azathioprine"
            return "Do not give", f"the {vaccine} vaccine (live)", reason, "discuss with the prescriber"
        return ("Ask the prescriber before", f"the {vaccine} vaccine",
                "not live, but the response may be reduced on azathioprine", None)
    if f.status is Status.HOLD and f.rule in ("infection-hold", "blood-counts", "liver", "kidney"):
        advice = "contact the prescriber" if f.rule == "infection-hold" else "discuss with the specialist"
        return "Hold", "azathioprine", _hold_reason(f, primary, summary, c), advice
    if f.rule == "interactions":
        drug = _name_after_colon(primary.description) if primary else None
        reason = f"it interacts with {drug}" if drug else _after_colon(summary)
        return ("Hold" if f.status is Status.HOLD else "Review"), "azathioprine", reason, _last_clause(summary)
    if f.rule == "monitoring-schedule":
        test = summary.split(" overdue", 1)[0] if " overdue" in summary else "the blood tests"
        when = c.when(primary.date) if primary and primary.date else "none on record"
        due = re.search(r"due every (\d+ days)", summary)
        reason = f"last one {when}" + (f"; due every {due.group(1)}" if due else "")
        return "Order", test, reason, None
    if f.rule == "tpmt" and primary is not None and primary.value:
        advice = _after_colon(summary).split(". ", 1)[0]
        return "Review", "the azathioprine dose", f"TPMT {primary.value.lower()}", advice
    if f.rule in ("dose", "tpmt"):
        return "Review", "the azathioprine dose", _after_colon(_strip_prefix(summary, "Azathioprine ")), None
    verb = "Hold" if f.status is Status.HOLD else "Review"
    return verb, "azathioprine", _lower_first(summary), None


def _hold_reason(f: Finding, primary: Evidence | None, summary: str, c: _Ctx) -> str:
    m = c.m
    if primary is None:
        return _lower_first(summary)
    when = c.when(primary.date) if primary.date else "date not recorded"
    if primary.value and primary.reference.startswith("Observation/"):
        if f.rule == "infection-hold":
            return f"fever {humanise_quantity(primary.value, m)} {when}"
        label = _what(primary)
        value = humanise_quantity(primary.normalised or primary.value, m)
        limit = _limit_words(label, m)
        on = "" if when.startswith(("today", "yesterday")) else "on "
        return f"{label} {value} {on}{when}" + (f", {limit}" if limit else "")
    name = _name_after_colon(primary.description)
    if primary.reference.startswith("Condition/") and name:
        return f"{name.lower()} recorded {when}"
    if primary.reference.startswith("MedicationRequest/") and name:
        return f"on {name} since {format_day(primary.date, c.tz)}" if primary.date else f"on {name}"
    return _lower_first(summary)


def _lower_first(text: str) -> str:
    """Lower-case a leading word unless it is an acronym ("WBC", "ALT")."""
    return text[0].lower() + text[1:] if len(text) > 1 and not text[1].isupper() else text


def _limit_words(label: str, m: Mappings) -> str | None:
    for spec in m.analytes.analytes.values():
        if spec.label == label and spec.threshold is not None:
            unit = m.units.dimensions[spec.dimension].canonical
            shown = decimals_of(f"{spec.threshold.value:g}")
            limit = format_quantity(spec.threshold.value, unit, m, recorded_decimals=shown)
            return f"{spec.threshold.direction} {limit}"
    return None


def _primary(f: Finding) -> Evidence | None:
    """The evidence the action is about: the first that is not the azathioprine order itself."""
    return next((e for e in f.evidence if not _is_aza(e)), f.evidence[0] if f.evidence else None)


def _is_aza(e: Evidence) -> bool:
    return e.description.startswith("azathioprine order")


def _vaccine_name(e: Evidence | None) -> str | None:
    if e is None:
        return None
    match = re.search(r"vaccine planned: (.+?) \((?:CVX|SNOMED|RxNorm|NDC|CPT|code)", e.description)
    if match is None:
        match = re.search(r"vaccine planned: ([^(,]+)", e.description)
    return match.group(1).strip() if match else None


def _name_after_colon(description: str) -> str | None:
    """'anti-infective order, status active: Amoxicillin 500 MG Oral Tablet (…)' → 'Amoxicillin 500 MG Oral Tablet'."""
    if ": " not in description:
        return None
    name = description.split(": ", 1)[1]
    return name.split(" (", 1)[0].strip() or None


def _what(e: Evidence) -> str:
    """'latest Neutrophils count (preliminary)' stays; 'WBC' stays; strips trailing resource detail."""
    return e.description


def _after_colon(text: str) -> str:
    return _lower_first(text.split(": ", 1)[1] if ": " in text else text)


def _last_clause(text: str) -> str | None:
    if ": " not in text:
        return None
    return text.rsplit(": ", 1)[1].rstrip(".")


def _strip_prefix(text: str, prefix: str) -> str:
    return text[len(prefix):] if text.startswith(prefix) else text


def _sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _rule_line(rule: RuleId, ordered: list[Finding], c: _Ctx, actions: dict[int, Action]) -> RuleLine:
    mine = [f for f in ordered if f.rule == rule]  # most urgent first
    label = c.m.display.rules[rule].label
    if not mine:
        st = Status.CANNOT_EVALUATE
        return RuleLine(rule=rule, label=label, status=st, words=WORDS_OF[st], icon=ICON_OF[st],
                        summary="This check returned no result, so it cannot be relied on.")
    head = mine[0]
    summary = (
        actions[id(head)].summary if id(head) in actions else sentence(c.text(head.summary))
    )
    return RuleLine(rule=rule, label=label, status=head.status, words=WORDS_OF[head.status],
                    icon=ICON_OF[head.status], summary=summary)


def _basis(record: PatientRecord | None, now: datetime, tz: tzinfo | None) -> str:
    when = f"Checked {format_day(now, tz)} {now.astimezone(tz).strftime('%H:%M') if tz else now.strftime('%H:%M')}"
    if record is None:
        return when + "."
    results = len(record.measurements)
    orders = len(record.medication_orders)
    latest = max((x.effective for x in record.measurements if x.effective is not None), default=None)
    parts = [f"{results} result{'s' if results != 1 else ''}", f"{orders} medication order{'s' if orders != 1 else ''}"]
    if record.vaccines:
        parts.append(f"{len(record.vaccines)} vaccination record{'s' if len(record.vaccines) != 1 else ''}")
    if record.conditions:
        parts.append(f"{len(record.conditions)} condition{'s' if len(record.conditions) != 1 else ''}")
    text = f"{when} on {', '.join(parts)}"
    if latest is not None:
        text += f"; latest result {format_date(latest, now, tz)}"
    return text + "."
