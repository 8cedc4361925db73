"""What a patient needs, in words, and how urgent it is: one place the scan asks.

The "needs action" wording is azaguard.verdict's (one clinical message on every surface): each action's
summary (`verdict.action_of`), most urgent first, dates absolute since reports are kept. Every engine goes
through a CheckResult, and the wording is made from its findings and evaluation time, so the engines match.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from azaguard.evaluate import CheckResult
from azaguard.findings import RULE_IDS, SEVERITY_RANK, STATUS_RANK, Finding
from azaguard.mappings import Mappings
from azaguard.verdict import action_of, build_verdict

NO_ACTION_RANK = 99


def headlines(findings: Sequence[Finding]) -> dict[str, str]:
    """Each rule's most urgent status (findings come sorted most urgent first within a rule)."""
    out: dict[str, str] = {}
    for f in sorted(findings, key=lambda f: (STATUS_RANK[f.status], SEVERITY_RANK[f.severity])):
        out.setdefault(f.rule, f.status.value)
    return {rule: out[rule] for rule in RULE_IDS if rule in out}


def actions(
    findings: Sequence[Finding], text: Callable[[Finding], str]
) -> list[dict[str, Any]]:
    """The findings that need someone to act (hold, cannot-evaluate, caution), most urgent first, each
    in `text`'s words."""
    wanted = [f for f in findings if f.actionable]
    wanted.sort(key=lambda f: (STATUS_RANK[f.status], SEVERITY_RANK[f.severity], RULE_IDS.index(f.rule), f.code))
    return [
        {"rule": f.rule, "code": f.code, "status": f.status.value, "severity": f.severity.value, "text": text(f)}
        for f in wanted
    ]


def urgency(findings: Sequence[Finding]) -> int:
    """Smaller is more urgent: status rank × 10 + severity rank; NO_ACTION_RANK when nothing to do."""
    ranks = [STATUS_RANK[f.status] * 10 + SEVERITY_RANK[f.severity] for f in findings if f.actionable]
    return min(ranks, default=NO_ACTION_RANK)


def verdict(result: CheckResult, mappings: Mappings) -> tuple[list[dict[str, Any]], str]:
    """The actions (most urgent first) and the verdict in words, for one checked patient: the chart's wording
    (absolute dates: reports are kept), and without actions the verdict's headline, as the page says it."""
    acts = actions(
        result.findings, lambda f: action_of(f, result.evaluated_at, mappings, relative_dates=False).summary
    )
    if not acts:
        chart = build_verdict(result.findings, result.record, result.evaluated_at, mappings, relative_dates=False)
        return acts, chart.headline
    return acts, "; ".join(a["text"] for a in acts)
