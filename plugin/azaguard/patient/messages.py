"""The patient's wording table over the findings: what to do and how soon, most urgent first.

Each actionable finding is matched by rule id and finding code (or status) to a row of mappings/patient.json;
the row's placeholders are filled with facts read from the record through the finding's evidence
references (the temperature and when it was taken, the vaccine and its date, the test and its date), never
from a finding's text. A fact the record does not hold gets the row's neutral fallback words. A patient is
never told to stop or change the medicine: the rows tell whom to contact and how soon.
"""

from __future__ import annotations

import string
from datetime import datetime, timedelta, tzinfo
from typing import Any

from msgspec import Struct

from azaguard.display import format_quantity
from azaguard.findings import RULE_IDS, STATUS_RANK, Finding, Status
from azaguard.mappings import Mappings
from azaguard.patient import words
from azaguard.patient.content import MessageRow, PatientContent, Urgency, Wording
from azaguard.record import ConditionEntry, Measurement, MedicationOrder, PatientRecord, VaccineEvent
from azaguard.registry import SPEC
from azaguard.verdict import ACTION_STATUSES

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
        message = _message(row, _facts(f, record, now, mappings, content, tz), content, f)
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


# --- facts, from the record by the evidence's references ------------------------------------------


def _facts(
    f: Finding, record: PatientRecord, now: datetime, m: Mappings, content: PatientContent, tz: tzinfo | None
) -> dict[str, str]:
    refs = [e.reference for e in f.evidence]
    # A rule without patient words for what it checks (a rule added since) is named as clinicians name it.
    check = content.checks.get(f.rule) or (SPEC[f.rule].checks if f.rule in SPEC else "")
    threshold = m.policy.infection.fever_threshold_cel.value
    facts: dict[str, str] = {"contact": content.contact, "check": check,
                             "threshold": format_quantity(threshold, "Cel", m)}
    measured = [x for x in record.measurements if x.ref in refs]
    temps = [x for x in measured if x.analyte == "temperature" and x.value is not None and x.effective]
    if temps:
        peak = max(temps, key=lambda x: (x.value or 0.0))
        facts["temperature"] = format_quantity(peak.value or 0.0, peak.unit, m)
        facts["when"] = words.when(peak.effective, now, tz) if peak.effective else ""
    facts.update(_test_facts(f, measured, now, content, tz))
    conditions = [c for c in record.conditions if c.ref in refs]
    if conditions:
        facts["condition"] = ", ".join(dict.fromkeys(_condition_name(c) for c in conditions))
    drugs = [o for o in record.medication_orders if o.ref in refs and o.drugs.azathioprine is None]
    if drugs:
        facts["drug"] = ", ".join(dict.fromkeys(_drug_name(o) for o in drugs))
    vaccines = [v for v in record.vaccines if v.ref in refs]
    if vaccines:
        v = vaccines[0]
        facts["vaccine"] = words.vaccine_name(v.vaccine.label)
        facts["planned"] = _vaccine_when(v, now, tz)
    return facts


def _test_facts(
    f: Finding, measured: list[Measurement], now: datetime, content: PatientContent, tz: tzinfo | None
) -> dict[str, str]:
    if f.rule != "monitoring-schedule":
        return {}
    key = f.code.split("-", 1)[0]  # the monitoring group of the finding code ("cbc-overdue" → "cbc")
    facts: dict[str, str] = {}
    if key in content.tests:
        facts["test"] = content.tests[key].name
    dated = [x for x in measured if x.effective is not None]
    if dated:
        latest = max(dated, key=lambda x: x.effective or now)
        facts["date"] = words.when(latest.effective, now, tz) if latest.effective else ""
    return facts


def _vaccine_when(v: VaccineEvent, now: datetime, tz: tzinfo | None) -> str:
    if v.date is None:
        return ""
    date = words.when(v.date, now, tz)
    phrase = _VACCINE_WHEN.get(v.source, "ordered {date}")
    return phrase.format(date=date)


def _condition_name(c: ConditionEntry) -> str:
    return c.concept.label


def _drug_name(order: MedicationOrder) -> str:
    hits = [h for h in order.drugs.hits if h.group != "azathioprine"]
    if hits:
        return sorted(hits, key=lambda h: (h.kind != "code", h.key))[0].key
    return order.medication.label if order.medication else ""
