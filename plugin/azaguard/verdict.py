"""Findings → the clinician's message: what to do, most urgent first.

`build_verdict(findings, record, now, mappings, tz)` is a pure function computed once per check and
rendered by every surface: the page, the CLI text and JSON reports, the DetectedIssue/Flag text and
CDS Hooks cards. Each action is made by the wording layer (azaguard.wording) from the finding's facts:
verb and object ("Hold azathioprine", "Do not give the MMR vaccine (live)", "Cannot check the dose"),
the reason and advice. A verdict without actions says so and on what data ("No action needed — all 9
checks passed"). Nothing here reads a rule's text to find out what happened.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import Literal

from msgspec import Struct

from azaguard.display import format_date, format_day
from azaguard.findings import RULE_IDS, SEVERITY_RANK, STATUS_RANK, Finding, RuleId, Status
from azaguard.mappings import Mappings
from azaguard.record import PatientRecord
from azaguard.registry import SPEC
from azaguard.unidentified import unidentified
from azaguard.wording import Action, DateStyle, EvidenceRow, Words

__all__ = ["ACTION_STATUSES", "Action", "EvidenceRow", "RuleLine", "Verdict", "action_of", "build_verdict"]

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

class RuleLine(Struct, frozen=True, kw_only=True):
    """A rule's headline, for the page's list of checks."""

    rule: RuleId
    label: str
    status: Status
    words: str
    icon: str
    summary: str


class Said(Struct, frozen=True, kw_only=True):
    """A finding in the clinician's words (the wording layer's): its line and its explanation."""

    summary: str
    detail: str


class Verdict(Struct, frozen=True, kw_only=True):
    """The clinical message of one check, computed once, rendered everywhere."""

    status: Status  # the most urgent status over all rules
    tone: Tone
    icon: str
    words: str  # "Hold", "Cannot check", "Caution", "No action needed", "Does not apply"
    headline: str  # the first action's summary, or "No action needed — all 10 checks passed."
    basis: str  # when and on what data
    actions: tuple[Action, ...]
    passed: tuple[RuleLine, ...]  # rules with nothing to do (ok, not applicable), folded on the page
    rules: tuple[RuleLine, ...]  # every rule's headline, in rule order
    # Medication and vaccine entries the terminology could not identify at all (shown, never silence).
    unidentified: tuple[str, ...] = ()
    # Each finding (in the order given) in words: its one line and its explanation (JSON `findings[]`).
    said: tuple[Said, ...] = ()

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
    c = Words(now, mappings, tz, _style(relative_dates))
    ordered = sorted(
        findings,
        key=lambda f: (STATUS_RANK[f.status], SEVERITY_RANK[f.severity], RULE_IDS.index(f.rule), f.code),
    )
    by_finding = {id(f): c.action(f) for f in ordered if f.status in ACTION_STATUSES}
    said_by = {id(f): Said(summary=a.summary, detail=a.detail) if (a := by_finding.get(id(f))) is not None
               else Said(summary=(w := c.said(f))[0], detail=w[1]) for f in findings}
    said = tuple(said_by[id(f)] for f in findings)
    actions = tuple(by_finding.values())
    rules = tuple(_rule_line(rule, ordered, said_by) for rule in RULE_IDS)
    passed = tuple(r for r in rules if r.status in (Status.OK, Status.NOT_APPLICABLE))
    unknown = unidentified(record, mappings) if record is not None else ()
    basis = _basis(record, now, tz) + (f" Could not identify: {'; '.join(unknown)}." if unknown else "")
    if actions:
        first = actions[0]
        return Verdict(
            status=first.status, tone=TONE_OF[first.status], icon=ICON_OF[first.status],
            words=WORDS_OF[first.status],
            headline=first.summary, basis=basis,
            actions=actions, passed=passed, rules=rules, unidentified=unknown, said=said,
        )
    ok = sum(1 for r in rules if r.status is Status.OK)
    if ok == 0:
        patient = record.patient if record is not None else None
        why = "not on azathioprine now or in the last 3 months"
        if patient is not None and patient.deceased:  # no monitoring, dose or lab alert for the dead
            why = "the patient is deceased" + (f" ({c.when(patient.deceased_on)})" if patient.deceased_on else "")
        return Verdict(
            status=Status.NOT_APPLICABLE, tone="grey", icon=ICON_OF[Status.NOT_APPLICABLE], words="Does not apply",
            headline=f"No checks apply — {why}.", basis=basis,
            actions=(), passed=passed, rules=rules, unidentified=unknown,
        )
    skipped = len(rules) - ok
    headline = (
        f"No action needed — all {ok} checks passed."
        if not skipped
        else f"No action needed — {ok} checks passed, {skipped} do not apply."
    )
    return Verdict(
        status=Status.OK, tone="green", icon=ICON_OF[Status.OK], words="No action needed",
        headline=headline, basis=basis, actions=(), passed=passed, rules=rules, unidentified=unknown, said=said,
    )


def _style(relative_dates: bool) -> DateStyle:
    return "relative" if relative_dates else "absolute"


def action_of(
    f: Finding, now: datetime, m: Mappings, tz: tzinfo | None = None, *, relative_dates: bool = True
) -> Action:
    """One actionable finding as the clinician's action."""
    return Words(now, m, tz, _style(relative_dates)).action(f)


def _rule_line(rule: RuleId, ordered: list[Finding], said: dict[int, Said]) -> RuleLine:
    mine = [f for f in ordered if f.rule == rule]  # most urgent first
    label = SPEC[rule].label
    if not mine:
        st = Status.CANNOT_EVALUATE
        return RuleLine(rule=rule, label=label, status=st, words=WORDS_OF[st], icon=ICON_OF[st],
                        summary="This check returned no result, so it cannot be relied on.")
    head = mine[0]
    summary = said[id(head)].summary
    return RuleLine(rule=rule, label=label, status=head.status, words=WORDS_OF[head.status],
                    icon=ICON_OF[head.status], summary=summary)


def _basis(record: PatientRecord | None, now: datetime, tz: tzinfo | None) -> str:
    when = f"Checked {format_day(now, tz)} {now.astimezone(tz).strftime('%H:%M') if tz else now.strftime('%H:%M')}"
    if record is None:
        return when + "."
    results = len(record.measurements)
    orders = len(record.medicine_uses)
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
