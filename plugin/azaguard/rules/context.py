"""Context that changes a threshold (clinical-rules §9): the indication and the trend, dialysis, a transfusion
before a TPMT phenotype, a relative's TPMT deficiency. Pure: (record, mappings, now) -> findings or None.

The contexts are data (mappings/meaning.json `context`); each rule asks here and decides what it changes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise

from msgspec.structs import replace as struct_replace

from azaguard.findings import Evidence, Finding, Severity, Status, Trigger
from azaguard.mappings import CodedContext, Mappings
from azaguard.record import ConditionEntry, Measurement, PatientRecord
from azaguard.record_meaning import Event, Related
from azaguard.rules.common import (
    amount,
    applicability,
    iso,
    make_finding,
    measurement_evidence,
    measurement_trigger,
    number,
    short_date,
    split_future,
)
from azaguard.terminology import names_match


def _norm(code: str) -> str:
    return code.replace(".", "").strip().upper()


def _coded(codes: list[tuple[str | None, str]], spec: CodedContext, m: Mappings) -> bool:
    """A code of the context: exact, or (ICD) under a listed parent ('Z49' holds 'Z49.01')."""
    for system, code in codes:
        name = m.systems.name_of(system)
        listed = spec.codes.get(name or "", frozenset())
        if code in listed:
            return True
        if name in ("icd10cm", "icd10") and any(_norm(code).startswith(_norm(x)) for x in listed):
            return True
    return False


def condition_in(record: PatientRecord, spec: CodedContext, m: Mappings) -> ConditionEntry | None:
    """A current condition of the context (by code, else by name); refuted/ended ones do not count."""
    c = m.conditions
    for cond in record.conditions:
        if (cond.verification_status or "") in c.excluded_verification_statuses:
            continue
        status = (cond.clinical_status or "").strip().lower()
        if status in c.ended_clinical_statuses or cond.abated:
            continue
        codes = [(x.system, x.code) for x in cond.concept.codings]
        if _coded(codes, spec, m) or names_match(cond.concept.names, spec.names):
            return cond
    return None


def _unit(meas: Measurement, m: Mappings) -> str:
    """The display unit of a result ("U/L"), as `amount` shows it."""
    return amount(meas, m).split(" ", 1)[-1]


def _condition_evidence(cond: ConditionEntry, what: str) -> Evidence:
    return Evidence(reference=cond.ref, description=f"{what}: {cond.concept.label}",
                    date=iso(cond.onset or cond.recorded))


# --- kidney: dialysis -------------------------------------------------------------------------------------


def dialysis(record: PatientRecord, m: Mappings, now: datetime) -> Finding | None:
    """On dialysis the eGFR and creatinine thresholds do not apply: say so instead of alerting. Dialysis is a current
    condition (dependence on dialysis), or a dialysis Procedure or Encounter within the recent window (an older one,
    or one dated in the future or not at all, does not show dialysis now)."""
    t, stop = applicability(record, m, now, "kidney")
    if stop is not None:
        return None
    spec = m.meaning.context.dialysis
    cond = condition_in(record, spec, m)
    if cond is not None:
        shown, evidence = cond.concept.label, _condition_evidence(cond, "dialysis")
    else:
        recent = timedelta(days=spec.recent_days.value)
        sessions = sorted((e for e in record.events if e.kind == "dialysis" and e.date is not None
                           and timedelta(0) <= now - e.date <= recent), key=lambda e: e.date or now, reverse=True)
        if not sessions:
            return None
        last = sessions[0]
        shown = f"{last.label}, {short_date(last.date)}"
        evidence = Evidence(reference=last.ref, description=f"dialysis: {last.label}", date=iso(last.date))
    return make_finding(
        m, "kidney", "on-dialysis", Status.NOT_APPLICABLE, Severity.INFO,
        subject=shown, checked=[spec.note.rstrip(".")],
        evidence=[evidence], implicated=[o.ref for o in t.current],
    )


# --- liver: autoimmune hepatitis and the ALT trend -------------------------------------------------------------


def alt_by_indication(findings: list[Finding], record: PatientRecord, m: Mappings, now: datetime) -> list[Finding]:
    """In autoimmune hepatitis a high ALT that keeps falling on treatment is response, not the alarm: the ALT hold
    becomes a caution naming the trend. A rise, or a single value, stays the alarm (with the indication named)."""
    spec = m.meaning.context.autoimmune_hepatitis
    cond = condition_in(record, spec, m)
    if cond is None:
        return findings
    results, _ = split_future(record.measurements_of("alt"), m, now)
    # The trend is judged on the three newest dated results; one of them unreadable (no value in a known unit), or
    # an undated ALT that cannot be placed, leaves the trend unknown: the hold stands (never "falling" by skipping).
    newest = [r for r in results if r.effective is not None][:3]
    series = [r for r in newest if r.result.value is not None]
    gaps = [r for r in newest if r.result.value is None] + [r for r in results if r.effective is None]
    latest_ref = series[0].ref if series else None
    out: list[Finding] = []
    for f in findings:
        is_alt_hold = f.status == Status.HOLD and latest_ref is not None and any(
            e.reference == latest_ref for e in f.evidence)
        if not is_alt_hold:
            out.append(f)
            continue
        values = [r.result.value for r in series if r.result.value is not None]  # newest first
        falling = not gaps and len(values) >= 2 and all(newer < older for newer, older in pairwise(values))
        trend = " → ".join(f"{amount(r, m)} ({short_date(r.effective)})" for r in reversed(series))
        evidence = [*f.evidence, _condition_evidence(cond, "indication"),
                    *(measurement_evidence(r, "ALT (trend)", "context") for r in series[1:])]
        if falling:
            out.append(make_finding(
                m, "liver", "alt-falling-in-autoimmune-hepatitis", Status.CAUTION, Severity.MODERATE,
                checked=[spec.note.rstrip("."), f"ALT {trend}", *f.checked], source=f.source,
                evidence=evidence, implicated=f.implicated, trigger=measurement_trigger(series[0], "ALT"),
                subject="ALT",
                reason="falling on treatment of autoimmune hepatitis (" + " → ".join(
                    number(r, m) for r in reversed(series)) + f" {_unit(series[0], m)}): response, not toxicity",
                advice="repeat it; a rise is the alarm",
            ))
        else:
            why = (f"the ALT trend cannot be judged: {', '.join(r.ref for r in gaps)} cannot be read or placed"
                   if gaps else f"the ALT is not falling ({trend})")
            out.append(struct_replace(f, checked=(*f.checked, f"indication: autoimmune hepatitis "
                                                  f"({cond.concept.label}); {why}, so it is judged as the alarm"),
                                      evidence=tuple(evidence)))
    return out


# --- TPMT: a relative's deficiency, a phenotype after a transfusion --------------------------------------------


def family_tpmt(record: PatientRecord, m: Mappings, implicated: list[str]) -> Finding | None:
    """A relative's TPMT/NUDT15 deficiency: a reason to test the patient, never the patient's phenotype."""
    spec = m.meaning.context.tpmt_family_history
    hits: list[Related] = [r for r in record.related
                           if _coded(list(r.codes), spec, m) or names_match(r.names, spec.names)]
    if not hits:
        return None
    who = ", ".join(dict.fromkeys(r.whose for r in hits))
    return make_finding(
        m, "tpmt", "tpmt-family-history", Status.CAUTION, Severity.MODERATE,
        checked=[spec.note.rstrip("."), *(f"{r.whose}: {', '.join(r.names) or 'unnamed'}" for r in hits)],
        evidence=[Evidence(reference=r.ref, description=f"{r.whose}'s record (not the patient's): "
                           f"{', '.join(r.names)}", date=r.date) for r in hits],
        missing=["the patient's own TPMT and NUDT15 status"], implicated=implicated,
        subject="TPMT and NUDT15", reason=f"family history of TPMT/NUDT15 deficiency ({who}), not the patient's result",
    )


def tpmt_after_transfusion(results: list[Measurement], record: PatientRecord, m: Mappings,
                           implicated: list[str]) -> Finding | None:
    """A TPMT phenotype (enzyme activity, not a genotype) measured within the window after a red-cell transfusion
    may reflect the donor's red cells (falsely normal): retest or genotype (CPIC)."""
    spec = m.meaning.context.transfusion
    window = timedelta(days=spec.window_days.value)
    genotype = set(m.analytes.coded_analytes["pgx-genotype"].loinc) if "pgx-genotype" in m.analytes.coded_analytes \
        else set()
    phenotypes = [r for r in results if r.effective is not None and r.loinc not in genotype]
    transfusions = [e for e in record.events if e.kind == "transfusion"]
    undated = [e for e in transfusions if e.date is None]
    undated_phenotypes = [r for r in results if r.effective is None and r.loinc not in genotype]
    # By calendar day: a transfusion the same day as the sample may have come first (the fail-safe reading).
    pairs = [(r, e, (r.effective.date() - e.date.date()).days) for r in phenotypes for e in record.events
             if e.kind == "transfusion" and e.date is not None and r.effective is not None
             and timedelta(0) <= r.effective.date() - e.date.date() <= window]
    if not pairs:
        if (undated and (phenotypes or undated_phenotypes)) or (undated_phenotypes and transfusions):
            return _transfusion_timing_unknown(undated, undated_phenotypes, transfusions, m, implicated)
        return None
    r, e, days = pairs[0]
    return make_finding(
        m, "tpmt", "tpmt-after-transfusion", Status.CAUTION, Severity.MODERATE,
        checked=[spec.note.rstrip("."), f"the TPMT phenotype of {short_date(r.effective)} was measured {days} days "
                 f"after {e.label} ({short_date(e.date)}); window {spec.window_days.value:g} days"],
        source=spec.window_days.source,
        evidence=[measurement_evidence(r, "TPMT phenotype"),
                  Evidence(reference=e.ref, description=f"red-cell transfusion: {e.label}", date=iso(e.date))],
        missing=["a TPMT genotype, or a phenotype more than the window after the last transfusion"],
        implicated=implicated, trigger=Trigger(concept=e.label, at=iso(e.date), reference=e.ref), subject="TPMT",
        reason=f"the TPMT phenotype was measured {days} days after a red-cell transfusion and may be the donor's",
    )


def _transfusion_timing_unknown(undated: list[Event], phenotypes: list[Measurement], transfusions: list[Event],
                                m: Mappings, implicated: list[str]) -> Finding:
    """A transfusion or a TPMT phenotype without a readable date: whether the phenotype came within the window after
    the transfusion cannot be told, so the phenotype cannot be trusted as it stands (never silence)."""
    spec = m.meaning.context.transfusion
    missing = [f"the date of {e.label} ({e.ref})" for e in undated] + [
        f"the date of the TPMT phenotype {r.ref}" for r in phenotypes]
    shown = undated or transfusions
    return make_finding(
        m, "tpmt", "tpmt-transfusion-timing-unknown", Status.CANNOT_EVALUATE, Severity.MODERATE,
        checked=[spec.note.rstrip("."), f"red-cell transfusion on record ({', '.join(e.label for e in shown)}), but "
                 + ("the transfusion" if undated else "the TPMT phenotype") + " has no readable date: whether the "
                 f"phenotype was measured within {spec.window_days.value:g} days after it cannot be checked"],
        source=spec.window_days.source,
        evidence=[Evidence(reference=e.ref, description=f"red-cell transfusion: {e.label}", date=iso(e.date))
                  for e in shown] + [measurement_evidence(r, "TPMT phenotype") for r in phenotypes],
        missing=missing, implicated=implicated, subject="TPMT",
        reason="a transfusion or TPMT phenotype date is missing",
    )
