"""The evaluation core: one patient's resources in hand -> record, findings and verdict. No I/O.

`check --bundle`, the CDS hooks, the web app, the scan and `service.check_on_server` (after gathering) all
evaluate through `check_resources`. This module and everything it imports read no network, no database and
no web framework (tests/test_architecture.py holds that): the shell around it (service.py, cli/, web/,
cds/, scan/) does the I/O. A site's terminology server reaches in only through the `Enricher` it is given.
"""

from __future__ import annotations

import logging
from datetime import datetime, tzinfo
from typing import Protocol

from msgspec import Struct, field
from msgspec.structs import replace

from azaguard.fhirtypes.reference import reference_in
from azaguard.findings import Finding
from azaguard.mappings import Mappings
from azaguard.naming import resource_name
from azaguard.outcomes import ExistingAlert, WriteOutcome
from azaguard.record import PatientInfo, PatientRecord, VaccineEvent, build_record
from azaguard.record_meaning import same_person
from azaguard.resources import EmptyRecord, InputError, ResourceSet, Unfetched
from azaguard.rules import evaluate
from azaguard.verdict import Verdict, build_verdict

log = logging.getLogger(__name__)


class Enricher(Protocol):
    """Adds codings to the concepts the local value sets cannot place (terminology.server.TerminologyServer);
    returns warnings, never raises for a server that fails."""

    def enrich(self, resources: ResourceSet) -> list[str]: ...


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
    terminology: Enricher | None = None,
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
        record = replace(record, vaccines=record.vaccines + planned_vaccines)
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
            ref = reference_in(r.get(key))
            if ref is not None:
                out.add(ref.unversioned)
    return out


def _enrich(resources: ResourceSet, terminology: Enricher | None) -> list[str]:
    """Codes the local value sets do not know, asked of the site's terminology server (if configured)."""
    if terminology is None:
        return []
    warnings = terminology.enrich(resources)
    for w in warnings:
        log.warning("%s", w)
    return warnings


def chart_verdict(result: CheckResult, mappings: Mappings, tz: tzinfo | None = None) -> Verdict:
    """The verdict worded for text that stays in the chart: absolute dates, not "today 06:00"."""
    return build_verdict(result.findings, result.record, result.evaluated_at, mappings, tz, relative_dates=False)
