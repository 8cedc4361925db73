"""One patient, end to end: gather from a FHIR server, evaluate, optionally write alerts back.

The CLI, the SMART web app, the demo and (later) the population scan all go through here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from azaguard.findings import Finding
from azaguard.mappings import Mappings
from azaguard.record import PatientInfo, PatientRecord, build_record
from azaguard.resources import InputError, ResourceSet
from azaguard.rules import evaluate

# The server path (httpx, the write models) is imported when used: a Bundle check never loads it.
if TYPE_CHECKING:
    from azaguard.alerts import ExistingAlert, WriteOutcome
    from azaguard.fhir.client import FhirClient
    from azaguard.fhir.memory import ServerMemory
    from azaguard.terminology.server import TerminologyServer

log = logging.getLogger(__name__)


@dataclass
class CheckResult:
    patient_ref: str
    patient: PatientInfo | None
    record: PatientRecord
    findings: list[Finding]
    evaluated_at: datetime
    mappings_version: str
    requests: int = 0  # HTTP requests used to gather the record
    writes: list[WriteOutcome] = field(default_factory=list)
    existing_alerts: list[ExistingAlert] = field(default_factory=list)
    # Why the alerts already in the chart could not be read (e.g. no read scope for them), if so.
    existing_alerts_problem: str | None = None
    # What went wrong on the way that did not stop the check (e.g. the terminology server failed).
    warnings: list[str] = field(default_factory=list)

    @property
    def failed_writes(self) -> list[WriteOutcome]:
        return [w for w in self.writes if w.outcome == "failed"]


def check_resources(
    resources: ResourceSet,
    *,
    mappings: Mappings,
    now: datetime,
    ordering_context: bool = False,
    terminology: TerminologyServer | None = None,
) -> CheckResult:
    """Evaluate a record that is already in hand (a Bundle file, a CDS Hooks prefetch)."""
    patients = resources.patients()
    if len(patients) > 1:
        ids = ", ".join(str(p.get("id")) for p in patients)
        raise InputError(f"the record holds {len(patients)} patients ({ids}); azaguard checks one patient at a time")
    warnings = _enrich(resources, terminology)
    record = build_record(resources, mappings, ordering_context=ordering_context)
    findings = evaluate(record, mappings, now)
    return CheckResult(
        patient_ref=record.patient_ref or "Patient/(unknown)",
        patient=record.patient,
        record=record,
        findings=findings,
        evaluated_at=now,
        mappings_version=mappings.version,
        warnings=warnings,
    )


def _enrich(resources: ResourceSet, terminology: TerminologyServer | None) -> list[str]:
    """Codes the local value sets do not know, asked of the site's terminology server (if configured)."""
    if terminology is None:
        return []
    from azaguard.terminology.server import enrich

    warnings = enrich(resources, terminology)
    for w in warnings:
        log.warning("%s", w)
    return warnings


def check_on_server(
    client: FhirClient,
    patient_id: str,
    *,
    mappings: Mappings,
    now: datetime,
    write: bool = False,
    dry_run: bool = False,
    terminology: TerminologyServer | None = None,
    memory: ServerMemory | None = None,
    read_alerts: bool = True,
) -> CheckResult:
    """Gather one patient from the server, evaluate, and (optionally) write the alerts back.

    Reading takes one request (the record and, with `read_alerts`, the alerts already in the chart).
    Raises FhirError when the record cannot be gathered (never evaluates a partial record).
    Write failures do not raise: they are in `result.writes` with outcome "failed".
    """
    from azaguard.alerts import device_resource, own_alerts, plan_alerts, summarise_existing
    from azaguard.alerts import dry_run as alerts_dry_run
    from azaguard.fhir.gather import gather

    before = client.request_count
    gathered = gather(client, patient_id, mappings, now, memory=memory, alerts=read_alerts)
    warnings = _enrich(gathered.resources, terminology)
    record = build_record(gathered.resources, mappings)
    if record.patient is None:
        raise InputError(f"Patient/{patient_id} was not returned by the server")
    findings = evaluate(record, mappings, now)
    issues, flags = own_alerts(gathered.alert_issues or [], gathered.alert_flags or [])
    alerts_problem = gathered.alerts_problem
    if not read_alerts:
        alerts_problem = "the granted access does not include reading the alerts already in the chart"
    result = CheckResult(
        patient_ref=record.patient.ref,
        patient=record.patient,
        record=record,
        findings=findings,
        evaluated_at=now,
        mappings_version=mappings.version,
        requests=client.request_count - before,
        existing_alerts_problem=alerts_problem,
        warnings=warnings,
    )
    if write or dry_run:
        device = device_resource(mappings.version)
        if dry_run:
            author = {"identifier": device["identifier"][0], "display": "azaguard"}
            result.writes = alerts_dry_run(plan_alerts(result.patient_ref, findings, flags, now, author))
        else:
            result.writes = _write(client, result.patient_ref, findings, flags, now, device)
        if not dry_run:
            issues, flags, result.existing_alerts_problem = _existing(client, patient_id)
    result.existing_alerts = summarise_existing(issues, flags)
    return result


def _existing(client: FhirClient, patient_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """azaguard's alerts in the chart after a write; a refusal to show them does not hide the findings."""
    from azaguard.alerts import fetch_alert_resources
    from azaguard.fhir.errors import AuthDenied

    try:
        issues, flags = fetch_alert_resources(client, patient_id)
    except AuthDenied as exc:
        return [], [], f"the alerts already in the chart cannot be read with the granted access ({exc.status})"
    return issues, flags, None


def _write(
    client: FhirClient,
    patient_ref: str,
    findings: list[Finding],
    flags: list[dict[str, Any]],
    now: datetime,
    device: dict[str, Any],
) -> list[WriteOutcome]:
    from azaguard.alerts import WriteOutcome, ensure_device, plan_alerts, write_alerts
    from azaguard.fhir.errors import FhirError

    try:
        device_ref = ensure_device(client, device)
    except FhirError as exc:
        # Without the author Device nothing can be written: report every planned write as failed.
        author = {"identifier": device["identifier"][0]}
        plan = plan_alerts(patient_ref, findings, flags, now, author)
        return [
            WriteOutcome(p.resource_type, p.identifier, p.rule, "failed", error=f"author Device: {exc}") for p in plan
        ]
    plan = plan_alerts(patient_ref, findings, flags, now, {"reference": device_ref, "display": "azaguard"})
    return write_alerts(client, plan, device)
