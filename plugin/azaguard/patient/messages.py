"""The patient's messages over the findings: what to do and how soon, most urgent first.

Each actionable finding is worded by the one wording layer for the patient audience
(`wording.Words(..., audience="patient").message(f, content)`, the table `wording.TABLES["patient"]`): its
placeholders are filled with the facts the rule stated (the finding's trigger, subject and therapy: the
temperature and when it was taken, the vaccine and its date, the test and its date) — the same facts the
clinician's wording renders, never a finding's text and never the record re-read. A fact the finding does not
state gets patient.json's neutral fallback words. A patient is never told to stop or change the medicine: the
words tell whom to contact and how soon. patient.json keeps the rest of the patient's words (urgency labels,
the check-in, the leaflet's guidance, "nothing to act on").
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from msgspec import Struct

from azaguard import plainwords
from azaguard.findings import RULE_IDS, STATUS_RANK, Finding, Status
from azaguard.mappings import Mappings
from azaguard.patient.content import PatientContent, Wording
from azaguard.verdict import ACTION_STATUSES
from azaguard.wording import Urgency, Words, fill


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
    said = Words(now, mappings, tz, "relative", "patient")
    out: list[PatientMessage] = []
    seen: set[str] = set()
    for f in ordered:
        told = said.message(f, content)
        if told.general and any(x.rule == f.rule for x in out):
            continue  # a rule's general words add nothing to a message already about it
        level = content.urgencies[told.urgency]
        message = PatientMessage(urgency=told.urgency, label=level.label, tone=level.tone, rule=f.rule, code=f.code,
                                 text=told.text, todo=told.todo)
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
                     {"date": plainwords.day(when, now, tz)})
    return PatientMessage(urgency=message.urgency, label=message.label, tone=message.tone, text=message.text,
                          todo=message.todo, rule="monitoring-schedule", code="next-due")


def _plain(
    wording: Wording, urgency: Urgency, content: PatientContent, more: dict[str, str] | None = None
) -> PatientMessage:
    level = content.urgencies[urgency]
    facts = {"contact": content.contact, **(more or {})}
    return PatientMessage(urgency=urgency, label=level.label, tone=level.tone,
                          text=fill(wording.text, facts, content.fallbacks),
                          todo=fill(wording.todo, facts, content.fallbacks))
