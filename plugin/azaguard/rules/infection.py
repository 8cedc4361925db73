"""Infection hold (clinical-rules.md §3): fever, active infection or anti-infective treatment.

Any of them while on azathioprine means "consider holding azathioprine; contact the
prescriber"; fever with neutropenia is the most severe combination. Absence of fever
is only concluded from a readable temperature inside the window: without one this
rule never answers ok.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.dosage import schedule
from azaguard.findings import Evidence, Finding, Role, RuleId, Severity, Status, Trigger
from azaguard.mappings import Mappings, Threshold
from azaguard.record import Concept, ConditionEntry, Measurement, MedicineUse, PatientRecord
from azaguard.rules import labproof, signs
from azaguard.rules.amounts import order_daily_mg
from azaguard.rules.common import (
    MEDICATION_TYPES,
    Therapy,
    amount,
    applicability,
    crosses,
    decisive,
    is_current,
    is_future,
    iso,
    limit_amount,
    make_finding,
    measurement_evidence,
    measurement_trigger,
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
    source_name,
    split_future,
    uncertain_reason,
)
from azaguard.terminology import (
    InfectionMatch,
    drug_ingredients,
    infection_class,
    may_be_prophylaxis,
    names_match,
    non_systemic_names,
    prophylaxis_reason,
)
from azaguard.unidentified import unreadable_diagnosis

RULE: RuleId = "infection-hold"
_TEMPERATURE = "temperature"  # analyte key in mappings.analytes


def certainly_below(value: float, comparator: str | None, threshold: float) -> bool | None:
    """Is the true value below `threshold`? True/False when the recorded value decides it, else None.

    "<39" Cel cannot say whether 38.5 is under it; ">38.5" certainly is not below 38.0.
    Rounded to 6 decimals so 100.4 [degF] lands exactly on 38.0 Cel.
    """
    v = round(value, 6)
    upper_bound = comparator in (None, "<", "<=")  # the true value is at most v
    lower_bound = comparator in (None, ">", ">=")  # the true value is at least v
    if upper_bound and (v < threshold or (comparator == "<" and v <= threshold)):
        return True
    if lower_bound and v >= threshold:
        return False
    return None


def _fmt_cel(meas: Measurement) -> str:
    comp = meas.result.recorded.comparator if meas.result.recorded and meas.result.recorded.comparator else ""
    return f"{comp}{meas.result.value:.1f} °C" if meas.result.value is not None else "?"


class Temperatures(Struct, frozen=True):
    fevers: tuple[Measurement, ...]  # decidedly at or above the threshold, in the window
    normal: tuple[Measurement, ...]  # decidedly below it, in the window
    undecidable: tuple[tuple[Measurement, str], ...]  # in the window, with why it cannot be read
    outside: tuple[Measurement, ...]  # readings older than the window (or undated)


def temperatures(record: PatientRecord, m: Mappings, now: datetime) -> Temperatures:
    policy = m.policy.infection
    threshold = policy.fever_threshold_cel.value
    window = timedelta(hours=policy.fever_window_hours.value)
    fevers: list[Measurement] = []
    normal: list[Measurement] = []
    undecidable: list[tuple[Measurement, str]] = []
    outside: list[Measurement] = []
    for t in record.measurements_of(_TEMPERATURE):
        if is_future(t.effective, m, now):
            # Might be a real fever with a wrong date; never a reassuring reading.
            undecidable.append((t, f"dated in the future ({short_date(t.effective)}): not current evidence"))
            continue
        if t.effective is None or now - t.effective > window:
            outside.append(t)
            continue
        if t.result.value is None:
            undecidable.append((t, t.result.problem or "no numeric value"))
            continue
        comparator = t.result.recorded.comparator if t.result.recorded else None
        below = certainly_below(t.result.value, comparator, threshold)
        if below is None:
            undecidable.append((t, f"{recorded_amount(t, m)} cannot be compared with {threshold:g} °C"))
        elif below:
            normal.append(t)
        else:
            fevers.append(t)
    return Temperatures(tuple(fevers), tuple(normal), tuple(undecidable), tuple(outside))


@rule("infection-hold")
def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, early = applicability(record, mappings, now, RULE)
    if early is not None:
        return [early]
    m = mappings
    aza_refs = list(t.refs)
    aza_evidence = [order_evidence(o, t) for o in t.current]
    temps = temperatures(record, m, now)
    out: list[Finding] = []
    if temps.fevers:
        out.append(_fever(temps, record, m, now, aza_refs, aza_evidence))
    conds = current_conditions(record, m, now)
    out += _conditions(conds, m, aza_refs, aza_evidence, measured_fever=bool(temps.fevers))
    out += _anti_infectives(record, m, t, now, aza_refs, aza_evidence)
    # What the lab already knows, and what the leaflets tell patients to report (clinical-rules.md section 9).
    out += labproof.infection_findings(labproof.lab_infections(record, m, now), m, aza_refs, aza_evidence)
    out += signs.infection_findings(signs.current_signs(record, m, now), signs.near_fever(temps.normal, m), record,
                                    m, now, aza_refs, aza_evidence)
    out += _temperature_gaps(temps, record, m, aza_refs)
    out += _unreadable_records(record, m, t, now, aza_refs)
    out += _unidentified_diagnoses(record, m, aza_refs)
    if not out:
        out.append(_ok(temps, record, m, aza_refs, aza_evidence, conds))
    return out


# --- fever --------------------------------------------------------------------------------


def _fever(
    temps: Temperatures, record: PatientRecord, m: Mappings, now: datetime,
    aza_refs: list[str], aza_evidence: list[Evidence],
) -> Finding:
    policy = m.policy.infection
    hours = int(policy.fever_window_hours.value)
    peak = max(temps.fevers, key=lambda x: x.result.value or 0.0)
    evidence = [measurement_evidence(x, "temperature at or above fever threshold") for x in temps.fevers]
    neutro, neutro_note, neutro_ev = _neutropenia(record, m, now)
    prelim = "; the reading is preliminary" if all(x.preliminary for x in temps.fevers) else ""
    reason = f"fever threshold {policy.fever_threshold_cel.value:g} °C, last {hours} h{prelim}; " \
        + neutro_note.rstrip(".")
    if neutro and _febrile_enough(temps, m):
        return make_finding(
            m, RULE, "neutropenic-fever", Status.HOLD, Severity.CRITICAL,
            evidence=evidence + neutro_ev + aza_evidence, implicated=aza_refs, reason=reason,
            trigger=measurement_trigger(peak, "fever", as_recorded=True), source=policy.fever_threshold_cel.source,
        )
    return make_finding(
        m, RULE, "fever", Status.HOLD, Severity.HIGH,
        evidence=evidence + neutro_ev + aza_evidence, reason=reason, source=policy.fever_threshold_cel.source,
        missing=[] if neutro is False else ["a current neutrophil count (to exclude neutropenic fever)"],
        implicated=aza_refs, trigger=measurement_trigger(peak, "fever", as_recorded=True),
    )


def _febrile_enough(temps: Temperatures, m: Mappings) -> bool:
    """Fever high enough for the configured febrile-neutropenia definition: one reading at the single-reading
    threshold, or readings at the sustained threshold spanning the sustained time (IDSA)."""
    fn = m.policy.infection.febrile_neutropenia
    values = [(x.result.value, x.effective) for x in temps.fevers
              if x.result.value is not None and x.effective is not None]
    if any(round(v, 6) >= fn.temperature_cel[fn.choice].value for v, _ in values):
        return True
    sustained = [when for v, when in values if round(v, 6) >= fn.sustained_temperature_cel.value]
    span = max(sustained) - min(sustained) if len(sustained) > 1 else timedelta(0)
    return len(sustained) > 1 and span >= timedelta(minutes=fn.sustained_minutes.value)


def _neutropenia(
    record: PatientRecord, m: Mappings, now: datetime
) -> tuple[bool | None, str, list[Evidence]]:
    """(neutropenic?, a sentence saying so, evidence) from the deciding count in the window.

    'Neutropenic' uses the configured febrile-neutropenia choice (default: the BSR hold threshold,
    erring towards alarm; IDSA: ANC < 0.5), clinical-rules.md section 8."""
    policy = m.policy.infection
    fn = policy.febrile_neutropenia
    analyte = m.analytes.analytes[policy.neutropenia_analyte]
    days = int(policy.neutropenia_window_days.value)
    current, _ = split_future(record.measurements_of(policy.neutropenia_analyte), m, now)
    recent = [x for x in current if x.effective is not None and now - x.effective <= timedelta(days=days)]
    if not recent:
        return None, f"No result for {analyte.label} in the last {days} days: check a CBC urgently.", []
    latest, conflict = decisive(recent, "below")
    ev = [measurement_evidence(latest, f"latest {analyte.label} count")]
    limit = fn.anc_below[fn.choice]
    if latest.result.value is None:
        return None, f"The latest {analyte.label} count cannot be read ({latest.result.problem}){conflict}.", ev
    comparator = latest.result.recorded.comparator if latest.result.recorded else None
    threshold = Threshold(direction="below", value=limit.value, source=limit.source)
    low = crosses(latest.result.value, comparator, threshold)
    if low is None:
        shown_limit = limit_amount(limit.value, latest.result.unit, m)
        return None, f"The latest {analyte.label} count cannot be compared with {shown_limit}.", ev
    state = "below" if low else "not below"
    return low, (f"{analyte.label} {amount(latest, m)} ({state} {limit_amount(limit.value, latest.result.unit, m)}, "
                 f"febrile-neutropenia definition '{fn.choice}': {source_name(limit.source, m)}){conflict}."), ev


def _temperature_gaps(
    temps: Temperatures, record: PatientRecord, m: Mappings, aza_refs: list[str]
) -> list[Finding]:
    """Cannot-evaluate findings for the fever part: no reading in the window, or unreadable ones."""
    hours = int(m.policy.infection.fever_window_hours.value)
    temp_loinc = m.analytes.analytes[_TEMPERATURE].loinc
    problems = observation_problems(record, temp_loinc, m)
    out: list[Finding] = []
    if temps.undecidable or problems:
        refs = [x.ref for x, _ in temps.undecidable] + [p.ref for p in problems]
        reasons = [f"{result_name(x, 'temperature')}: {why}" for x, why in temps.undecidable]
        reasons += [problem_name(p) for p in problems]
        out.append(make_finding(
            m, RULE, "temperature-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
            subject="; ".join(reasons),
            evidence=[measurement_evidence(x, "temperature (unreadable)") for x, _ in temps.undecidable]
            + [problem_evidence(p) for p in problems],
            missing=["a readable temperature value"],
            implicated=aza_refs, reason=f"{len(refs)} temperature reading(s) could not be read",
        ))
    if not (temps.fevers or temps.normal or temps.undecidable):
        last = next((x for x in temps.outside if x.effective is not None), None)
        out.append(make_finding(
            m, RULE, "no-temperature", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"no temperature in the last {hours} h"
            + (f" (the last one is from {short_date(last.effective)})" if last else ""),
            evidence=[measurement_evidence(last, "last temperature (outside the window)")] if last else [],
            missing=[f"a body temperature from the last {hours} hours"],
            implicated=aza_refs,
        ))
    return out


# --- active infection ------------------------------------------------------------------------


def infection_match(concept: Concept, m: Mappings) -> str | None:
    """How a condition is recognised as an infection that holds ('ICD-10-CM R65.21 ...'), or None."""
    match = infection_class(concept, m)
    return match.how if match is not None and match.holds else None


class CurrentConditions(Struct, frozen=True):
    """Conditions that bear on the infection hold now, by class."""

    holds: tuple[tuple[ConditionEntry, InfectionMatch, str], ...]  # (condition, class, why current)
    neutropenia: tuple[tuple[ConditionEntry, InfectionMatch, str], ...]
    context: tuple[tuple[ConditionEntry, InfectionMatch, str], ...]
    undecidable: tuple[tuple[ConditionEntry, InfectionMatch, str], ...]  # might be current: cannot tell


def current_conditions(record: PatientRecord, m: Mappings, now: datetime) -> CurrentConditions:
    """Infection-class conditions that are current: an active status, or (an encounter diagnosis
    without clinicalStatus) recorded within the window. Undated or future-dated ones cannot be judged."""
    c = m.conditions
    window = timedelta(days=m.infections.encounter_diagnosis_window_days.value)
    skew = timedelta(minutes=m.policy.labs.future_skew_minutes.value)
    out: dict[str, list[tuple[ConditionEntry, InfectionMatch, str]]] = {
        "holds": [], "neutropenia": [], "context": [], "undecidable": [],
    }
    for cond in record.conditions:
        verification = (cond.verification_status or "").strip().lower()
        if verification in c.excluded_verification_statuses:
            continue
        match = infection_class(cond.concept, m)
        if match is None or match.kind == "not_infection":
            continue
        # Statuses compare as codes ("Active" is active); one outside the value set is judged like none.
        status = (cond.clinical_status or "").strip().lower()
        if status in c.active_clinical_statuses:
            why = f"status {cond.clinical_status}"
        elif status in c.ended_clinical_statuses or cond.abated:
            continue
        else:
            when = cond.recorded or cond.onset
            if when is None or when > now + skew:
                if match.holds:
                    problem = "undated" if when is None else f"dated in the future ({short_date(when)})"
                    what = f"status {cond.clinical_status!r} not recognised" if cond.clinical_status else "no status"
                    out["undecidable"].append((cond, match, f"{what}, {problem}"))
                continue
            if now - when > window:
                continue
            what = f"status {cond.clinical_status!r} not recognised" if cond.clinical_status else "without status"
            why = f"encounter diagnosis {what}, recorded {short_date(when)} (within {window.days} days)"
        if match.febrile:  # febrile neutropenia in one condition: both parts of the emergency
            out["neutropenia"].append((cond, match, why))
        group = "holds" if match.holds else ("neutropenia" if match.kind == "neutropenia" else "context")
        out[group].append((cond, match, why))
    return CurrentConditions(**{k: tuple(v) for k, v in out.items()})


def _condition_evidence(cond: ConditionEntry, match: InfectionMatch, why: str, label: str) -> Evidence:
    ver = f"/{cond.verification_status}" if cond.verification_status else ""
    role: Role = "context" if label.startswith("context") else "trigger"
    note = f"; {cond.date_note}" if cond.date_note else ""
    return Evidence(reference=cond.ref, role=role,
                    description=f"{label}, {why}{ver}: {cond.concept.label} ({match.how}){note}",
                    date=iso(cond.onset or cond.recorded))


def _conditions(
    cc: CurrentConditions, m: Mappings, aza_refs: list[str], aza_evidence: list[Evidence], measured_fever: bool
) -> list[Finding]:
    out: list[Finding] = []
    if cc.undecidable:
        out.append(make_finding(
            m, RULE, "condition-undated", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"{len(cc.undecidable)} infection diagnosis(es) without status or date",
            subject="; ".join(f"{c.concept.label} ({w})" for c, _, w in cc.undecidable),
            evidence=[_condition_evidence(c, x, w, "infection diagnosis") for c, x, w in cc.undecidable],
            missing=[f"the clinical status or date of the {c.concept.label} diagnosis" for c, _, _ in cc.undecidable],
            implicated=aza_refs,
        ))
    if not cc.holds and not (cc.neutropenia and measured_fever):
        return out
    names = ", ".join(dict.fromkeys(cond.concept.label for cond, _, _ in cc.holds + cc.neutropenia))
    evidence = [_condition_evidence(c, x, w, "current infection") for c, x, w in cc.holds]
    evidence += [_condition_evidence(c, x, w, "neutropenia") for c, x, w in cc.neutropenia]
    fever_coded = any(x.kind == "fever" or x.febrile for _, x, _ in cc.holds)
    first = (cc.holds + cc.neutropenia)[0][0]
    trigger = Trigger(concept=names, at=iso(first.onset or first.recorded), reference=first.ref)
    if cc.neutropenia and (fever_coded or measured_fever):
        out.append(make_finding(
            m, RULE, "febrile-neutropenia-coded", Status.HOLD, Severity.CRITICAL,
            evidence=evidence + aza_evidence, implicated=aza_refs, trigger=trigger, subject=names,
        ))
        return out
    out.append(make_finding(
        m, RULE, "active-infection", Status.HOLD, Severity.HIGH,
        evidence=evidence + aza_evidence,
        implicated=aza_refs, trigger=trigger, subject=lower_names(names),
    ))
    return out


def lower_names(names: str) -> str:
    """Condition names inside a sentence ('Pneumonia' → 'pneumonia'; 'COVID-19' stays)."""
    return ", ".join(n[0].lower() + n[1:] if len(n) > 1 and not n[1].isupper() else n for n in names.split(", "))


def _context_note(conds: CurrentConditions) -> str:
    if not (conds.context or conds.neutropenia):
        return ""
    names = ", ".join(dict.fromkeys(c.concept.label for c, _, _ in conds.context + conds.neutropenia))
    return (f"on record as context, not a hold by itself: {names} (chronic, latent, sequela, carrier or "
            "neutropenia without fever); keep it in mind when judging new symptoms")


# --- anti-infectives ------------------------------------------------------------------------


def anti_infective_match(order: MedicineUse, m: Mappings) -> tuple[bool, str] | None:
    """(prophylaxis possible, how it matched) for a systemic anti-infective, or None (terminology decides)."""
    hits = order.drugs.anti_infectives
    if not hits:
        return None
    how = "; ".join(dict.fromkeys(
        f"{h.key} by {h.basis}" if not h.key.startswith("ATC ") else f"{h.basis} (systemic anti-infective class)"
        for h in hits
    ))
    return may_be_prophylaxis(hits, m), how


def _counts(order: MedicineUse, record: PatientRecord, now: datetime) -> bool:
    """Current evidence of the drug: current status, a draft in an ordering workflow, a dispense or
    administration reaching now (as for azathioprine)."""
    return is_current(order, record, now)


def _anti_infectives(
    record: PatientRecord, m: Mappings, t: Therapy, now: datetime, aza_refs: list[str], aza_evidence: list[Evidence]
) -> list[Finding]:
    aza = {o.ref for o in t.orders}
    hits: list[tuple[MedicineUse, bool, str, str]] = []  # treatment or doubt: (order, may be proph., how, why)
    prophylaxis: list[tuple[MedicineUse, str, str]] = []  # (order, how, why it reads as prophylaxis)
    for order in record.medicine_uses:
        if order.ref in aza or not _counts(order, record, now):
            continue
        match = anti_infective_match(order, m)
        if match is None or any(non_systemic_names(d.route, m) for d in order.doses):
            continue  # not an anti-infective, or given by a route that is not systemic (eye, ear, skin)
        purpose, why = purpose_of(order, m, now)
        if purpose == "not-infection":
            continue  # dapsone for dermatitis herpetiformis: not an infection being treated
        if purpose == "prophylaxis":
            prophylaxis.append((order, match[1], why))
        else:
            hits.append((order, match[0], match[1], why))
    out: list[Finding] = []
    ai = m.medications.anti_infectives
    if hits:
        may_be = [o.ref for o, proph, _, _ in hits if proph]
        # Prophylaxis is only a question when nothing else on the list treats an infection.
        all_prophylaxis = len({o.ref for o, _, _, _ in hits} - set(may_be)) == 0
        note = f" {ai.prophylaxis_false_positive_note}" if may_be else ""
        labels = ", ".join(dict.fromkeys(o.medication.label for o, _, _, _ in hits if o.medication))
        advice = "contact the prescriber"
        if all_prophylaxis:
            advice = "it may be prophylaxis: if it treats an infection, contact the prescriber"
        out.append(make_finding(
            m, RULE, "anti-infective", Status.HOLD, Severity.HIGH, reason=note.strip() or None,
            evidence=[
                Evidence(reference=o.ref, role="trigger",
                         description=f"anti-infective {o.kind}, {o.status}: "
                         f"{o.medication.label if o.medication else '?'} ({how}); {why}",
                         date=iso(o.start or o.authored_on))
                for o, _, how, why in hits
            ] + aza_evidence,
            implicated=aza_refs, trigger=order_trigger(hits[0][0]), subject=labels, advice=advice,
        ))
    if prophylaxis:
        caution = ai.prophylaxis.caution if ai.prophylaxis is not None else "confirm there is no active infection"
        labels = ", ".join(dict.fromkeys(o.medication.label for o, _, _ in prophylaxis if o.medication))
        out.append(make_finding(
            m, RULE, "anti-infective-prophylaxis", Status.CAUTION, Severity.MODERATE,
            evidence=[
                Evidence(reference=o.ref, role="trigger",
                         description=f"prophylactic anti-infective {o.kind}, {o.status}: "
                         f"{o.medication.label if o.medication else '?'} ({how}); {why}",
                         date=iso(o.start or o.authored_on))
                for o, how, why in prophylaxis
            ] + aza_evidence,
            implicated=aza_refs, trigger=order_trigger(prophylaxis[0][0]), subject=labels,
            reason=f"given as prophylaxis ({'; '.join(w for _, _, w in prophylaxis)})",
            advice=caution.removeprefix("prophylaxis: "),
        ))
    return out


Purpose = Literal["prophylaxis", "treatment", "doubt", "not-infection"]


def purpose_of(order: MedicineUse, m: Mappings, now: datetime) -> tuple[Purpose, str]:
    """Treatment or prophylaxis, from the order's reason, its regimen (dosage module) and the drug:
    a reason that is an acute infection is treatment; a prophylaxis, latent or carrier reason is prophylaxis
    unless the regimen is a treatment dose (doubt); without a reason, the drug's prophylaxis regimen decides.
    Doubt holds (mappings: anti_infectives.prophylaxis.decision)."""
    for reason in order.reasons:
        found = infection_class(reason, m)
        # "Prophylaxis of recurrent UTI" names the infection it prevents: not one being treated.
        if found is not None and found.holds and prophylaxis_reason([reason], m) is None:
            return "treatment", f"its reason {reason.label!r} is an infection"
    other_use = _non_infective_use(order, m)
    if other_use is not None:
        return "not-infection", other_use
    why = prophylaxis_reason(order.reasons, m)
    if why is None:
        latent = next((r for r in order.reasons if (x := infection_class(r, m)) is not None and x.kind == "context"),
                      None)
        why = f"reason {latent.label!r} (a latent, carrier or chronic state)" if latent is not None else None
    fit, regimen = _regimen(order, m, now)
    if why is not None:
        if fit == "exceeds":
            return "doubt", f"{why}, but {regimen}: a treatment dose"
        return "prophylaxis", why + (f"; {regimen}" if fit == "fits" else "")
    if fit == "fits":
        return "prophylaxis", f"no reason recorded; {regimen}"
    return "doubt", "no reason says prophylaxis" + (f" and {regimen}" if regimen else "")


def _non_infective_use(order: MedicineUse, m: Mappings) -> str | None:
    """The reason, when it is one of the drug's non-infective uses (mappings: non_infective_uses)."""
    keys = {h.key for h in order.drugs.anti_infectives}
    for ing in m.medications.anti_infectives.ingredients:
        uses = ing.non_infective_uses
        if ing.name not in keys or uses is None:
            continue
        for reason in order.reasons:
            codes = [c.code.strip().upper() for c in reason.codings
                     if m.systems.name_of(c.system) in ("icd10cm", "icd10")]
            if any(code.startswith(p.upper()) for code in codes for p in uses.icd10_prefixes) or names_match(
                    reason.names, uses.words):
                return f"its reason {reason.label!r}: {uses.note}"
    return None


def _regimen(order: MedicineUse, m: Mappings, now: datetime) -> tuple[str, str]:
    """Whether the order's schedule and amount are its drug's prophylaxis regimen: ('fits' | 'exceeds' |
    'unknown' | 'none', how it was read). 'none': a drug given alike for both (isoniazid, entecavir)."""
    keys = {h.key for h in order.drugs.anti_infectives}
    specs = {i.name: i.prophylaxis_regimen for i in m.medications.anti_infectives.ingredients if i.name in keys}
    if not keys or set(specs) != keys or any(spec is None for spec in specs.values()):
        return "none", ""
    sched = schedule(order.doses, ref=order_name(order), now=now, start=order.start, m=m)
    if sched.administrations_per_day is None:
        return "unknown", "the regimen cannot be read (" + "; ".join(sched.missing) + ")"
    per_day = sched.administrations_per_day
    shown = f"{per_day:.3g} administration(s) a day ({sched.how})"
    for key, spec in specs.items():
        if spec is None:
            continue
        if spec.single_dose and not sched.single_dose:
            return "exceeds", f"{shown}, not a single dose ({spec.note})"
        if spec.max_administrations_per_day is not None and per_day > spec.max_administrations_per_day + 1e-9:
            return "exceeds", f"{shown} ({spec.note})"
        if spec.max_mg_per_day is not None:
            reading = order_daily_mg(order, key, now, None, m)
            if reading.mg_per_day is None:
                return "unknown", f"the {key} amount cannot be read ({'; '.join(reading.missing)})"
            if reading.mg_per_day > spec.max_mg_per_day + 1e-9:
                return "exceeds", f"{key} {reading.mg_per_day:g} mg/day ({spec.note})"
            shown += f", {key} {reading.mg_per_day:g} mg/day"
    notes = "; ".join(dict.fromkeys(spec.note for spec in specs.values() if spec is not None))
    return "fits", f"{'a single dose' if sched.single_dose else shown}: a prophylaxis regimen ({notes})"


# --- unreadable records, ok ---------------------------------------------------------------------


def _unreadable_records(
    record: PatientRecord, m: Mappings, t: Therapy, now: datetime, aza_refs: list[str]
) -> list[Finding]:
    """Conditions or medication records that might show an infection but could not be read, identified,
    or placed in time (a status the rules do not expect)."""
    lines: list[str] = []
    refs: list[str] = []
    evidence: list[Evidence] = []
    aza = {o.ref for o in t.orders}
    for p in record.problems:
        concept = Concept(codings=p.codes)
        maybe_drug = not p.codes or bool(drug_ingredients(concept, m).anti_infectives)
        relevant = p.resource_type == "Condition" or (p.resource_type in MEDICATION_TYPES and maybe_drug)
        if relevant:
            refs.append(p.ref)
            lines.append(problem_name(p))
            evidence.append(problem_evidence(p))
    for order in record.medicine_uses:
        if order.ref in aza:
            continue
        anti = anti_infective_match(order, m)
        if order.status_class == "uncertain" and anti is not None:
            refs.append(order.ref)
            lines.append(uncertain_reason(order))
            evidence.append(Evidence(reference=order.ref, role="trigger", description=f"anti-infective "
                                     f"{order.kind} with uncertain status '{order.status}': {anti[1]}"))
            continue
        current_or_uncertain = _counts(order, record, now) or order.status_class == "uncertain"
        if not order.medication_problem or not current_or_uncertain:
            continue
        if anti is None:
            refs.append(order.ref)
            lines.append(f"{order_name(order)}: {order.medication_problem}")
            evidence.append(Evidence(reference=order.ref, role="trigger", description=f"unidentified medication "
                                     f"{order.kind}, {order.status}: {order.medication_problem}"))
    if not refs:
        return []
    return [make_finding(
        m, RULE, "record-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
        subject="; ".join(lines),
        evidence=evidence, missing=["a readable version of each record listed"], implicated=aza_refs,
        reason=f"{len(refs)} condition or medication record(s) could not be read",
    )]


def _unidentified_diagnoses(record: PatientRecord, m: Mappings, aza_refs: list[str]) -> list[Finding]:
    """Diagnoses named only in a script the tables cannot read (and no diagnosis code): any of them may be an
    infection, so the check cannot clear, and the clinician is told which to read (issue 24; as for medicines)."""
    found = [(c, why) for c in record.conditions if (why := unreadable_diagnosis(c, m)) is not None
             and (c.clinical_status or "").strip().lower() not in m.conditions.ended_clinical_statuses
             and not c.abated]
    if not found:
        return []
    names = ", ".join(repr(c.concept.label) for c, _ in found)
    return [make_finding(
        m, RULE, "diagnosis-unidentified", Status.CANNOT_EVALUATE, Severity.MODERATE,
        checked=[f"named only in a script azaguard's tables cannot read, with no diagnosis code: {why}"
                 for _, why in found],
        evidence=[Evidence(reference=c.ref, role="trigger", date=iso(c.onset or c.recorded),
                           description=f"unidentified diagnosis: {c.concept.label}") for c, _ in found],
        missing=[f"a diagnosis code or a readable name for {c.concept.label!r}" for c, _ in found],
        implicated=aza_refs, subject=names, reason=f"{names} could not be identified and may be an infection",
    )]


def _ok(
    temps: Temperatures, record: PatientRecord, m: Mappings, aza_refs: list[str], aza_evidence: list[Evidence],
    conds: CurrentConditions,
) -> Finding:
    latest = temps.normal[0]
    return make_finding(
        m, RULE, "no-infection-signs", Status.OK, Severity.INFO,
        trigger=measurement_trigger(latest, "temperature", as_recorded=True),
        reason=f"{len(record.conditions)} condition(s), {len(record.medicine_uses)} medication order(s) checked",
        advice=_context_note(conds) or None,
        evidence=[measurement_evidence(x, "temperature below fever threshold", "context") for x in temps.normal]
        + [_condition_evidence(c, x, w, "context (not a hold by itself)") for c, x, w in conds.context]
        + aza_evidence,
        implicated=aza_refs,
    )

