"""Dose (mg/kg/day), TPMT phenotype, and interacting drugs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from azaguard.findings import Evidence, Finding, Severity, Status
from azaguard.mappings import Interaction, Mappings
from azaguard.record import Concept, DoseInstruction, Measurement, MedicationOrder, PatientRecord, Quantity
from azaguard.rules.common import (
    MEDICATION_TYPES,
    Therapy,
    applicability,
    is_current,
    iso,
    make_finding,
    measurement_evidence,
    names_match,
    observation_problems,
    order_evidence,
    problem_evidence,
    rule,
    short_date,
    uncertain_reason,
)
from azaguard.terminology import azathioprine_strength_mg
from azaguard.units import UnitError, normalise

_WEIGHT = "weight"  # analyte key for body weight
_DRUG_MASS = "drug-mass"  # units dimension of a dose in mg
_TPMT = "tpmt"  # coded analyte key for the TPMT phenotype
# Dose units that mean "tablets" (UCUM annotation {tbl} and what EHRs write instead); lower-case.


# --- daily dose, shared by the dose rule and the allopurinol interaction ----------------


@dataclass(frozen=True)
class DailyDose:
    mg_per_day: float | None
    mg_per_kg_day: float | None
    how: tuple[str, ...]  # "azathioprine order MedicationRequest/1: 2 x 50 mg = 100 mg/day"
    missing: tuple[str, ...]
    evidence: tuple[Evidence, ...]


def daily_dose(record: PatientRecord, m: Mappings, now: datetime, t: Therapy) -> DailyDose:
    """Total azathioprine mg/day over the current orders and, with a recent weight, mg/kg/day."""
    how: list[str] = []
    dose_missing: list[str] = []
    evidence: list[Evidence] = [order_evidence(o, t) for o in t.current]
    total = 0.0
    for order in dose_sources(t):
        mg, note, lacks = _order_mg_per_day(order, m)
        dose_missing += lacks
        if mg is not None:
            total += mg
            how.append(f"{order.ref}: {note}")
    weight, weight_missing, weight_evidence = _weight(record, m, now)
    evidence += weight_evidence
    missing = dose_missing + weight_missing
    mg_per_day = total if not dose_missing else None
    mg_per_kg = None
    if mg_per_day is not None and weight is not None and weight.value is not None and not missing:
        mg_per_kg = mg_per_day / weight.value
        how.append(f"weight {weight.value:.4g} kg ({short_date(weight.effective)})")
    return DailyDose(mg_per_day, mg_per_kg, tuple(how), tuple(dict.fromkeys(missing)), tuple(evidence))


def dose_sources(t: Therapy) -> tuple[MedicationOrder, ...]:
    """The current records that state the dose: the orders when there are any, else the statements, else
    the dispenses. A statement or dispense of the same drug as an order would count the dose twice."""
    for source in ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"):
        found = tuple(o for o in t.current if o.source == source)
        if found:
            return found
    return ()


def _order_mg_per_day(order: MedicationOrder, m: Mappings) -> tuple[float | None, str, list[str]]:
    if not order.doses:
        return None, "", [f"dosage instructions on {order.ref}"]
    total = 0.0
    notes: list[str] = []
    missing: list[str] = []
    for d in order.doses:
        if d.as_needed:
            missing.append(f"a regular schedule on {order.ref} (ordered as needed)")
            continue
        per_admin, note, lacks = _mg_per_administration(d, order, m)
        missing += lacks
        if d.per_day is None:
            text = f" (text: {d.text!r})" if d.text else ""
            missing.append(f"administrations per day on {order.ref}{text}")
        if per_admin is not None and d.per_day is not None:
            total += per_admin * d.per_day
            notes.append(f"{note} x {d.per_day:g}/day")
    if missing:
        return None, "", missing
    return total, " + ".join(notes) + f" = {total:g} mg/day", []


def _mg_per_administration(
    d: DoseInstruction, order: MedicationOrder, m: Mappings
) -> tuple[float | None, str, list[str]]:
    q = d.quantity
    if q is None or q.value is None:
        return None, "", [f"dose quantity on {order.ref}"]
    if q.comparator:
        return None, "", [f"an exact dose on {order.ref} (recorded {q.as_recorded()})"]
    if _is_tablets(q, m):
        strength = _strength_mg(order.medication, m)
        if strength is None:
            return None, "", [f"tablet strength of {order.ref} (RxNorm product code with a known strength)"]
        return q.value * strength, f"{q.value:g} tablet(s) x {strength:g} mg", []
    try:
        n = normalise(q.value, code=q.code, system=q.system, text=q.unit, dimension=_DRUG_MASS, mappings=m)
    except UnitError as exc:
        return None, "", [f"a known dose unit on {order.ref} ({exc})"]
    return n.value, f"{n.value:g} mg", []


def _is_tablets(q: Quantity, m: Mappings) -> bool:
    count_units = {u.lower() for u in m.units.dose_count_units.units}
    return any(u is not None and u.strip().lower() in count_units for u in (q.code, q.unit))


def _strength_mg(concept: Concept | None, m: Mappings) -> float | None:
    return azathioprine_strength_mg(concept, m)


def _weight(
    record: PatientRecord, m: Mappings, now: datetime
) -> tuple[Measurement | None, list[str], list[Evidence]]:
    label = m.analytes.analytes[_WEIGHT].label
    max_age = m.policy.dose.weight_max_age_days
    problems = observation_problems(record, m.analytes.analytes[_WEIGHT].loinc, m)
    evidence = [problem_evidence(p) for p in problems]
    missing = [f"a readable weight ({p.ref} failed to parse)" for p in problems]
    dated = [r for r in record.measurements_of(_WEIGHT) if r.effective is not None]
    if not dated:
        return None, [*missing, "a recent body weight (none on file)"], evidence
    latest = dated[0]
    evidence.append(measurement_evidence(latest, label))
    if latest.value is None or (latest.quantity is not None and latest.quantity.comparator):
        why = latest.unit_problem or "not an exact quantity"
        return None, [*missing, f"a readable body weight ({latest.ref}: {why})"], evidence
    if latest.effective is not None and now - latest.effective > timedelta(days=max_age.value):
        return None, [
            *missing,
            f"a recent body weight (latest {short_date(latest.effective)}, limit {max_age.value:g} days)",
        ], evidence
    if latest.value <= 0:
        return None, [*missing, f"a plausible body weight ({latest.ref})"], evidence
    return latest, missing, evidence


@rule("dose")
def dose(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "dose", include_recent=False)
    if stop is not None:
        return [stop]
    policy = mappings.policy.dose
    dd = daily_dose(record, mappings, now, t)
    implicated = [o.ref for o in t.current]
    if dd.mg_per_kg_day is None:
        return [make_finding(
            mappings, "dose", "dose-cannot-evaluate", Status.CANNOT_EVALUATE, Severity.MODERATE,
            "Cannot check the azathioprine dose per kg: " + "; ".join(dd.missing),
            "The dose in mg/kg/day needs the dose per administration, the administrations per day and "
            "a recent weight. Missing: " + "; ".join(dd.missing) + ".",
            evidence=dd.evidence, missing=dd.missing, implicated=implicated,
        )]
    value = dd.mg_per_kg_day
    context = (
        f"Computed: {'; '.join(dd.how)}. Maximum {policy.max_mg_per_kg_day.value:g} mg/kg/day "
        f"({policy.max_mg_per_kg_day.source}); the US label RA maximum is "
        f"{policy.label_ra_max_mg_per_kg_day.value:g} mg/kg/day ({policy.label_ra_max_mg_per_kg_day.source})."
    )
    if value > policy.max_mg_per_kg_day.value:
        return [make_finding(
            mappings, "dose", "dose-above-max", Status.CAUTION, Severity.MODERATE,
            f"Azathioprine {value:.2f} mg/kg/day is above {policy.max_mg_per_kg_day.value:g} mg/kg/day",
            f"Azathioprine {dd.mg_per_day:g} mg/day is {value:.2f} mg/kg/day. {context} Review the dose.",
            evidence=dd.evidence, implicated=implicated,
        )]
    above_label = value > policy.label_ra_max_mg_per_kg_day.value
    note = " (above the US label RA maximum, within the protocol maximum)" if above_label else ""
    return [make_finding(
        mappings, "dose", "dose-within-max", Status.OK, Severity.INFO,
        f"Azathioprine {value:.2f} mg/kg/day, within {policy.max_mg_per_kg_day.value:g} mg/kg/day{note}",
        f"Azathioprine {dd.mg_per_day:g} mg/day is {value:.2f} mg/kg/day{note}. {context}",
        evidence=dd.evidence, implicated=implicated,
    )]


# --- TPMT -----------------------------------------------------------------------------------


@rule("tpmt")
def tpmt(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "tpmt", include_recent=False)
    if stop is not None:
        return [stop]
    policy = mappings.policy.tpmt
    implicated = [o.ref for o in t.current]
    spec = mappings.analytes.coded_analytes[_TPMT]
    out: list[Finding] = []
    coded = mappings.analytes.coded_analytes
    tpmt_loincs = [c for ca in coded.values() if ca.rule == "tpmt" for c in ca.loinc]
    for problem in observation_problems(record, tpmt_loincs, mappings):
        out.append(make_finding(
            mappings, "tpmt", "observation-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            f"A possible TPMT result could not be read ({problem.ref})",
            f"{problem.ref} failed validation: {problem.error}. "
            "Review it in the chart before relying on TPMT status.",
            evidence=[problem_evidence(problem)], missing=[f"a readable {problem.ref}"],
            implicated=implicated,
        ))
    results = record.measurements_of(_TPMT)
    others = [
        r for key, ca in mappings.analytes.coded_analytes.items()
        if ca.rule == "tpmt" and key != _TPMT for r in record.measurements_of(key)
    ]
    other_note = (
        f" A pharmacogenomic genotype result is on file ({', '.join(r.ref for r in others)}) but is not "
        "interpreted here: review it." if others else ""
    )
    if not results:
        rec = policy.no_result
        out.append(make_finding(
            mappings, "tpmt", "tpmt-no-result", rec.status, rec.severity, rec.text,
            f"{rec.text} ({policy.source}).{other_note}",
            evidence=[measurement_evidence(r, coded[r.analyte].label) for r in others],
            missing=[f"{spec.label} result"], implicated=implicated,
        ))
        return out
    latest = results[0]  # newest first; an undated result sorts last
    ev = measurement_evidence(latest, spec.label)
    phenotype = _phenotype(latest, mappings)
    if phenotype is None:
        out.append(make_finding(
            mappings, "tpmt", "tpmt-unrecognised", Status.CANNOT_EVALUATE, Severity.MODERATE,
            f"TPMT result not recognised ({latest.ref}): check it manually",
            f"The latest {spec.label} ({ev.value or 'no value'}, {short_date(latest.effective)}) "
            f"({', '.join(spec.answers)}) nor a recognised phenotype name.{other_note}",
            evidence=[ev], missing=[f"an interpretable {spec.label}"], implicated=implicated,
        ))
        return out
    rec = policy.recommendations[phenotype]  # type: ignore[index]
    out.append(make_finding(
        mappings, "tpmt", f"tpmt-{phenotype}", rec.status, rec.severity, rec.text,
        f"{spec.label} {ev.value} ({short_date(latest.effective)}, {latest.ref}): {phenotype}. {rec.text} "
        f"({policy.source}).{other_note}",
        evidence=[ev], implicated=implicated,
    ))
    return out


def _phenotype(meas: Measurement, m: Mappings) -> str | None:
    """normal / intermediate / poor from the answer code, else from an unambiguous name."""
    spec = m.analytes.coded_analytes[_TPMT]
    concept = meas.coded_value
    if concept is not None:
        coded = {spec.answers[c.code] for c in concept.codings if c.code in spec.answers}
        if len(coded) == 1:
            return coded.pop()
        if len(coded) > 1:
            return None
    names = list(concept.names if concept else ()) + ([meas.text_value] if meas.text_value else [])
    found = {phen for word, phen in spec.answer_names.items() if names_match(names, [word])}
    return found.pop() if len(found) == 1 else None


# --- interactions ----------------------------------------------------------------------------


@rule("interactions")
def interactions(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "interactions", include_recent=False)
    if stop is not None:
        return [stop]
    aza_refs = [o.ref for o in t.current]
    aza_evidence = [order_evidence(o, t) for o in t.current]
    out: list[Finding] = []
    checked: list[str] = []
    aza = {o.ref for o in t.orders}
    for order in record.medication_orders:
        uncertain = order.status_class == "uncertain"
        if order.ref in aza or order.drugs.azathioprine is not None:
            continue
        if not (is_current(order, record, now) or uncertain):
            continue
        if order.medication is None or (order.medication_problem and not order.medication.names):
            out.append(make_finding(
                mappings, "interactions", "medication-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
                f"A medication {order.kind} cannot be identified ({order.ref}): interactions not excluded",
                f"{order.ref} ({order.status}): {order.medication_problem or 'no medication'}.",
                evidence=[Evidence(reference=order.ref, description=f"unidentified medication {order.kind}")],
                missing=[f"medication of {order.ref}"], implicated=[*aza_refs, order.ref],
            ))
            continue
        checked.append(order.medication.label)
        for entry in mappings.medications.interactions:
            hit = order.drugs.interaction(entry.id)
            if hit is None:
                continue
            how = f"{'code' if hit.kind == 'code' else 'name'} ({hit.basis})"
            if uncertain:
                out.append(make_finding(
                    mappings, "interactions", "interaction-status-uncertain", Status.CANNOT_EVALUATE,
                    Severity.MODERATE,
                    f"{order.medication.label} ({entry.id}) has an unexpected status {order.status!r}: "
                    "check whether it is taken",
                    f"{uncertain_reason(order)}. If it is taken: {entry.message} Source: {entry.source}.",
                    evidence=[Evidence(reference=order.ref, description=f"interacting {order.kind} "
                                       f"({entry.id}, matched by {how}), status {order.status}"), *aza_evidence],
                    missing=[f"the status of {order.ref}"], implicated=[*aza_refs, order.ref],
                ))
                continue
            out.append(_interaction_finding(record, mappings, now, t, order, entry, how, aza_evidence))
    for problem in record.problems:
        if problem.resource_type not in MEDICATION_TYPES or problem.ref in t.unknown:
            continue
        out.append(make_finding(
            mappings, "interactions", "medication-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            f"A medication record could not be read ({problem.ref}): interactions not excluded",
            f"{problem.ref} failed validation: {problem.error}.",
            evidence=[problem_evidence(problem)], missing=[f"a readable {problem.ref}"],
            implicated=[*aza_refs, problem.ref],
        ))
    if not out:
        names = ", ".join(e.id for e in mappings.medications.interactions)
        others = "; ".join(checked) if checked else "none"
        out.append(make_finding(
            mappings, "interactions", "no-interaction", Status.OK, Severity.INFO,
            f"No interacting drug among {len(checked)} other active medication record(s)",
            f"Checked the other current medication records ({others}) against: {names}.",
            evidence=aza_evidence, implicated=aza_refs,
        ))
    return out


def _interaction_finding(
    record: PatientRecord,
    m: Mappings,
    now: datetime,
    t: Therapy,
    order: MedicationOrder,
    entry: Interaction,
    how: str,
    aza_evidence: list[Evidence],
) -> Finding:
    label = order.medication.label if order.medication else order.ref
    evidence = [
        Evidence(reference=order.ref, description=f"interacting {order.kind} ({entry.id}, matched by {how}), "
                 f"status {order.status}: {label}", date=iso(order.start or order.authored_on)),
        *aza_evidence,
    ]
    implicated = [*(o.ref for o in t.current), order.ref]
    status, severity = Status(entry.status), entry.severity
    code, extra = entry.id, ""
    if entry.dose_reduction_fraction_max is not None:
        # Choice: "usual dose" = the US label RA maximum (mg/kg/day). The azathioprine dose counts as
        # already reduced when it is at most that fraction of it; then caution instead of a hold.
        usual = m.policy.dose.label_ra_max_mg_per_kg_day.value
        limit = entry.dose_reduction_fraction_max * usual
        dd = daily_dose(record, m, now, t)
        evidence += [e for e in dd.evidence if e not in evidence]
        if dd.mg_per_kg_day is not None and dd.mg_per_kg_day <= limit:
            status, severity, code = Status.CAUTION, Severity.MODERATE, f"{entry.id}-dose-reduced"
            extra = (f" The azathioprine dose ({dd.mg_per_kg_day:.2f} mg/kg/day) is already at or below "
                     f"{limit:.2f} mg/kg/day ({entry.dose_reduction_fraction_max:g} x the label's usual "
                     f"{usual:g}): confirm it was reduced for the {entry.id} and watch the blood count.")
        elif dd.mg_per_kg_day is not None:
            extra = (f" The azathioprine dose is {dd.mg_per_kg_day:.2f} mg/kg/day, above {limit:.2f} "
                     "mg/kg/day "
                     f"({entry.dose_reduction_fraction_max:g} x the label's usual {usual:g}): not reduced.")
        else:
            extra = " Whether the dose was reduced cannot be checked: " + "; ".join(dd.missing) + "."
    summary = f"{label}: {entry.message}"
    if len(summary) > 139:
        summary = entry.message
    return make_finding(
        m, "interactions", code, status, severity, summary,
        f"{order.ref} ({label}, {order.status}) matched the {entry.id} interaction by {how}. {entry.message}"
        f"{extra} Source: {entry.source}.",
        evidence=evidence, implicated=implicated,
    )
