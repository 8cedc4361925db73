"""Pancreatitis on azathioprine (clinical-rules.md section 9; the label: stop azathioprine in pancreatitis).

Hold for a current acute pancreatitis diagnosis (K85.x, active or, without a status, recorded within the window),
or a lipase within the window above the configured multiple (3×) of the lab's own upper reference limit. The
limit is the result's: a lipase without one cannot be judged (cannot-evaluate, naming it), never against a
number of azaguard's own. Lipase is not a monitoring test: without a diagnosis or a recent lipase the check
says so and passes on the record it read.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from azaguard.findings import Evidence, Finding, RuleId, Severity, Status, Trigger
from azaguard.mappings import Mappings
from azaguard.record import ConditionEntry, Measurement, PatientRecord
from azaguard.rules.common import (
    applicability,
    decisive,
    iso,
    make_finding,
    measurement_evidence,
    order_evidence,
    quantity_of,
    recorded_amount,
    rule,
    short_date,
    split_future,
)
from azaguard.terminology.labtests import LIPASE
from azaguard.terminology.signs import pancreatitis_match

RULE: RuleId = "pancreatitis"
ACTION = "stop azathioprine; contact the prescriber"


@rule(RULE)
def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, early = applicability(record, mappings, now, RULE)
    if early is not None:
        return [early]
    m = mappings
    p = m.pancreatitis
    window = timedelta(days=p.window_days.value)
    aza_refs = [o.ref for o in t.current]
    aza_evidence = [order_evidence(o, t) for o in t.current]
    out: list[Finding] = []
    diagnoses = [(c, how) for c in record.conditions if (how := _current(c, m, now, window)) is not None]
    if diagnoses:
        names = ", ".join(dict.fromkeys(c.concept.label for c, _ in diagnoses))
        out.append(make_finding(
            m, RULE, "pancreatitis-diagnosed", Status.HOLD, Severity.HIGH,
            evidence=[Evidence(reference=c.ref, description=f"acute pancreatitis: {c.concept.label} ({how})"
                               + (f"; {c.date_note}" if c.date_note else ""), date=iso(c.recorded or c.onset))
                      for c, how in diagnoses] + aza_evidence,
            implicated=aza_refs, subject=names,
            trigger=Trigger(concept=names, at=iso(diagnoses[0][0].recorded or diagnoses[0][0].onset),
                            reference=diagnoses[0][0].ref),
        ))
    results, _ = split_future(record.measurements_of(LIPASE), m, now)
    recent = [r for r in results if r.effective is not None and now - r.effective <= window]
    lipase_seen = ""
    if recent:
        latest, _ = decisive(recent, "above")
        finding, lipase_seen = _lipase(latest, m, aza_refs, aza_evidence)
        if finding is not None:
            out.append(finding)
    for undated in (r for r in results if r.effective is None):
        # No date: it may be today's. One that would hold, or cannot be judged, cannot be set aside.
        finding, _ = _lipase(undated, m, aza_refs, aza_evidence)
        if finding is not None:
            shown = recorded_amount(undated, m)
            why = (f"it is over {p.lipase_uln_multiple.value:g}× the lab's upper limit"
                   if finding.status == Status.HOLD else "it cannot be judged against the lab's upper limit")
            out.append(make_finding(
                m, RULE, "lipase-undated", Status.CANNOT_EVALUATE, Severity.MODERATE,
                reason=f"lipase {shown} has no collection date, and {why}: whether it is from the last "
                       f"{window.days} days cannot be told",
                advice=f"check the result's date with the lab; if it is recent, {ACTION}",
                evidence=[measurement_evidence(undated, "lipase")], missing=["the date of the lipase result"],
                implicated=aza_refs,
            ))
    if not out:
        out.append(make_finding(
            m, RULE, "no-pancreatitis", Status.OK, Severity.INFO,
            checked=[f"no acute pancreatitis diagnosis in the {len(record.conditions)} condition(s) read",
                     lipase_seen or f"no lipase in the last {window.days} days (not a monitoring test: ask for one "
                     "if there is abdominal pain)"],
            reason=lipase_seen or None,
            evidence=[measurement_evidence(r, "lipase") for r in recent[:1]] + aza_evidence,
            implicated=aza_refs,
        ))
    return out


def _current(c: ConditionEntry, m: Mappings, now: datetime, window: timedelta) -> str | None:
    """How the condition is a current acute pancreatitis, or None."""
    conds = m.conditions
    if (c.verification_status or "").strip().lower() in conds.excluded_verification_statuses:
        return None
    status = (c.clinical_status or "").strip().lower()
    if status in conds.ended_clinical_statuses or c.abated:
        return None
    how = pancreatitis_match(c.concept, m)
    if how is None:
        return None
    if status in conds.active_clinical_statuses:
        return how
    when = c.recorded or c.onset
    # Without a status: judged by its date; an undated one is taken as current (it cannot be ruled out).
    if when is None or now - window <= when:
        return how
    return None


def _lipase(
    latest: Measurement, m: Mappings, aza_refs: list[str], aza_evidence: list[Evidence]
) -> tuple[Finding | None, str]:
    p = m.pancreatitis
    multiple = p.lipase_uln_multiple.value
    ev = measurement_evidence(latest, "lipase")
    shown = recorded_amount(latest, m)
    when = short_date(latest.effective)
    uln, unit = latest.range_high, latest.range_unit
    value, q = latest.result.value, latest.result.recorded
    if value is None or uln is None or (unit is not None and q is not None and unit not in (q.code, q.unit)):
        why = ("no value" if value is None else "no upper reference limit from the lab" if uln is None
               else f"its reference range is in {unit}, not the value's unit")
        return make_finding(
            m, RULE, "lipase-unjudged", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"lipase {shown} on {when} cannot be compared with {multiple:g}× the lab's upper limit: {why}",
            evidence=[ev], missing=[f"the upper reference limit of the lipase result of {when}"], implicated=aza_refs,
        ), ""
    comparator = q.comparator if q else None
    limit = multiple * uln
    if value > limit and comparator not in ("<", "<="):
        return make_finding(
            m, RULE, "lipase-high", Status.HOLD, Severity.HIGH, source=p.lipase_uln_multiple.source,
            evidence=[ev, *aza_evidence], implicated=aza_refs,
            trigger=Trigger(concept="lipase", quantity=quantity_of(latest), at=iso(latest.effective),
                            reference=latest.ref),
            reason=f"over {multiple:g}× the lab's upper limit of {uln:g}", checked=[f"limit {limit:g}"],
        ), ""
    return None, f"lipase {shown} on {when} is within {multiple:g}× the upper limit ({uln:g})"
