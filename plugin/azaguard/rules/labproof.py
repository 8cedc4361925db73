"""Infection shown by the laboratory, not a diagnosis (clinical-rules.md section 9): facts for infection-hold.

A test of a listed pathogen (recognised by analyte: lab_infections.json) collected within the window counts
by its newest result: positive (a Detected/Positive value, a POS/DET/A/H flag, a number above the lab's limit,
an organism grown) holds for an acute pathogen; HBV DNA detected is a caution unless it rose (the configured
log10 over an earlier result within the history, or detected after undetectable): reactivation, hold and
refer; HCV RNA (chronic viraemia) is a caution. Not detected, negative, no growth, "<" the limit: no infection.
A result that says neither (no value, no limit, "indeterminate") cannot clear the rule.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.findings import Evidence, Finding, Severity, Status, Trigger
from azaguard.mappings import Mappings
from azaguard.record import Measurement, PatientRecord
from azaguard.rules.common import (
    iso,
    make_finding,
    measurement_evidence,
    quantity_of,
    recorded_amount,
    result_name,
    short_date,
    split_future,
)
from azaguard.terminology.labtests import result_class

PATHOGEN_PREFIX = "pathogen:"  # the record's analyte key for a pathogen test ("pathogen:cmv")

Verdict = Literal["hold", "reactivation", "caution", "undecided"]


class LabHit(Struct, frozen=True):
    """A pathogen test that bears on the infection hold now."""

    measurement: Measurement
    pathogen: str  # key in lab_infections.json
    label: str  # "CMV"
    verdict: Verdict
    why: str  # "value Detected", "2400 [IU]/mL above the lab's limit 35", "rose 1600-fold since 2 Aug 2026"
    baseline: Measurement | None = None

    def evidence(self) -> list[Evidence]:
        how = f" (recognised {self.measurement.how})" if self.measurement.how else ""
        out = [measurement_evidence(self.measurement, f"{self.label} test: {self.why}{how}")]
        if self.baseline is not None:
            out.append(measurement_evidence(self.baseline, f"earlier {self.label} result (baseline)"))
        return out

    def phrase(self, m: Mappings) -> str:
        """'CMV 2400 IU/mL, interpretation H (31 Oct 2026)'."""
        value = recorded_amount(self.measurement, m) if self.measurement.result.recorded else ""
        return f"{self.label} {value}{', ' if value else ''}{self.why} ({short_date(self.measurement.effective)})"


def lab_infections(record: PatientRecord, m: Mappings, now: datetime) -> list[LabHit]:
    """The pathogen tests that show (or may show) an infection now; negatives and old results are left out."""
    lab = m.lab_infections
    window = timedelta(days=lab.window_days.value)
    out: list[LabHit] = []
    for key, pathogen in lab.pathogens.items():
        results, _future = split_future(record.measurements_of(PATHOGEN_PREFIX + key), m, now)
        undated = [r for r in results if r.effective is None]
        recent = [r for r in results if r.effective is not None and now - r.effective <= window]
        for r in undated:
            cls, why = result_class(r, m, culture=pathogen.culture)
            if cls != "negative":
                out.append(LabHit(r, key, pathogen.label, "undecided", f"undated result ({why})"))
        if not recent:
            continue
        newest = recent[0]  # newest first (the record orders them)
        cls, why = result_class(newest, m, culture=pathogen.culture)
        if cls == "negative":
            continue
        if cls in ("equivocal", "unknown"):
            out.append(LabHit(newest, key, pathogen.label, "undecided", why))
        elif pathogen.kind == "acute":
            out.append(LabHit(newest, key, pathogen.label, "hold", why))
        elif pathogen.kind == "chronic":
            out.append(LabHit(newest, key, pathogen.label, "caution", why))
        else:
            out.append(_reactivation(newest, results, key, pathogen.label, why, m))
    return out


def _reactivation(
    newest: Measurement, results: tuple[Measurement, ...], key: str, label: str, why: str, m: Mappings
) -> LabHit:
    """HBV DNA detected: a rise over an earlier result within the history is reactivation, else a caution."""
    lab = m.lab_infections
    assert newest.effective is not None  # noqa: S101 - only dated results reach here
    since = newest.effective - timedelta(days=lab.history_days.value)
    earlier = [r for r in results if r.effective is not None and since <= r.effective < newest.effective]
    for before in earlier:
        cls, _ = result_class(before, m)
        if cls == "negative":
            return LabHit(newest, key, label, "reactivation",
                          f"{why}; undetectable on {short_date(before.effective)}", before)
    numeric = [r for r in earlier if r.result.value is not None and r.result.value > 0 and not (
        r.result.recorded is not None and r.result.recorded.comparator) and r.result.unit == newest.result.unit]
    if newest.result.value is not None and numeric:
        baseline = min(numeric, key=lambda r: r.result.value or 0.0)
        assert baseline.result.value is not None  # noqa: S101 - filtered above
        rise = math.log10(newest.result.value / baseline.result.value)
        if rise >= lab.hbv_reactivation_rise_log10.value:
            return LabHit(newest, key, label, "reactivation",
                          f"{why}; up {rise:.1f} log10 from {baseline.result.value:g} on "
                          f"{short_date(baseline.effective)}",
                          baseline)
    return LabHit(newest, key, label, "caution", why)


def when_of(hit: LabHit) -> str | None:
    return iso(hit.measurement.effective)


def _trigger(hits: list[LabHit], labels: str) -> Trigger:
    newest = max(hits, key=lambda h: h.measurement.effective or datetime.min.replace(tzinfo=UTC))
    return Trigger(concept=labels, at=when_of(newest), reference=newest.measurement.ref)


def infection_findings(
    hits: list[LabHit], m: Mappings, aza_refs: list[str], aza_evidence: list[Evidence]
) -> list[Finding]:
    """infection-hold's word on the lab's proof: hold (acute pathogen), hold and refer (HBV reactivation),
    caution (HBV DNA or HCV RNA detected without a rise), cannot-evaluate (a result that says neither)."""
    out: list[Finding] = []
    days = int(m.lab_infections.window_days.value)
    by: dict[str, list[LabHit]] = {}
    for h in hits:
        by.setdefault(h.verdict, []).append(h)
    if "reactivation" in by:
        react = by["reactivation"]
        names = "; ".join(h.phrase(m) for h in react)
        out.append(make_finding(
            m, "infection-hold", "hbv-reactivation", Status.HOLD, Severity.HIGH,
            checked=[names, f"a rise of at least {m.lab_infections.hbv_reactivation_rise_log10.value:g} log10, or "
                     "detection after undetectable, is reactivation"],
            source=m.lab_infections.hbv_reactivation_rise_log10.source,
            evidence=[e for h in react for e in h.evidence()] + aza_evidence, implicated=aza_refs,
            trigger=Trigger(concept="HBV DNA", quantity=quantity_of(react[0].measurement), at=when_of(react[0]),
                            reference=react[0].measurement.ref),
            advice="refer to hepatology",
        ))
    if "hold" in by:
        proven = by["hold"]
        labels = ", ".join(dict.fromkeys(h.label for h in proven))
        out.append(make_finding(
            m, "infection-hold", "lab-proven-infection", Status.HOLD, Severity.HIGH,
            checked=[*(h.phrase(m) for h in proven), f"collected in the last {days} days"],
            evidence=[e for h in proven for e in h.evidence()] + aza_evidence, implicated=aza_refs,
            trigger=_trigger(proven, labels), subject=labels, advice="contact the prescriber",
        ))
    if "caution" in by:
        chronic = by["caution"]
        labels = ", ".join(dict.fromkeys(h.label for h in chronic))
        out.append(make_finding(
            m, "infection-hold", "viraemia", Status.CAUTION, Severity.MODERATE,
            checked=[h.phrase(m) for h in chronic],
            evidence=[e for h in chronic for e in h.evidence()] + aza_evidence, implicated=aza_refs,
            trigger=_trigger(chronic, labels), subject=labels,
        ))
    if "undecided" in by:
        open_ = by["undecided"]
        out.append(make_finding(
            m, "infection-hold", "lab-result-undecided", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"{len(open_)} infection test(s) neither show nor exclude an infection",
            checked=[f"{result_name(h.measurement, h.label)} ({h.why})" for h in open_],
            evidence=[e for h in open_ for e in h.evidence()],
            missing=[f"a detected/not detected reading of {result_name(h.measurement, h.label)}" for h in open_],
            implicated=aza_refs,
        ))
    return out
