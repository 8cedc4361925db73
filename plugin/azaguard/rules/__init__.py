"""The rules engine: pure functions (PatientRecord, Mappings, now) -> list[Finding]."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from azaguard.findings import RULE_IDS, Finding, Severity, Status, sort_findings
from azaguard.mappings import Mappings
from azaguard.record import PatientRecord

Rule = Callable[[PatientRecord, Mappings, datetime], list[Finding]]


def _rules() -> list[Rule]:
    # Imported here so each family stays an independent module.
    from azaguard.rules import dosing, infection, labs, monitoring, vaccination

    return [
        vaccination.evaluate,
        infection.evaluate,
        labs.blood_counts,
        labs.liver,
        labs.kidney,
        monitoring.evaluate,
        dosing.dose,
        dosing.tpmt,
        dosing.interactions,
    ]


def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """Every rule's findings, at least one per rule id, most urgent first within a rule.

    A rule that raises is reported as cannot-evaluate rather than crashing the whole check:
    one broken rule must not hide the others' holds.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings: list[Finding] = []
    for rule in _rules():
        try:
            findings.extend(rule(record, mappings, now))
        except Exception as exc:  # fail safe: reported as cannot-evaluate below
            findings.append(_crashed(rule, exc, mappings))
    present = {f.rule for f in findings}
    for rule_id in RULE_IDS:
        if rule_id not in present:
            findings.append(
                Finding(
                    rule=rule_id, code="no-result", status=Status.CANNOT_EVALUATE, severity=Severity.MODERATE,
                    summary="Rule produced no result", detail="Internal: the rule returned nothing.",
                    mappings_version=mappings.version,
                )
            )
    return sort_findings(findings)


def _crashed(rule: Rule, exc: Exception, mappings: Mappings) -> Finding:
    rule_id = rule.rule_id  # type: ignore[attr-defined]
    return Finding(
        rule=rule_id, code="internal-error", status=Status.CANNOT_EVALUATE, severity=Severity.HIGH,
        summary="Rule failed on this record; evaluate manually",
        detail=f"The rule raised {type(exc).__name__}: {exc}",
        missing=("a record this rule can read",),
        mappings_version=mappings.version,
    )

