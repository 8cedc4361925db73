"""Monitoring schedule: is each test group (CBC, LFT) done as often as the schedule asks?

The schedule (policy.monitoring, default the US label) has phases by days since the
start of therapy; the current phase's interval plus a grace period says when a test is
overdue. Any dated result counts as "tested" here, readable or not: whether its value is
usable is the lab rules' question.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from azaguard.display import cite
from azaguard.findings import Finding, Severity, Status
from azaguard.mappings import Mappings, MonitoringGroup, Schedule, SchedulePhase
from azaguard.record import Measurement, PatientRecord
from azaguard.rules.common import (
    ago,
    applicability,
    is_future,
    make_finding,
    measurement_evidence,
    measurement_trigger,
    rule,
    short_date,
)


@rule("monitoring-schedule")
def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "monitoring-schedule")
    if stop is not None:
        return [stop]
    policy = mappings.policy.monitoring
    name = policy.default_schedule
    schedule = policy.schedules[name]
    grace = policy.grace_days
    implicated = [o.ref for o in t.current]
    start = t.start
    day = (now - start).days if start is not None else None
    phase = _phase(schedule, day) if day is not None else None
    # Plain language for clinicians: the schedule cited as they cite it, the phase in days of treatment.
    cited = cite(schedule.source, mappings) or schedule.source
    where = [
        f"monitoring schedule: {cited}",
        _describe_phase(schedule, phase, day) if phase is not None and day is not None
        else "the start date of treatment is unknown",
        f"{grace.value:g} days' grace allowed",
    ]

    out: list[Finding] = []
    for key, group in mappings.analytes.monitoring_groups.items():
        if group.rule != "monitoring-schedule":
            continue
        latest = _latest(record, group, mappings, now)
        if latest is None or latest.effective is None:
            out.append(make_finding(
                mappings, "monitoring-schedule", f"{key}-no-result",
                Status.CANNOT_EVALUATE, Severity.MODERATE, checked=where,
                reason=f"none of {', '.join(_label(mappings, k) for k in group.analytes)} has a dated result "
                       "(future-dated ones are not evidence)",
                missing=[f"{group.label} result"], implicated=implicated, subject=group.label,
            ))
            continue
        label = mappings.analytes.analytes[latest.analyte].label
        ev = measurement_evidence(latest, label)
        last = f"last {group.label} {short_date(latest.effective)} ({ago(latest.effective, now)})"
        if phase is None:
            strictest = min(p.interval_days for p in schedule.phases)
            if now - latest.effective <= timedelta(days=strictest):
                out.append(make_finding(
                    mappings, "monitoring-schedule", f"{key}-up-to-date", Status.OK, Severity.INFO,
                    evidence=[ev], implicated=implicated, subject=group.label, checked=where,
                    trigger=measurement_trigger(latest, label),
                    reason=f"the therapy start date is unknown, but the {last} is within the schedule's strictest "
                           f"interval ({strictest} days)",
                ))
            else:
                out.append(make_finding(
                    mappings, "monitoring-schedule", f"{key}-start-unknown",
                    Status.CANNOT_EVALUATE, Severity.MODERATE, subject=group.label, checked=where,
                    reason=f"azathioprine start date unknown: cannot tell if {group.label} is due (the {last} is "
                           f"older than the strictest interval, {strictest} days)",
                    evidence=[ev], missing=["azathioprine start date"], implicated=implicated,
                ))
            continue
        allowed = phase.interval_days + grace.value
        if now - latest.effective > timedelta(days=allowed):
            out.append(make_finding(
                mappings, "monitoring-schedule", f"{key}-overdue", Status.CAUTION, Severity.MODERATE,
                evidence=[ev], implicated=implicated, subject=group.label, checked=where,
                trigger=measurement_trigger(latest, label), reason=f"due every {phase.interval_days} days",
            ))
        else:
            out.append(make_finding(
                mappings, "monitoring-schedule", f"{key}-up-to-date", Status.OK, Severity.INFO,
                evidence=[ev], implicated=implicated, subject=group.label, checked=where,
                trigger=measurement_trigger(latest, label), reason=f"due every {phase.interval_days} days",
            ))
    if not out:  # no monitoring group configured: nothing to say ok about
        out.append(make_finding(
            mappings, "monitoring-schedule", "no-groups", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason="the mappings define no monitoring group", checked=where, implicated=implicated,
        ))
    return out


def _label(m: Mappings, key: str) -> str:
    spec = m.analytes.analytes.get(key)
    return spec.label if spec else key


def _phase(schedule: Schedule, day: int) -> SchedulePhase:
    """The phase covering `day` of therapy (day 0 = start); the last phase is open-ended."""
    for p in schedule.phases:
        if p.until_day is None or day < p.until_day:
            return p
    return schedule.phases[-1]


def _describe_phase(schedule: Schedule, phase: SchedulePhase, day: int) -> str:
    index = schedule.phases.index(phase)
    begin = schedule.phases[index - 1].until_day if index > 0 else 0
    span = f"days {begin} to {phase.until_day}" if phase.until_day is not None else f"from day {begin} on"
    return f"day {day} of treatment ({span}), tests due every {phase.interval_days} days"


def _latest(record: PatientRecord, group: MonitoringGroup, m: Mappings, now: datetime) -> Measurement | None:
    # A future-dated result is not evidence that the test was done (and would read "-351 days ago").
    dated = [
        x for key in group.analytes for x in record.measurements_of(key)
        if x.effective is not None and not is_future(x.effective, m, now)
    ]
    return max(dated, key=lambda x: x.effective or datetime.min) if dated else None


def next_due(record: PatientRecord, mappings: Mappings, now: datetime) -> dict[str, datetime]:
    """When each monitoring group's next test falls due: its latest dated result plus the current phase's
    interval (the grace days are the clinician's margin, not the patient's date). A group without a dated
    result, or therapy without a start date, has no due date (absent, never guessed)."""
    t, stop = applicability(record, mappings, now, "monitoring-schedule")
    if stop is not None or t.start is None:
        return {}
    schedule = mappings.policy.monitoring.schedules[mappings.policy.monitoring.default_schedule]
    phase = _phase(schedule, (now - t.start).days)
    due = {}
    for key, group in mappings.analytes.monitoring_groups.items():
        latest = _latest(record, group, mappings, now) if group.rule == "monitoring-schedule" else None
        if latest is not None and latest.effective is not None:
            due[key] = latest.effective + timedelta(days=phase.interval_days)
    return due
