"""Dose (mg/kg/day), TPMT phenotype, and interacting drugs."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from msgspec import Struct

from azaguard.findings import Evidence, Finding, Severity, Status
from azaguard.mappings import Interaction, Mappings
from azaguard.record import Measurement, MedicineUse, PatientRecord
from azaguard.rules.amounts import order_daily_mg
from azaguard.rules.common import (
    MEDICATION_TYPES,
    Therapy,
    applicability,
    decisive,
    is_current,
    iso,
    make_finding,
    measurement_evidence,
    observation_problems,
    order_evidence,
    order_name,
    order_trigger,
    problem_evidence,
    problem_name,
    recorded_amount,
    result_name,
    rule,
    short_date,
    split_future,
    uncertain_reason,
)
from azaguard.rules.context import family_tpmt, tpmt_after_transfusion
from azaguard.terminology import AZATHIOPRINE, names_match
from azaguard.terminology.labtests import activity_class

_WEIGHT = "weight"  # analyte key for body weight


# --- daily dose, shared by the dose rule and the allopurinol interaction ----------------


class DailyDose(Struct, frozen=True):
    mg_per_day: float | None
    mg_per_kg_day: float | None
    how: tuple[str, ...]  # "azathioprine order MedicationRequest/1: 2 x 50 mg = 100 mg/day"
    missing: tuple[str, ...]
    evidence: tuple[Evidence, ...]


def daily_dose(record: PatientRecord, m: Mappings, now: datetime, t: Therapy) -> DailyDose:
    """Total azathioprine mg/day over the current orders (dosage module) and, with a recent weight, mg/kg/day."""
    how: list[str] = []
    dose_missing: list[str] = []
    evidence: list[Evidence] = [order_evidence(o, t) for o in t.current]
    weight, weight_missing, weight_evidence = _weight(record, m, now)
    weight_kg = weight.result.value if weight is not None and not weight_missing else None
    total = 0.0
    for order in dose_sources(t):
        reading = order_daily_mg(order, AZATHIOPRINE, now, weight_kg, m)
        dose_missing += reading.missing
        if reading.mg_per_day is not None:
            total += reading.mg_per_day
            how.append(f"{order_name(order)}: {reading.how}")
    evidence += weight_evidence
    # A weight-based dose already names the weight it lacks; the weight's own reason is said once.
    missing = [x for x in dose_missing if "body weight" not in x or not weight_missing] + weight_missing
    mg_per_day = total if not dose_missing else None
    mg_per_kg = None
    if mg_per_day is not None and weight is not None and weight.result.value is not None and not missing:
        mg_per_kg = mg_per_day / weight.result.value
        how.append(f"weight {weight.result.value:.4g} kg ({short_date(weight.effective)})")
    return DailyDose(mg_per_day, mg_per_kg, tuple(how), tuple(dict.fromkeys(missing)), tuple(evidence))


def dose_sources(t: Therapy) -> tuple[MedicineUse, ...]:
    """The current records that state the dose: the orders when there are any, else the statements, else
    the dispenses. A statement or dispense of the same drug as an order would count the dose twice."""
    for source in ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"):
        found = tuple(o for o in t.current if o.source == source)
        if found:
            return found
    return ()


def _weight(
    record: PatientRecord, m: Mappings, now: datetime
) -> tuple[Measurement | None, list[str], list[Evidence]]:
    label = m.analytes.analytes[_WEIGHT].label
    max_age = m.policy.dose.weight_max_age_days
    problems = observation_problems(record, m.analytes.analytes[_WEIGHT].loinc, m)
    evidence = [problem_evidence(p) for p in problems]
    missing = [f"a readable weight ({problem_name(p)})" for p in problems]
    usable, future = split_future(record.measurements_of(_WEIGHT), m, now)
    missing += [f"a correctly dated body weight (one is dated in the future, {short_date(r.effective)})"
                for r in future]
    dated = [r for r in usable if r.effective is not None]
    if not dated:
        return None, [*missing, "a recent body weight (none on file)"], evidence
    # Same-time weights that disagree: the lower decides (the higher mg/kg/day, the safer reading).
    latest, _conflict = decisive(dated, "below")
    evidence.append(measurement_evidence(latest, label))
    if latest.result.value is None or (latest.result.recorded is not None and latest.result.recorded.comparator):
        why = latest.result.problem or "not an exact quantity"
        return None, [*missing, f"a readable body weight ({result_name(latest, label)}: {why})"], evidence
    if latest.effective is not None and now - latest.effective > timedelta(days=max_age.value):
        return None, [
            *missing,
            f"a recent body weight (latest {short_date(latest.effective)}, limit {max_age.value:g} days)",
        ], evidence
    if latest.result.value <= 0:
        return None, [*missing, f"a plausible body weight ({result_name(latest, label)})"], evidence
    return latest, missing, evidence


@rule("dose")
def dose(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "dose")
    if stop is not None:
        return [stop]
    policy = mappings.policy.dose
    dd = daily_dose(record, mappings, now, t)
    implicated = [o.ref for o in t.current]
    if dd.mg_per_kg_day is None:
        return [make_finding(
            mappings, "dose", "dose-cannot-evaluate", Status.CANNOT_EVALUATE, Severity.MODERATE,
            evidence=dd.evidence, missing=dd.missing, implicated=implicated,
        )]
    value = dd.mg_per_kg_day
    checked = [f"{dd.mg_per_day:g} mg/day is {value:.2f} mg/kg/day", *dd.how]
    if value > policy.max_mg_per_kg_day.value:
        return [make_finding(
            mappings, "dose", "dose-above-max", Status.CAUTION, Severity.MODERATE,
            evidence=dd.evidence, implicated=implicated, checked=checked,
            reason=f"{value:.2f} mg/kg/day is above {policy.max_mg_per_kg_day.value:g} mg/kg/day",
        )]
    above_label = value > policy.label_ra_max_mg_per_kg_day.value
    note = " (above the US label RA maximum, within the protocol maximum)" if above_label else ""
    return [make_finding(
        mappings, "dose", "dose-within-max", Status.OK, Severity.INFO,
        evidence=dd.evidence, implicated=implicated, checked=checked,
        reason=f"{value:.2f} mg/kg/day, within {policy.max_mg_per_kg_day.value:g} mg/kg/day{note}",
    )]


# --- TPMT -----------------------------------------------------------------------------------


@rule("tpmt")
def tpmt(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    """TPMT and NUDT15 metaboliser status (phenotype or genotype) as CPIC says (clinical-rules.md section 6)."""
    t, stop = applicability(record, mappings, now, "tpmt")
    if stop is not None:
        return [stop]
    m = mappings
    policy = m.policy.tpmt
    implicated = [o.ref for o in t.current]
    out: list[Finding] = []
    coded = m.analytes.coded_analytes
    tpmt_loincs = [c for ca in coded.values() if ca.rule == "tpmt" for c in ca.loinc]
    for problem in observation_problems(record, tpmt_loincs, m):
        out.append(make_finding(
            m, "tpmt", "observation-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            subject=problem_name(problem),
            evidence=[problem_evidence(problem)], missing=["a readable TPMT/NUDT15 result"],
            implicated=implicated,
        ))
    by_gene: dict[str, list[Measurement]] = {}
    unassigned: list[Measurement] = []
    # Enzyme activity as a number (TPMT, NUDT15) is read beside the phenotypes and genotypes.
    keys = [k for k, ca in coded.items() if ca.rule == "tpmt"] + list(m.analytes.activity_analytes.by_key)
    for key in keys:
        usable, _future = split_future(record.measurements_of(key), m, now)
        for r in usable:
            (by_gene.setdefault(r.gene, []) if r.gene else unassigned).append(r)
    status: dict[str, str | None] = {}  # gene -> normal/intermediate/poor, None when unreadable
    evidence: list[Evidence] = []
    for gene, results in by_gene.items():
        phen, deciding = _gene_status(results, m)
        status[gene] = phen
        evidence += [measurement_evidence(r, f"{gene} result" + (
            f" (activity: {activity_class(r, m)[1]})" if r.analyte in m.analytes.activity_analytes.by_key else ""))
            for r in deciding]
        if phen is None:
            out.append(make_finding(
                m, "tpmt", f"{gene.lower()}-unrecognised", Status.CANNOT_EVALUATE, Severity.MODERATE,
                subject=gene, checked=[_shown(r, m) for r in deciding], advice=policy.genotype_unread.text,
                reason=f"the latest {gene} result ({short_date(deciding[0].effective)}) carries no recognised "
                       "metaboliser status or known diplotype", source=policy.source,
                evidence=[measurement_evidence(r, f"{gene} result") for r in deciding],
                missing=[f"an interpretable {gene} metaboliser status"], implicated=implicated,
            ))
    if unassigned:
        out.append(make_finding(
            m, "tpmt", "pgx-gene-unknown", policy.genotype_unread.status, policy.genotype_unread.severity,
            reason=f"{len(unassigned)} pharmacogenomic result(s) name no gene azaguard can read (TPMT or NUDT15)",
            checked=[_shown(r, m) for r in unassigned], advice=policy.genotype_unread.text, source=policy.source,
            evidence=[measurement_evidence(r, "pharmacogenomic result") for r in unassigned],
            missing=["the gene and metaboliser status of each pharmacogenomic result listed"],
            implicated=implicated,
        ))
    tp, nu = status.get("TPMT"), status.get("NUDT15")
    genes = [f"TPMT {tp or ('unreadable' if 'TPMT' in status else 'not on file')}",
             f"NUDT15 {nu or ('unreadable' if 'NUDT15' in status else 'not on file')}"]
    facts = {"evidence": evidence, "implicated": implicated, "checked": genes, "source": policy.source}
    if tp == "poor" or nu == "poor":
        gene = "TPMT" if tp == "poor" else "NUDT15"
        rec = policy.recommendations["poor"] if gene == "TPMT" else policy.nudt15["poor"]
        out.append(make_finding(m, "tpmt", f"{gene.lower()}-poor", rec.status, rec.severity, advice=rec.text,
                                reason=f"{gene} poor metaboliser", **facts))  # type: ignore[arg-type]
    elif tp == "intermediate" and nu == "intermediate":
        rec = policy.both_intermediate
        out.append(make_finding(m, "tpmt", "tpmt-nudt15-intermediate", rec.status, rec.severity, advice=rec.text,
                                reason="TPMT and NUDT15 intermediate metaboliser", **facts))  # type: ignore[arg-type]
    elif tp == "intermediate" or nu == "intermediate":
        gene = "TPMT" if tp == "intermediate" else "NUDT15"
        rec = policy.recommendations["intermediate"] if gene == "TPMT" else policy.nudt15["intermediate"]
        out.append(make_finding(m, "tpmt", f"{gene.lower()}-intermediate", rec.status, rec.severity, advice=rec.text,
                                reason=f"{gene} intermediate metaboliser", **facts))  # type: ignore[arg-type]
    elif tp == "normal":
        rec = policy.recommendations["normal"]
        nudt = None if nu == "normal" else "NUDT15 status is not on file: CPIC advises checking it too"
        out.append(make_finding(m, "tpmt", "tpmt-normal", rec.status, rec.severity, advice=rec.text, reason=nudt,
                                **facts))  # type: ignore[arg-type]
    if "TPMT" not in status and not any(f.status == Status.HOLD for f in out):
        rec = policy.no_result
        out.append(make_finding(
            m, "tpmt", "tpmt-no-result", rec.status, rec.severity, advice=rec.text, missing=["TPMT result"],
            reason="no TPMT result on file", **facts,  # type: ignore[arg-type]
        ))
    # Context (rules/context.py): a relative's deficiency is a reason to test; a phenotype soon after a transfusion
    # may be the donor's cells.
    context = [family_tpmt(record, m, implicated) if "TPMT" not in status else None,
               tpmt_after_transfusion(by_gene.get("TPMT", []), record, m, implicated)]
    return out + [f for f in context if f is not None]


def _shown(r: Measurement, m: Mappings) -> str:
    if r.analyte in m.analytes.activity_analytes.by_key:  # an activity: the number and what the lab said of it
        return f"TPMT activity {recorded_amount(r, m)}: {activity_class(r, m)[1]}"
    return r.result.text or (r.result.concept.label if r.result.concept else "no value")


def _gene_status(results: list[Measurement], m: Mappings) -> tuple[str | None, list[Measurement]]:
    """The gene's metaboliser status from its newest results (same-time results: the worse decides;
    any unreadable one among them makes it unreadable), and those deciding results."""
    dated = [r for r in results if r.effective is not None] or results
    newest = max((r.effective for r in dated if r.effective is not None), default=None)
    deciding = [r for r in dated if r.effective == newest]
    phens = [_phenotype(r, m) for r in deciding]
    if any(p is None for p in phens):
        return None, deciding
    return max(phens, key=lambda p: _RANK[p or "normal"]), deciding


_RANK = {"normal": 0, "intermediate": 1, "poor": 2}
_ALLELE = re.compile(r"(\*\d+[A-Z]?)\s*/\s*(\*\d+[A-Z]?)")


def _phenotype(meas: Measurement, m: Mappings) -> str | None:
    """normal / intermediate / poor from the answer code, an unambiguous name, or a known diplotype; an enzyme
    activity by the lab's own range and flags (never a cut-off of azaguard's)."""
    if meas.analyte in m.analytes.activity_analytes.by_key:
        return activity_class(meas, m)[0]
    spec = m.analytes.coded_analytes[meas.analyte]
    concept = meas.result.concept
    if concept is not None:
        coded = {spec.answers[c.code] for c in concept.codings if c.code in spec.answers}
        if len(coded) == 1:
            return coded.pop()
        if len(coded) > 1:
            return None
    names = list(concept.names if concept else ()) + ([meas.result.text] if meas.result.text else [])
    found = {phen for word, phen in spec.answer_names.items() if names_match(names, [word])}
    if len(found) == 1:
        return found.pop()
    if found or meas.gene is None:
        return None
    gene = m.analytes.pharmacogenomics.genes[meas.gene]
    diplotypes = {d.groups() for n in names for d in _ALLELE.finditer(n)}
    if len(diplotypes) != 1:
        return None
    alleles = diplotypes.pop()
    if any(a not in gene.normal_function_alleles | gene.no_function_alleles for a in alleles):
        return None
    return ("normal", "intermediate", "poor")[sum(a in gene.no_function_alleles for a in alleles)]


# --- interactions ----------------------------------------------------------------------------


@rule("interactions")
def interactions(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, stop = applicability(record, mappings, now, "interactions")
    if stop is not None:
        return [stop]
    aza_refs = [o.ref for o in t.current]
    aza_evidence = [order_evidence(o, t) for o in t.current]
    out: list[Finding] = []
    checked: list[str] = []
    aza = {o.ref for o in t.orders}
    for order in record.medicine_uses:
        uncertain = order.status_class == "uncertain"
        if order.ref in aza or order.drugs.azathioprine is not None:
            continue
        if not (is_current(order, record, now) or uncertain):
            continue
        if order.medication is None or (order.medication_problem and not order.medication.names):
            out.append(make_finding(
                mappings, "interactions", "medication-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
                subject=f"{order_name(order)} ({order.status}): {order.medication_problem or 'no medication'}",
                evidence=[Evidence(reference=order.ref, role="trigger",
                                   description=f"unidentified medication {order.kind}")],
                missing=[f"the medication of {order_name(order)}"], implicated=[*aza_refs, order.ref],
            ))
            continue
        checked.append(order.medication.label)
        for entry in mappings.medications.interactions:
            hit = order.drugs.interaction(entry.id)
            if hit is None or (entry.systemic_only and order.drugs.non_systemic):
                continue  # eye drops of chloramphenicol are not its marrow toxicity
            member = f"{hit.member}, " if hit.member and not hit.member.startswith("ATC ") else ""
            how = f"{'code' if hit.kind == 'code' else 'name'} ({member}{hit.basis})"
            if uncertain:
                out.append(make_finding(
                    mappings, "interactions", "interaction-status-uncertain", Status.CANNOT_EVALUATE,
                    Severity.MODERATE, reason=uncertain_reason(order),
                    advice=f"if it is taken: {entry.message}", source=entry.source,
                    evidence=[Evidence(reference=order.ref, role="trigger", description=f"interacting "
                                       f"{order.kind} ({entry.id}, matched by {how}), {order.status}"),
                              *aza_evidence],
                    missing=[f"the status of {order_name(order)}"], implicated=[*aza_refs, order.ref],
                    subject=order.medication.label, trigger=order_trigger(order),
                ))
                continue
            out.append(_interaction_finding(record, mappings, now, t, order, entry, how, aza_evidence))
    for problem in record.problems:
        if problem.resource_type not in MEDICATION_TYPES or problem.ref in t.unknown:
            continue
        out.append(make_finding(
            mappings, "interactions", "medication-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            subject=problem_name(problem),
            evidence=[problem_evidence(problem)], missing=["a readable version of the unreadable medication record"],
            implicated=[*aza_refs, problem.ref],
        ))
    if not out:
        names = ", ".join(e.id for e in mappings.medications.interactions)
        out.append(make_finding(
            mappings, "interactions", "no-interaction", Status.OK, Severity.INFO,
            evidence=aza_evidence, implicated=aza_refs, checked=checked or ["none"], subject=names,
            reason=f"{len(checked)} other active medication record(s)",
        ))
    return out


def _interaction_finding(
    record: PatientRecord,
    m: Mappings,
    now: datetime,
    t: Therapy,
    order: MedicineUse,
    entry: Interaction,
    how: str,
    aza_evidence: list[Evidence],
) -> Finding:
    label = order.medication.label if order.medication else "an unidentified medication"
    evidence = [
        Evidence(reference=order.ref, role="trigger", description=f"interacting {order.kind} ({entry.id}, "
                 f"matched by {how}), {order.status}: {label}", date=iso(order.start or order.authored_on)),
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
            status = Status(entry.dose_reduced_status or "caution")
            severity, code = entry.dose_reduced_severity or Severity.MODERATE, f"{entry.id}-dose-reduced"
            extra = (f"the azathioprine dose ({dd.mg_per_kg_day:.2f} mg/kg/day) is already at or below "
                     f"{limit:.2f} mg/kg/day ({entry.dose_reduction_fraction_max:g} x the label's usual "
                     f"{usual:g}): confirm it was reduced for the {entry.id} and watch the blood count"
                     + (f"; {entry.dose_reduced_message.rstrip('.')}" if entry.dose_reduced_message else ""))
        elif dd.mg_per_kg_day is not None:
            extra = (f"the azathioprine dose is {dd.mg_per_kg_day:.2f} mg/kg/day, above {limit:.2f} mg/kg/day "
                     f"({entry.dose_reduction_fraction_max:g} x the label's usual {usual:g}): not reduced")
        else:
            extra = "whether the dose was reduced cannot be checked: " + "; ".join(dd.missing)
    reduced = code.endswith("-dose-reduced")
    return make_finding(
        m, "interactions", code, status, severity,
        evidence=evidence, implicated=implicated, trigger=order_trigger(order), subject=label,
        checked=[f"{order_name(order)} ({order.status}) matched the {entry.id} interaction by {how}",
                 entry.message.rstrip("."), *([extra] if extra else [])],
        source=(entry.dose_reduced_source or entry.source) if reduced else entry.source,
        advice="confirm the dose was reduced; watch the blood count" if reduced else None,
    )
