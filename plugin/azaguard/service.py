"""One patient, end to end: gather from a FHIR server, evaluate, optionally write alerts back.

The CLI, the SMART web app, the demo and (later) the population scan all go through here.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any

from msgspec import Struct, field

from azaguard.findings import Finding
from azaguard.mappings import Mappings
from azaguard.ops.events import ALERT_WRITE, emit
from azaguard.record import PatientInfo, PatientRecord, VaccineEvent, build_record
from azaguard.record_meaning import same_person
from azaguard.resources import EmptyRecord, InputError, ResourceSet, Unfetched
from azaguard.rules import evaluate
from azaguard.verdict import Verdict, build_verdict

# The server path (httpx, the write models) is imported when used: a Bundle check never loads it.
if TYPE_CHECKING:
    from azaguard.alerts import ExistingAlert, WriteOutcome
    from azaguard.fhir.client import FhirClient
    from azaguard.fhir.memory import ServerMemory
    from azaguard.terminology.server import TerminologyServer

log = logging.getLogger(__name__)


class CheckResult(Struct, kw_only=True):
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
    device: WriteOutcome | None = None  # what happened to the author Device when writing
    notes: list[str] = field(default_factory=list)  # e.g. foreign resources carrying azaguard's identifiers
    # Caveats shown with the findings: resources left out (another patient's), no Patient resource, what
    # went wrong on the way that did not stop the check (the terminology server failed), what gathering
    # could not do as asked (an ignored search parameter, a batch refused): never discarded.
    warnings: list[str] = field(default_factory=list)
    # What the warnings name for people, with ids for programs (JSON): resources referred to but not given.
    unfetched: list[Unfetched] = field(default_factory=list)
    verdict: Verdict | None = None  # the clinician's message, computed once (build_verdict)

    @property
    def failed_writes(self) -> list[WriteOutcome]:
        return [w for w in self.writes if w.outcome == "failed"]


def check_resources(
    resources: ResourceSet,
    *,
    mappings: Mappings,
    now: datetime,
    ordering_context: bool = False,
    tz: tzinfo | None = None,
    terminology: TerminologyServer | None = None,
    planned_vaccines: tuple[VaccineEvent, ...] = (),
) -> CheckResult:
    """Evaluate a record that is already in hand (a Bundle file, a CDS Hooks prefetch): the one evaluation
    step of `check`, the web app and the CDS hooks. `planned_vaccines`: vaccines a CDS order hook is about
    to order (draft orders), added to the record's."""
    # The same Patient twice (a search plus an _include), or merged records joined by Patient.link, is one patient.
    patients = same_person(resources)
    if len({str(p.get("id")) for p in patients}) == 1:
        patients = patients[:1]
    if len(patients) > 1:
        ids = ", ".join(str(p.get("id")) for p in patients)
        raise InputError(f"the record holds {len(patients)} patients ({ids}); azaguard checks one patient at a time")
    if not resources.resources:
        # Nothing at all is not "not on azathioprine": it is no record.
        raise EmptyRecord("the record is empty (no Patient and no other resources): there is nothing to check")
    warnings: list[str] = []
    if not patients:
        subjects = _subjects(resources)
        if len(subjects) > 1:
            raise InputError(
                f"the record has no Patient resource and its resources name {len(subjects)} different subjects "
                f"({', '.join(sorted(subjects))}): azaguard cannot tell whose record it is"
            )
        warnings.append(
            "The record has no Patient resource: it is evaluated as one patient's record"
            + (f" ({next(iter(subjects))})" if subjects else "")
            + ", but whose it is cannot be confirmed, and checks that need age or sex (eGFR from creatinine) "
            "cannot be evaluated."
        )
    warnings += _enrich(resources, terminology)
    record = build_record(resources, mappings, ordering_context=ordering_context)
    if planned_vaccines:
        record = dataclasses.replace(record, vaccines=record.vaccines + planned_vaccines)
    findings = evaluate(record, mappings, now)
    return CheckResult(
        patient_ref=record.patient_ref or "Patient/(unknown)",
        patient=record.patient,
        record=record,
        findings=findings,
        evaluated_at=now,
        mappings_version=mappings.version,
        warnings=warnings + dropped_warnings(record, resources, mappings),
        verdict=build_verdict(findings, record, now, mappings, tz),
    )


def dropped_warnings(record: PatientRecord, resources: ResourceSet, mappings: Mappings) -> list[str]:
    """One line per resource left out of the record (never silently), the resource named for people (what it
    records and when): its id is in the record (`record.dropped`), not in text a clinician reads."""
    from azaguard.naming import resource_name

    lines = []
    for d in record.dropped:
        raw = resources.resolve(d.ref)
        name = resource_name(raw, mappings) if raw is not None else "a resource"
        lines.append(f"{name[0].upper()}{name[1:]} was not used: {d.reason}.")
    return lines


def _subjects(resources: ResourceSet) -> set[str]:
    """The distinct subject/patient references of a record without a Patient resource."""
    out: set[str] = set()
    for r in resources.resources:
        for key in ("subject", "patient"):
            holder = r.get(key)
            ref = holder.get("reference") if isinstance(holder, dict) else None
            if isinstance(ref, str) and ref:
                out.add(ref.split("/_history/")[0])
    return out


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
    from azaguard.alerts import (
        confirm_writes,
        device_resource,
        ensure_device,
        logical_author,
        own_alerts,
        plan_alerts,
        summarise_existing,
        write_alerts,
    )
    from azaguard.alerts import dry_run as alerts_dry_run
    from azaguard.fhir.errors import FhirError
    from azaguard.fhir.gather import gather

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
            for w in result.writes:  # the audit trail and the metrics listen (ops.events)
                emit(ALERT_WRITE, patient=patient_id, resource_type=w.resource_type, rule=w.rule, outcome=w.outcome)
    result.existing_alerts = summarise_existing(issues, flags)
    return result


def chart_verdict(result: CheckResult, mappings: Mappings, tz: tzinfo | None = None) -> Verdict:
    """The verdict worded for text that stays in the chart: absolute dates, not "today 06:00"."""
    return build_verdict(result.findings, result.record, result.evaluated_at, mappings, tz, relative_dates=False)


def _own(
    issues: list[dict[str, Any]], flags: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
    """azaguard's own alerts; others carrying its identifier systems are named, never adopted."""
    from azaguard.alerts import is_own

    foreign = [f"{r.get('resourceType')}/{r.get('id')}" for r in (*issues, *flags) if not is_own(r)]
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
    from azaguard.alerts import fetch_alert_resources
    from azaguard.fhir.errors import AuthDenied

    try:
        issues, flags = fetch_alert_resources(client, patient_id)
    except AuthDenied as exc:
        return [], [], f"the alerts already in the chart cannot be read with the granted access ({exc.status})"
    return issues, flags, None
