"""The rules engine: pure functions (PatientRecord, Mappings, now) -> list[Finding], one per registry entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import import_module

from msgspec.structs import replace

from azaguard.findings import RULE_IDS, Finding, RuleId, Severity, Status, sort_findings
from azaguard.mappings import Mappings
from azaguard.record import PatientRecord
from azaguard.registry import RULES, RuleSpec
from azaguard.rules.common import therapy, therapy_fact

Rule = Callable[[PatientRecord, Mappings, datetime], list[Finding]]
_log = logging.getLogger(__name__)


def load(spec: RuleSpec) -> Rule:
    """The registry entry's function ("module:attribute")."""
    module, attr = spec.function.split(":", 1)
    fn: Rule = getattr(import_module(module), attr)
    return fn


@cache
def _rules() -> tuple[tuple[RuleId, Rule], ...]:
    # Imported on first use so each family stays an independent module.
    return tuple((spec.id, load(spec)) for spec in RULES)


def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """Every rule's findings, at least one per rule id, most urgent first within a rule.

    A rule that raises is reported as cannot-evaluate rather than crashing the whole check:
    one broken rule must not hide the others' holds.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    findings: list[Finding] = []
    for rule_id, rule in _rules():
        try:
            findings.extend(rule(record, mappings, now))
        except Exception as exc:  # fail safe: cannot-evaluate for the user, the traceback for whoever fixes it
            _log.exception("rule %s failed on this record (%s); reported as cannot-evaluate", rule_id,
                           type(exc).__name__)
            findings.append(_crashed(rule_id, exc, mappings))
    if record.unread:
        findings = _unread(findings, record, mappings)
    # Every finding carries the therapy state it was judged on (the wording says "stopped", "starting" …).
    fact = therapy_fact(therapy(record, mappings, now))
    if fact is not None:
        findings = [f if f.therapy is not None else replace(f, therapy=fact) for f in findings]
    present = {f.rule for f in findings}
    for rule_id in RULE_IDS:
        if rule_id not in present:
            findings.append(
                Finding(
                    rule=rule_id, code="no-result", status=Status.CANNOT_EVALUATE, severity=Severity.MODERATE,
                    reason="the check returned no result", mappings_version=mappings.version,
                )
            )
    return sort_findings(findings)


_THERAPY_TYPES = frozenset({
    "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration", "Medication",
    "Patient",
})
# What each rule reads besides the therapy (every rule reads that; registry RuleSpec.reads): a failed read of one
# of these types, or of an unknown type, leaves the rule unable to say ok.
RULE_READS: dict[str, frozenset[str]] = {spec.id: frozenset(spec.reads) for spec in RULES}  # the registry's


def _unread(findings: list[Finding], record: PatientRecord, mappings: Mappings) -> list[Finding]:
    """Rules that needed data a batch entry failed to give: their ok is withdrawn (and their not-applicable, when
    the therapy itself may be in the missing data) and a cannot-evaluate names what could not be read."""
    out = list(findings)
    for rule_id in RULE_IDS:
        reads = RULE_READS.get(rule_id, frozenset()) | _THERAPY_TYPES
        failed = [u for u in record.unread if u.resource_type is None or u.resource_type in reads]
        if not failed:
            continue
        therapy_unknown = any(u.resource_type is None or u.resource_type in _THERAPY_TYPES for u in failed)
        withdrawn = {Status.OK} | ({Status.NOT_APPLICABLE} if therapy_unknown else set())
        out = [f for f in out if f.rule != rule_id or f.status not in withdrawn]
        what = "; ".join(f"{u.what}: {u.error}" for u in failed)
        out.append(Finding(
            rule=rule_id, code="data-unread", status=Status.CANNOT_EVALUATE, severity=Severity.MODERATE,
            subject=what, missing=tuple(f"what {u.what} should have returned" for u in failed),
            reason="part of the record could not be read",
            mappings_version=mappings.version,
        ))
    return out


def _crashed(rule_id: RuleId, exc: Exception, mappings: Mappings) -> Finding:
    return Finding(
        rule=rule_id, code="internal-error", status=Status.CANNOT_EVALUATE, severity=Severity.HIGH,
        subject=type(exc).__name__, reason="the check failed on this record", missing=("a record this rule can read",),
        mappings_version=mappings.version,
    )
