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
    if record.unread:
        findings = _unread(findings, record, mappings)
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


_THERAPY_TYPES = frozenset({
    "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration", "Medication",
    "Patient",
})
_RESULTS = frozenset({"Observation", "DiagnosticReport"})
# What each rule reads besides the therapy (every rule reads that): a failed read of one of these types, or of
# an unknown type, leaves the rule unable to say ok.
RULE_READS: dict[str, frozenset[str]] = {
    "vaccination-hold": frozenset({"Immunization", "ImmunizationRecommendation", "ServiceRequest"}),
    "infection-hold": _RESULTS | {"Condition", "QuestionnaireResponse"},
    "blood-counts": _RESULTS | {"Condition", "QuestionnaireResponse"},
    "liver": _RESULTS | {"Condition", "QuestionnaireResponse"},
    "kidney": _RESULTS,
    "monitoring-schedule": _RESULTS,
    "dose": _RESULTS,
    "tpmt": _RESULTS,
    "interactions": frozenset(),
}


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
            summary="Part of the record could not be read from the server: this check cannot be cleared",
            detail=f"The server could not answer part of the request ({what}); what it would have returned "
                   "may change this check. Fetch the record again.",
            missing=tuple(f"the data of {u.what}" for u in failed), mappings_version=mappings.version,
        ))
    return out


def _crashed(rule: Rule, exc: Exception, mappings: Mappings) -> Finding:
    rule_id = rule.rule_id  # type: ignore[attr-defined]
    return Finding(
        rule=rule_id, code="internal-error", status=Status.CANNOT_EVALUATE, severity=Severity.HIGH,
        summary="Rule failed on this record; evaluate manually",
        detail=f"The rule raised {type(exc).__name__}: {exc}",
        missing=("a record this rule can read",),
        mappings_version=mappings.version,
    )

