"""The clinician's page as typed view models: what page.html shows, built from a check's result.

Pure: no request, no session store, no HTTP. `page_model` turns a `service.CheckResult` (and the launch's
tokens, identity and the outcome of a write) into one `PageModel` whose fields are the template's variables.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from azaguard import service
from azaguard.alerts import ExistingAlert, WriteOutcome
from azaguard.display import format_date, format_day
from azaguard.findings import STATUS_RANK, Severity, Status
from azaguard.mappings import Mappings
from azaguard.registry import label
from azaguard.smart.launch import Identity, TokenSet
from azaguard.verdict import ACTION_STATUSES, Action, RuleLine, Verdict
from azaguard.web.charts import Chart, trend_charts


@dataclass(frozen=True)
class RuleGroup:
    """A rule that needs action, with its actions (most urgent first)."""

    rule: str
    label: str
    status: str
    icon: str
    words: str
    actions: list[Action]


@dataclass(frozen=True)
class Banner:
    """Who the page is about (shown when the EHR asks for the banner, or does not say)."""

    name: str
    birth_date: str
    gender: str
    ref: str | None


@dataclass(frozen=True)
class ExistingRow:
    """An azaguard alert already in the chart."""

    kind: str
    rule: str
    status: str
    summary: str
    date: str
    reference: str


@dataclass(frozen=True)
class PlannedRow:
    """An alert writing would add."""

    kind: str
    rule: str


@dataclass(frozen=True)
class WrittenRow:
    """What one write did."""

    kind: str
    rule: str
    outcome: str
    words: str
    reference: str
    error: str
    note: str


@dataclass(frozen=True)
class WriteReport:
    """The outcome of a write, kept in the launch until the page after its redirect shows it (once)."""

    rows: list[WrittenRow]
    failed: bool  # some write failed
    retry_helps: bool  # writing again could complete a failed one


@dataclass(frozen=True)
class PageModel:
    """Every variable page.html reads."""

    banner: Banner | None
    identity: Identity | None
    user_name: str | None
    verdict: Verdict
    groups: list[RuleGroup]
    passed: tuple[RuleLine, ...]
    warnings: list[str]
    notes: list[str]
    existing_alerts: list[ExistingRow]
    existing_problem: str | None
    to_add: list[PlannedRow]
    written: list[WrittenRow] | None
    failed_writes: bool
    retry_helps: bool
    charts: list[Chart]
    can_write: bool
    session_note: str | None
    csrf_token: str
    ctx: str
    fhir_base: str
    mappings_version: str

    def context(self) -> dict[str, Any]:
        """The template's variables (one level: the rows stay typed)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def zone_of(identity: Identity | None) -> tzinfo | None:
    """The EHR user's time zone (OpenID Connect `zoneinfo`), when the EHR says it and it is known."""
    if identity is None or not identity.zoneinfo:
        return None
    try:
        return ZoneInfo(identity.zoneinfo)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def rule_groups(verdict: Verdict) -> list[RuleGroup]:
    """Rules needing action, sorted hold → cannot-evaluate → caution (then by their most urgent action)."""
    groups = []
    for line in verdict.rules:
        if line.status not in ACTION_STATUSES:
            continue
        actions = [a for a in verdict.actions if a.rule == line.rule]
        if not actions:  # a rule with no result at all: cannot be relied on
            actions = [_no_result_action(line)]
        groups.append(RuleGroup(line.rule, line.label, line.status.value, line.icon, line.words, actions))
    first: dict[str, int] = {a.rule: i for i, a in reversed(list(enumerate(verdict.actions)))}
    return sorted(groups, key=lambda g: (STATUS_RANK[Status(g.status)], first.get(g.rule, 99)))


def _no_result_action(line: RuleLine) -> Action:
    return Action(
        rule=line.rule, code="no-result", status=Status.CANNOT_EVALUATE, severity=Severity.MODERATE,
        verb="Cannot check", object=line.label.lower(), reason="the check returned no result", advice=None,
        summary=line.summary, detail="This check returned no result, so it cannot be relied on; check by hand.",
    )


def session_note(tokens: TokenSet, now: datetime, tz: tzinfo | None) -> str | None:
    """When the session cannot renew itself: when it ends and what to do then (None: it renews itself)."""
    if tokens.refresh_token or tokens.expires_at is None:
        return None
    minutes = max(0, int((tokens.expires_at - now).total_seconds() // 60))
    left = "less than a minute" if minutes < 1 else f"{minutes} minute{'s' if minutes != 1 else ''}"
    return (
        f"The EHR did not allow this session to be renewed: it ends {format_date(tokens.expires_at, now, tz)} "
        f"(in {left}). To keep working after that, open azaguard again from the patient's chart in the EHR."
    )


def banner(result: service.CheckResult) -> Banner:
    p = result.patient
    return Banner(
        name=p.name if p and p.name else "(name not recorded)",
        birth_date=format_day(p.birth_date) if p and p.birth_date else "(not recorded)",
        gender=p.gender if p and p.gender else "gender not recorded",
        ref=result.patient_ref,
    )


_WRITE_WORDS = {
    "created": "Created",
    "exists": "Already there",
    "updated": "Updated",
    "closed": "Closed (hold cleared)",
    "failed": "Failed",
    "would-write": "Would add",
}
_KIND = {"DetectedIssue": "Alert (DetectedIssue)", "Flag": "Flag", "Device": "azaguard device record"}


def existing_row(a: ExistingAlert, now: datetime, tz: tzinfo | None) -> ExistingRow:
    return ExistingRow(
        kind=_KIND.get(a.resource_type, a.resource_type), rule=label(a.rule), status=a.status, summary=a.summary,
        date=format_date(a.date, now, tz) if a.date else "", reference=a.reference,
    )


def write_report(writes: list[WriteOutcome]) -> WriteReport:
    """What a write did, as the page after its redirect shows it."""
    rows = [
        WrittenRow(
            kind=_KIND.get(w.resource_type, w.resource_type), rule=label(w.rule), outcome=w.outcome,
            words=_WRITE_WORDS.get(w.outcome, w.outcome), reference=w.reference or "", error=w.error or "",
            note=w.note or "",
        )
        for w in writes
    ]
    failed = [w for w in writes if w.outcome == "failed"]
    return WriteReport(rows=rows, failed=bool(failed), retry_helps=any(w.retryable for w in failed))


def page_model(
    result: service.CheckResult, *, mappings: Mappings, tokens: TokenSet, identity: Identity | None,
    user_name: str | None, written: WriteReport | None, can_write: bool, csrf_token: str, ctx: str,
    fhir_base: str, now: datetime,
) -> PageModel:
    """The clinician's page for a check's result (its verdict is always built by service.check_on_server)."""
    verdict = result.verdict
    if verdict is None:
        raise ValueError("the check built no verdict")
    tz = zone_of(identity)
    return PageModel(
        banner=banner(result) if tokens.need_patient_banner else None,
        identity=identity,
        user_name=user_name,
        verdict=verdict,
        groups=rule_groups(verdict),
        passed=verdict.passed,
        warnings=result.warnings,
        notes=result.notes,
        existing_alerts=[existing_row(a, result.evaluated_at, tz) for a in result.existing_alerts],
        existing_problem=result.existing_alerts_problem,
        to_add=[PlannedRow(_KIND.get(w.resource_type, w.resource_type), label(w.rule))
                for w in result.writes if w.outcome == "would-write"],
        written=written.rows if written is not None else None,
        failed_writes=written is not None and written.failed,
        retry_helps=written is not None and written.retry_helps,
        charts=trend_charts(result.record, mappings, tz),
        can_write=can_write,
        session_note=session_note(tokens, now, tz),
        csrf_token=csrf_token,
        ctx=ctx,
        fhir_base=fhir_base,
        mappings_version=result.mappings_version,
    )
