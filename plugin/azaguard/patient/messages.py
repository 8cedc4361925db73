"""The patient's wording table over the findings: what to do and how soon, most urgent first.

Each actionable finding is matched by rule id and finding code (or status) to a row of mappings/patient.json;
the row's placeholders are filled with the facts the rule stated (the finding's trigger and subject: the
temperature and when it was taken, the vaccine and its date, the test and its date) — the same facts the
clinician's wording (azaguard.wording) renders — never from a finding's text. A fact the finding does not
state gets the row's neutral fallback words. A patient is never told to stop or change the medicine: the rows
tell whom to contact and how soon.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, tzinfo
from typing import Any

from msgspec import Struct

from azaguard.display import format_quantity
from azaguard.fhirtypes import dates
from azaguard.findings import RULE_IDS, STATUS_RANK, Finding, Status
from azaguard.mappings import Mappings
from azaguard.patient import words
from azaguard.patient.content import MessageRow, PatientContent, Urgency, Wording
from azaguard.record import PatientRecord
from azaguard.registry import SPEC
from azaguard.verdict import ACTION_STATUSES
from azaguard.wording import Words

_VACCINE_WHEN = {
    "ImmunizationRecommendation": "due {date}",
    "Immunization": "given {date}",
}


class PatientMessage(Struct, frozen=True, kw_only=True):
    """One thing to tell the patient: what we found, what to do, and how soon."""

    urgency: Urgency
    label: str  # "Today"
    tone: str  # red / amber / grey / green (always shown with the label's words)
    text: str
    todo: str
    rule: str | None = None
    code: str | None = None

    @property
    def sentence(self) -> str:
        return f"{self.text} {self.todo}"


def patient_messages(
    findings: list[Finding],
    record: PatientRecord,
    now: datetime,
    mappings: Mappings,
    content: PatientContent,
    tz: tzinfo | None = None,
    due: dict[str, datetime] | None = None,
) -> list[PatientMessage]:
    """The patient's messages over one check's findings; "nothing to act on" only with positive evidence
    (some check passed and none needs action), else "not on azathioprine" when nothing applies.

    `due`: when each monitoring group's next test falls due (rules.monitoring.next_due): the earliest gives
    "your next blood test is due by …" unless a message already speaks of the tests."""
    ordered = sorted(
        (f for f in findings if f.status in ACTION_STATUSES),
        key=lambda f: (STATUS_RANK[f.status], RULE_IDS.index(f.rule), f.code),
    )
    out: list[PatientMessage] = []
    seen: set[str] = set()
    for f in ordered:
        row = next((r for r in content.messages if r.matches(f.rule, f.code, f.status)), None)
        if row is None or (row.status is not None and any(x.rule == f.rule for x in out)):
            continue  # a rule's general words add nothing to a message already about it
        message = _message(row, _facts(f, now, mappings, content, tz), content, f)
        if message.sentence not in seen:  # two findings may tell the patient the same thing
            seen.add(message.sentence)
            out.append(message)
    if not out:
        if any(f.status is Status.OK for f in findings):
            out.append(_plain(content.nothing_to_do, "info", content))
        else:
            return [_plain(content.not_on_medicine, "next-visit", content)]
    if due and not any(m.rule == "monitoring-schedule" for m in out):
        out.append(_next_test(min(due.values()), now, content, tz))
    return sorted(out, key=lambda m: content.urgency_rank(m.urgency))


def _next_test(when: datetime, now: datetime, content: PatientContent, tz: tzinfo | None) -> PatientMessage:
    n = content.next_test
    soon = when - now <= timedelta(days=n.soon_days)
    message = _plain(n.due_now if when <= now else n.due, "week" if soon else "info", content,
                     {"date": words.day(when, now, tz)})
    return PatientMessage(urgency=message.urgency, label=message.label, tone=message.tone, text=message.text,
                          todo=message.todo, rule="monitoring-schedule", code="next-due")


def _plain(
    wording: Wording, urgency: Urgency, content: PatientContent, more: dict[str, str] | None = None
) -> PatientMessage:
    level = content.urgencies[urgency]
    facts = {"contact": content.contact, **(more or {})}
    return PatientMessage(urgency=urgency, label=level.label, tone=level.tone,
                          text=fill(wording.text, facts, content), todo=fill(wording.todo, facts, content))


def _message(row: MessageRow, facts: dict[str, str], content: PatientContent, f: Finding) -> PatientMessage:
    level = content.urgencies[row.urgency]
    return PatientMessage(urgency=row.urgency, label=level.label, tone=level.tone, rule=f.rule, code=f.code,
                          text=fill(row.text, facts, content), todo=fill(row.todo, facts, content))


def fill(template: str, facts: dict[str, str], content: PatientContent) -> str:
    """The template with its facts; a fact the record does not hold gets the content's fallback words."""
    values: dict[str, Any] = {}
    for _, name, _, _ in string.Formatter().parse(template):
        if name:
            values[name] = facts.get(name) or content.fallbacks.get(name, "")
    text = template.format(**values)
    return " ".join(text.split())


# --- facts, from the finding's own facts (trigger, subject) -----------------------------------------


def _facts(f: Finding, now: datetime, m: Mappings, content: PatientContent, tz: tzinfo | None) -> dict[str, str]:
    """The placeholders in the patient's words, from the facts the rule stated (azaguard.findings: the
    trigger's concept, quantity, time and record; the subject): the same facts the clinician's wording
    (azaguard.wording) renders, with values shown by it and times as a patient says them."""
    # A rule without patient words for what it checks (a rule added since) is named as clinicians name it.
    check = content.checks.get(f.rule) or (SPEC[f.rule].checks if f.rule in SPEC else "")
    shown = Words(now, m, tz)
    threshold = m.policy.infection.fever_threshold_cel.value
    facts: dict[str, str] = {"contact": content.contact, "check": check,
                             "threshold": format_quantity(threshold, "Cel", m)}
    trig = f.trigger
    at = _instant(trig.at) if trig is not None else None
    named = f.subject or (trig.concept if trig is not None else "")
    if trig is not None and trig.quantity is not None and f.rule == "infection-hold":
        facts["temperature"] = shown.quantity(trig.quantity)
    if at is not None:
        facts["when"] = facts["date"] = words.when(at, now, tz)
    if f.rule == "monitoring-schedule":
        key = f.code.split("-", 1)[0]  # the monitoring group of the finding code ("cbc-overdue" → "cbc")
        facts["test"] = content.tests[key].name if key in content.tests else ""
    elif f.rule == "vaccination-hold" and trig is not None:
        facts["vaccine"] = words.vaccine_name(trig.concept)
        if at is not None:
            kind = (trig.reference or "").split("/", 1)[0]
            facts["planned"] = _VACCINE_WHEN.get(kind, "ordered {date}").format(date=facts["date"])
    elif named:
        facts["condition"] = facts["drug"] = named
    return facts


def _instant(value: str | None) -> datetime | None:
    return dates.zoned(value)  # a date without a zone is not placed in a day
