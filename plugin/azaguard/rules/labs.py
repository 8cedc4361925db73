"""Blood counts, liver and kidney: each analyte's latest result against its mapped threshold.

One module for the three families because they share everything but the analyte list:
the newest dated result decides, it must be recent and readable, comparators decide only
when they can, and "ok" needs positive evidence for every core analyte.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from msgspec import Struct, field

from azaguard.findings import Evidence, Finding, Quantity, RuleId, Severity, Status, Trigger
from azaguard.mappings import Analyte, Mappings, Threshold
from azaguard.record import Measurement, PatientRecord
from azaguard.registry import SPEC
from azaguard.rules import signs
from azaguard.rules.common import (
    amount,
    applicability,
    crosses,
    decisive,
    future_note,
    iso,
    limit_amount,
    make_finding,
    measurement_evidence,
    measurement_trigger,
    number,
    observation_problems,
    problem_evidence,
    problem_name,
    recorded_amount,
    rule,
    short_date,
    source_name,
    split_future,
)
from azaguard.rules.context import alt_by_indication, dialysis

_CREATININE = "creatinine"


def _checks(family: RuleId) -> str:
    """'blood count', 'liver tests': what the family checks (the registry's words)."""
    return SPEC[family].checks.removeprefix("the ")


def sentence_case(text: str) -> str:
    return text[:1].upper() + text[1:]
  # analyte checked for a rise over time rather than a fixed threshold


@rule("blood-counts")
def blood_counts(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """WBC, neutrophils, lymphocytes, eosinophils, platelets, MCV: thresholds and falling trends."""
    return _family(record, mappings, now, "blood-counts")


@rule("liver")
def liver(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """ALT, AST, albumin (in autoimmune hepatitis the ALT trend decides: rules/context.py)."""
    return alt_by_indication(_family(record, mappings, now, "liver"), record, mappings, now)


@rule("kidney")
def kidney(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """eGFR threshold and creatinine rise (not on dialysis: rules/context.py)."""
    on_dialysis = dialysis(record, mappings, now)
    return [on_dialysis] if on_dialysis is not None else _family(record, mappings, now, "kidney")


class _Report(Struct):
    """What one family found, collected analyte by analyte."""

    rule: RuleId
    m: Mappings
    implicated: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)  # "WBC 5.2 10*9/L (2026-10-30)"
    evidence: list[Evidence] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)  # optional analytes not on file
    latest: dict[str, Measurement] = field(default_factory=dict)  # the deciding, readable, dated result

    def add(
        self,
        code: str,
        status: Status,
        severity: Severity,
        evidence: list[Evidence],
        missing: list[str] | None = None,
        *,
        trigger: Trigger | None = None,
        reason: str | None = None,
        subject: str | None = None,
        advice: str | None = None,
        source: str | None = None,
        checked: list[str] | None = None,
    ) -> None:
        self.findings.append(
            make_finding(
                self.m, self.rule, code, status, severity,
                evidence=evidence, missing=missing or [], implicated=self.implicated, trigger=trigger,
                reason=reason, subject=subject, advice=advice, source=source, checked=checked or [],
            )
        )


def _family(record: PatientRecord, m: Mappings, now: datetime, family: RuleId) -> list[Finding]:
    t, stop = applicability(record, m, now, family)
    if stop is not None:
        return [stop]
    report = _Report(family, m, tuple(o.ref for o in t.current))
    analytes = {k: a for k, a in m.analytes.analytes.items() if a.rule == family}

    loincs = [code for a in analytes.values() for code in a.loinc]
    for problem in observation_problems(record, loincs, m):
        report.add(
            "observation-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            [problem_evidence(problem)], ["a readable version of the unreadable lab result"],
            subject=problem_name(problem),
        )

    core = {k for group in m.analytes.required_analytes.for_rule(family) for k in group}
    for key, analyte in analytes.items():
        results, future = split_future(record.measurements_of(key), m, now)
        if future:
            report.add(
                f"{key}-future", Status.CANNOT_EVALUATE, Severity.MODERATE,
                [measurement_evidence(r, f"{analyte.label} (future-dated)") for r in future],
                [f"a correctly dated {analyte.label} result"], subject=analyte.label,
                reason=f"{future_note(future)} is dated in the future (after {short_date(now)})",
            )
        if not results:
            # A core analyte with a present alternative (eGFR when creatinine is on file) is just listed.
            group = next((g for g in m.analytes.required_analytes.for_rule(family) if key in g), ())
            if key not in core or any(record.measurements_of(k) for k in group):
                report.absent.append(analyte.label)
            continue
        _assess_latest(report, key, analyte, results, now)
        if key in m.policy.labs.trend.analytes:
            _assess_trend(report, key, analyte, results)
        if key == _CREATININE:
            _assess_creatinine_rise(report, analyte, results)

    if family == "kidney":
        _egfr_from_creatinine(report, record, now)
    # Side effects the leaflets tell patients to report, whose check is this family's (bruising: platelets).
    report.findings += signs.side_effect_findings(
        signs.current_signs(record, m, now), family, m, now, list(report.implicated), signs.undated_signs(record, m))

    for group in m.analytes.required_analytes.for_rule(family):
        if not any(record.measurements_of(k) for k in group):
            labels = " or ".join(analytes[k].label for k in group)
            report.add(
                f"{'-or-'.join(group)}-missing", Status.CANNOT_EVALUATE, Severity.MODERATE,
                [], [f"{labels} result"], subject=labels, reason=f"no {labels} result on file",
            )

    if not report.findings:
        report.add(
            f"{family}-ok", Status.OK, Severity.INFO, report.evidence, checked=report.checked,
            advice=f"not on file (optional): {', '.join(report.absent)}" if report.absent else None,
        )
    return report.findings


def _assess_latest(
    report: _Report, key: str, analyte: Analyte, results: tuple[Measurement, ...], now: datetime
) -> None:
    m = report.m
    dated = [r for r in results if r.effective is not None]
    if not dated:
        report.add(
            f"{key}-undated", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"{len(results)} {analyte.label} result(s) without an effective date or issued time",
            subject=analyte.label, evidence=[measurement_evidence(r, analyte.label) for r in results],
            missing=[f"dated {analyte.label} result"],
        )
        return
    latest, conflict = decisive(dated, analyte.threshold.direction if analyte.threshold else None)
    if conflict and analyte.threshold is None:
        values = ", ".join(recorded_amount(r, m) for r in dated if r.effective == latest.effective)
        report.add(
            f"{key}-conflict", Status.CANNOT_EVALUATE, Severity.MODERATE, subject=analyte.label,
            reason=f"conflicting {analyte.label} results at {short_date(latest.effective)} ({values})",
            evidence=[measurement_evidence(r, analyte.label) for r in dated if r.effective == latest.effective],
            missing=[f"one confirmed {analyte.label} result"],
        )
        return
    ev = measurement_evidence(latest, analyte.label)
    when = short_date(latest.effective)
    prelim = (" (preliminary result)" if latest.preliminary else "") + conflict
    if latest.result.value is None:
        why = latest.result.problem or "value is not a quantity"
        report.add(
            f"{key}-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            [ev], [f"{analyte.label} with a known unit"], subject=analyte.label,
            reason=f"the latest {analyte.label} ({recorded_amount(latest, m)}, {when}) cannot be read: {why}",
        )
        return
    max_age = m.policy.labs.result_max_age_days
    assert latest.effective is not None  # noqa: S101 - filtered above; narrows the type
    report.latest[key] = latest
    if now - latest.effective > timedelta(days=max_age.value) and analyte.only_when_current:
        # Measured now and then (a metabolite level): an old one is history, not a test to chase.
        report.absent.append(f"{analyte.label} (latest {when}, older than {max_age.value:g} days)")
        return
    if now - latest.effective > timedelta(days=max_age.value):
        report.add(
            f"{key}-stale", Status.CANNOT_EVALUATE,
            Severity.MODERATE if _is_core(report.rule, key, m) else Severity.LOW,
            [ev], [f"{analyte.label} from the last {max_age.value:g} days"], subject=analyte.label,
            reason=f"the latest {analyte.label} ({recorded_amount(latest, m)}, {when}) is older than "
                   f"{max_age.value:g} days", source=max_age.source,
        )
        return
    shown = f"{analyte.label} {amount(latest, m)} ({when}){prelim}"
    th = analyte.threshold
    if th is None:
        report.checked.append(shown)
        report.evidence.append(ev)
        return
    comparator = latest.result.recorded.comparator if latest.result.recorded else None
    crossed = crosses(latest.result.value, comparator, th)
    limit = f"{th.direction} {limit_amount(th.value, latest.result.unit, m)}"
    if crossed is None:
        report.add(
            f"{key}-undecidable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            [ev], [f"an exact {analyte.label} value"], subject=analyte.label,
            reason=f"{analyte.label} reported as {recorded_amount(latest, m)} on {when}: with that comparator it "
                   f"may or may not be {limit}",
        )
    elif crossed:
        word = "low" if th.direction == "below" else "high"
        report.add(
            f"{key}-{word}", Status(th.status), th.severity,
            [ev], trigger=measurement_trigger(latest, analyte.label),
            reason=limit + (" (preliminary)" if latest.preliminary else "") + conflict,
            **_threshold_facts(th),
        )
    else:
        report.checked.append(shown)
        report.evidence.append(ev)


def _threshold_facts(th: Threshold) -> dict[str, Any]:
    """The threshold's source, its action (mappings), and what else the mappings say of it."""
    notes = ["this threshold is UNVERIFIED (a configurable choice)"] if th.unverified else []
    notes += [f"alternative {value}: {text}" for value, text in th.alternatives.items()]
    advice = th.action.rstrip(".") if th.action else \
        "withhold azathioprine and discuss with the specialist" if th.status == "hold" else None
    return {"source": th.source, "advice": advice, "checked": notes}


def _exact(results: tuple[Measurement, ...]) -> list[Measurement]:
    """Dated, readable results without a comparator, newest first: the ones a trend may use."""
    return [
        r for r in results
        if r.effective is not None and r.result.value is not None and not (
            r.result.recorded and r.result.recorded.comparator)
    ]


def _assess_trend(report: _Report, key: str, analyte: Analyte, results: tuple[Measurement, ...]) -> None:
    m = report.m
    trend = m.policy.labs.trend
    window = _exact(results)[: trend.results]
    if len(window) < trend.results:
        return
    newest, oldest = window[0], window[-1]
    assert newest.result.value is not None and oldest.result.value is not None  # noqa: S101 - _exact keeps valued ones
    if oldest.result.value <= 0:
        return
    fall = (oldest.result.value - newest.result.value) / oldest.result.value * 100
    if fall > trend.fall_percent.value:
        report.add(
            f"{key}-falling", Status.CAUTION, Severity.MODERATE,
            [measurement_evidence(r, analyte.label) for r in reversed(window)],
            trigger=measurement_trigger(newest, analyte.label),
            reason=f"down {fall:.0f} % from {number(oldest, m)} ({short_date(oldest.effective)}) over "
                   f"{len(window)} results (warning above {trend.fall_percent.value:g} %)",
            source=trend.fall_percent.source,
            advice="the label advises reducing or suspending azathioprine for a rapid fall in the white count",
        )


def _assess_creatinine_rise(report: _Report, analyte: Analyte, results: tuple[Measurement, ...]) -> None:
    m = report.m
    policy = m.policy.labs.creatinine_rise
    exact = _exact(results)
    if len(exact) < 2:
        return
    latest = exact[0]
    assert latest.effective is not None and latest.result.value is not None  # noqa: S101 - _exact guarantees
    since = latest.effective - timedelta(days=policy.months_window_days)
    earlier = [r for r in exact[1:] if r.effective is not None and r.effective >= since]
    if not earlier:
        return
    # Baseline = the lowest value in the window before the latest: the most sensitive reading of "a rise".
    baseline = min(earlier, key=lambda r: r.result.value if r.result.value is not None else float("inf"))
    assert baseline.result.value is not None  # noqa: S101 - _exact guarantees
    if baseline.result.value <= 0:
        return
    rise = (latest.result.value - baseline.result.value) / baseline.result.value * 100
    if rise > policy.percent.value:
        report.add(
            "creatinine-rising", Status.CAUTION, Severity.MODERATE,
            [measurement_evidence(baseline, analyte.label), measurement_evidence(latest, analyte.label)],
            trigger=measurement_trigger(latest, analyte.label),
            reason=f"up {rise:.0f} % from {number(baseline, m)} ({short_date(baseline.effective)}) within "
                   f"{policy.months_window_days} days (warning above {policy.percent.value:g} %)",
            source=policy.percent.source,
        )


def _is_core(family: RuleId, key: str, m: Mappings) -> bool:
    return any(key in group for group in m.analytes.required_analytes.for_rule(family))


def _egfr_from_creatinine(report: _Report, record: PatientRecord, now: datetime) -> None:
    """No current eGFR: estimate it from the deciding creatinine by CKD-EPI 2021 (race-free), or say why not.

    Creatinine has no threshold of its own, so without this a kidney check could look 'within limits'
    on creatinine alone."""
    m = report.m
    egfr_key = "egfr"
    if egfr_key in report.latest or _CREATININE not in report.latest:
        return
    egfr = m.analytes.analytes[egfr_key]
    creat = report.latest[_CREATININE]
    ckd = m.policy.labs.egfr_from_creatinine
    ev = measurement_evidence(creat, "creatinine used for the eGFR estimate")
    assert creat.effective is not None and creat.result.value is not None  # noqa: S101 - report.latest holds readable ones
    if now - creat.effective > timedelta(days=m.policy.labs.result_max_age_days.value):
        return  # the stale creatinine is already reported
    patient = record.patient
    sex = patient.gender if patient and patient.gender in ("female", "male") else None
    age = _age_years(patient.birth_date, creat.effective.date()) if patient and patient.birth_date else None
    why = None
    if sex is None:
        why = "the patient's sex (male/female) is not on record"
    elif age is None:
        why = "the patient's birth date is not on record"
    elif age < ckd.min_age_years:
        why = f"CKD-EPI applies to adults only (age {age} at the result)"
    if why is not None or sex is None or age is None:
        report.checked = [c for c in report.checked if not c.startswith(m.analytes.analytes[_CREATININE].label)]
        report.add(
            "egfr-not-computable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            [ev], ["an eGFR result (or the patient's age and sex)"], source=ckd.source,
            reason=f"no eGFR on file and CKD-EPI 2021 cannot estimate it from creatinine: {why}",
        )
        return
    scr = creat.result.value / ckd.umol_per_mg_dl
    kappa, alpha = ckd.kappa_mg_dl[sex], ckd.alpha[sex]  # type: ignore[index]
    value = (ckd.multiplier * min(scr / kappa, 1) ** alpha * max(scr / kappa, 1) ** ckd.exponent_above_kappa
             * ckd.age_base ** age * (ckd.female_factor if sex == "female" else 1.0))
    unit = m.units.dimensions[egfr.dimension].canonical
    egfr_shown = limit_amount(round(value), unit, m)
    shown = (f"eGFR {egfr_shown} estimated by CKD-EPI 2021 from creatinine {amount(creat, m)} "
             f"({short_date(creat.effective)}; {sex}, age {age})")
    th = egfr.threshold
    crossed = crosses(value, None, th) if th is not None else False
    if crossed and th is not None:
        report.add(
            "egfr-low", Status(th.status), th.severity,
            [ev],
            trigger=Trigger(concept="eGFR (CKD-EPI 2021 from creatinine)",
                            quantity=Quantity(value=round(value), unit=unit, decimals=0),
                            at=iso(creat.effective), reference=creat.ref),
            reason=f"below {limit_amount(th.value, unit, m)} ({shown})",
            **{**_threshold_facts(th), "checked": [f"CKD-EPI 2021: {source_name(ckd.source, m)}",
                                                   *_threshold_facts(th)["checked"]]},
        )
    else:
        report.checked.append(shown)
        report.evidence.append(ev)


def _age_years(birth: date, on: date) -> int:
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))
