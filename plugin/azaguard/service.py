"""One patient on a FHIR server, end to end: gather, evaluate (the core: evaluate.py), optionally write the
alerts back. The shell around the core for the CLI's `check --fhir-url`, the SMART web app, the demo and the
population scan; a Bundle in hand (`check --bundle`) never imports this module.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from azaguard.alerts import (
    confirm_writes,
    device_resource,
    ensure_device,
    fetch_alert_resources,
    is_own,
    logical_author,
    own_alerts,
    plan_alerts,
    summarise_existing,
    write_alerts,
)
from azaguard.alerts import dry_run as alerts_dry_run
from azaguard.evaluate import CheckResult as CheckResult  # re-exported: the shell's callers read one module
from azaguard.evaluate import chart_verdict as chart_verdict
from azaguard.evaluate import check_resources as check_resources
from azaguard.events import ALERT_WRITE, emit
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import AuthDenied, FhirError
from azaguard.fhir.gather import gather
from azaguard.fhirtypes.reference import ref_of
from azaguard.mappings import Mappings
from azaguard.resources import InputError

if TYPE_CHECKING:
    from azaguard.fhir.memory import ServerMemory
    from azaguard.terminology.server import TerminologyServer


def check_on_server(
    client: FhirClient,
    patient_id: str,
    *,
    mappings: Mappings,
    now: datetime,
    write: bool = False,
    dry_run: bool = False,
    tz: tzinfo | None = None,
    terminology: TerminologyServer | None = None,
    memory: ServerMemory | None = None,
    read_alerts: bool = True,
) -> CheckResult:
    """Gather one patient from the server, evaluate, and (optionally) write the alerts back.

    Reading takes one request (the record and, with `read_alerts`, the alerts already in the chart).
    Raises FhirError when the record cannot be gathered (never evaluates a partial record).
    Write failures do not raise: they are in `result.writes` with outcome "failed".
    """
    before = client.request_count
    gathered = gather(client, patient_id, mappings, now, memory=memory, alerts=read_alerts)
    if not gathered.resources.patients():
        raise InputError(f"Patient/{patient_id} was not returned by the server")
    # The one evaluation step (as `check --bundle` and the CDS hooks): terminology, record, rules, verdict.
    result = check_resources(gathered.resources, mappings=mappings, now=now, tz=tz, terminology=terminology)
    findings = result.findings
    issues, flags = own_alerts(gathered.alert_issues or [], gathered.alert_flags or [])
    alerts_problem = gathered.alerts_problem
    if not read_alerts:
        alerts_problem = "the granted access does not include reading the alerts already in the chart"
    result.requests = client.request_count - before
    result.existing_alerts_problem = alerts_problem
    result.warnings = list(gathered.warnings) + result.warnings
    result.unfetched = list(gathered.unfetched)
    issues, flags, result.notes = _own(issues, flags)
    if write or dry_run:
        device = device_resource(mappings.version)
        chart_text = chart_verdict(result, mappings)
        if dry_run:
            plan = plan_alerts(
                result.patient_ref, findings, flags, now, logical_author(device), issues, verdict=chart_text
            )
            result.writes = alerts_dry_run(plan)
        else:
            author, result.device = ensure_device(client, device)
            plan = plan_alerts(result.patient_ref, findings, flags, now, author, issues, verdict=chart_text)
            written = write_alerts(client, plan, device)
            try:  # the chart as it now is: each write is held against it, and it is what is shown
                issues, flags, result.existing_alerts_problem = _existing(client, patient_id)
                unread = result.existing_alerts_problem
                result.writes = confirm_writes(written, None if unread else [*issues, *flags], unread)
                issues, flags, _ = _own(issues, flags)
            except FhirError as exc:
                result.writes = confirm_writes(written, None, str(exc))
                result.existing_alerts_problem = (
                    f"the alerts were written as listed, but reading the chart back failed: {exc}"
                )
            for w in result.writes:  # the audit trail and the metrics listen (events.py)
                emit(ALERT_WRITE, patient=patient_id, resource_type=w.resource_type, rule=w.rule, outcome=w.outcome)
    result.existing_alerts = summarise_existing(issues, flags)
    return result


def _own(
    issues: list[dict[str, Any]], flags: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """azaguard's own alerts; others carrying its identifier systems are named, never adopted."""
    foreign = [ref_of(r) for r in (*issues, *flags) if not is_own(r)]
    notes = (
        [
            f"{len(foreign)} resource(s) carry azaguard's identifiers but were not written by azaguard "
            f"(ignored; azaguard writes its own alerts beside them): {', '.join(foreign[:10])}"
        ]
        if foreign
        else []
    )
    return [r for r in issues if is_own(r)], [r for r in flags if is_own(r)], notes


def _existing(client: FhirClient, patient_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str | None]:
    """azaguard's alerts in the chart after a write; a refusal to show them does not hide the findings."""
    try:
        issues, flags = fetch_alert_resources(client, patient_id)
    except AuthDenied as exc:
        return [], [], f"the alerts already in the chart cannot be read with the granted access ({exc.status})"
    return issues, flags, None
