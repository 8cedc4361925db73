"""What every rule family shares: is the patient on azathioprine, and how to say so.

Pure functions over PatientRecord + Mappings + now; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.display import decimals_of, format_day, format_quantity
from azaguard.findings import (
    Evidence,
    Finding,
    Quantity,
    Role,
    RuleId,
    Severity,
    Status,
    TherapyFact,
    Trigger,
)
from azaguard.mappings import Mappings, Threshold
from azaguard.naming import noun
from azaguard.record import Concept, Measurement, MedicineUse, ParseProblem, PatientRecord
from azaguard.registry import SPEC
from azaguard.terminology import MatchKind, drug_ingredients
from azaguard.wording import source_words

RuleFn = Callable[[PatientRecord, Mappings, datetime], list[Finding]]


def rule(rule_id: RuleId) -> Callable[[RuleFn], RuleFn]:
    """Mark a rule function with its fixed rule id (used when it must be reported as failed)."""

    def mark(fn: RuleFn) -> RuleFn:
        fn.rule_id = rule_id  # type: ignore[attr-defined]
        return fn

    return mark


def iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def short_date(dt: datetime | None) -> str:
    """'22 Oct 2026': the date as a clinician reads it (the evidence keeps the exact ISO time)."""
    return format_day(dt) if dt else "undated"


def amount(meas: Measurement, m: Mappings) -> str:
    """A result in its canonical unit as clinicians read it ("2.9 ×10⁹/L"), no more precise than recorded."""
    result = meas.result
    if result.value is None:
        return "?"
    q = result.recorded
    recorded = q.value if q is not None else None
    decimals = decimals_of(f"{recorded:g}") if isinstance(recorded, int | float) else None
    comparator = q.comparator if q is not None and q.comparator else ""
    return format_quantity(result.value, result.unit, m, recorded_decimals=decimals, comparator=comparator)


def number(meas: Measurement, m: Mappings) -> str:
    """The value of `amount` without its unit (for "from 6.0 to 2.9 ×10⁹/L")."""
    shown = amount(meas, m)
    return shown.split(" ", 1)[0]


def limit_amount(value: float, unit: str | None, m: Mappings) -> str:
    """A threshold in the unit of the value it is compared with ("3.5 ×10⁹/L")."""
    return format_quantity(value, unit, m, recorded_decimals=decimals_of(f"{value:g}"))


def source_name(source: str, m: Mappings) -> str:
    """A mappings source as clinicians cite it (the wording layer's one rule for it)."""
    return source_words(source, m)


# --- naming records for people (a FHIR id is linked from the evidence, never written in text) ----------

SOURCE_OF = {
    "MedicationRequest": "request", "MedicationStatement": "statement", "MedicationDispense": "dispense",
    "MedicationAdministration": "administration",
}


def order_name(order: MedicineUse) -> str:
    """'the Azathioprine 50 MG Oral Tablet order of 3 Jan 2026': a medication record named for people."""
    label = order.medication.label if order.medication else "unidentified medication"
    when = order.start or order.authored_on
    return f"the {label} {order.kind}" + (f" of {short_date(when)}" if when else "")


def result_name(meas: Measurement, label: str) -> str:
    """'the WBC result of 1 Nov 2026'."""
    return f"the {label} result" + (f" of {short_date(meas.effective)}" if meas.effective else " (undated)")


def problem_name(p: ParseProblem) -> str:
    """'a result that could not be read (no value)'."""
    return f"a {noun(p.resource_type)} that could not be read ({p.error.rstrip('.')})"


def quantity_of(meas: Measurement) -> Quantity | None:
    """The result's value as recorded (shown in display units by the wording layer)."""
    q = meas.result.recorded
    if q is None or q.value is None:
        return None
    return Quantity(value=q.value, unit=q.code or q.unit, comparator=q.comparator or "",
                    decimals=decimals_of(f"{q.value:g}"))


def recorded_amount(meas: Measurement, m: Mappings) -> str:
    """The result as recorded, in display units ("101.8 °F"); 'no value' without one."""
    q = quantity_of(meas)
    if q is None:
        return meas.result.text or (meas.result.concept.label if meas.result.concept else "no value")
    return format_quantity(q.value, q.unit, m, recorded_decimals=q.decimals, comparator=q.comparator)


def canonical_quantity(meas: Measurement) -> Quantity | None:
    """The result in its canonical unit, no more precise than recorded."""
    if meas.result.value is None:
        return None
    q = meas.result.recorded
    recorded = decimals_of(f"{q.value:g}") if q is not None and q.value is not None else None
    return Quantity(value=meas.result.value, unit=meas.result.unit, comparator=(q.comparator or "") if q else "",
                    decimals=recorded)


def measurement_trigger(meas: Measurement, concept: str, *, as_recorded: bool = False) -> Trigger:
    """What set a finding off: the result in its canonical unit, or as recorded (a temperature in °F)."""
    quantity = quantity_of(meas) if as_recorded else canonical_quantity(meas)
    return Trigger(concept=concept, quantity=quantity, at=iso(meas.effective), reference=meas.ref)


def order_trigger(order: MedicineUse) -> Trigger:
    return Trigger(
        concept=order.medication.label if order.medication else "an unidentified medication",
        at=iso(order.start or order.authored_on), reference=order.ref, source=SOURCE_OF.get(order.source),  # type: ignore[arg-type]
    )


def ago(dt: datetime | None, now: datetime) -> str:
    """'12 days ago'; never a negative count ('a date in the future')."""
    if dt is None:
        return "date unknown"
    days = (now - dt).days
    return f"{days} days ago" if days >= 0 else "a date in the future"


def azathioprine_match(concept: Concept | None, m: Mappings) -> MatchKind | None:
    """'code' when a known azathioprine code is present, 'name' on a name-only match, else None."""
    return drug_ingredients(concept, m).azathioprine


def is_current(order: MedicineUse, record: PatientRecord, now: datetime) -> bool:
    """Current therapy: a current status, a draft inside an ordering workflow, or a dispense/administration
    whose supply or effect reaches `now`."""
    if order.status_class == "current":
        return True
    if order.status_class == "draft":
        return record.ordering_context
    return order.status_class == "recent" and order.current_until is not None and now <= order.current_until


def _unknown_reason(t: Therapy) -> str:
    """Why therapy is unknown, naming a medication that may be azathioprine (a near miss) when there is one."""
    if t.maybe_azathioprine:
        return f"{t.maybe_azathioprine[0]} may be azathioprine (its name is close to it)"
    return "a medication record could not be read"


def uncertain_reason(order: MedicineUse) -> str:
    return (f"{order_name(order)} has status '{order.status}', which the rules do not expect, so whether "
            "it is current cannot be told")


class Therapy(Struct, frozen=True):
    """The patient's azathioprine exposure at `now`."""

    current: tuple[MedicineUse, ...]  # active / on-hold (+ draft in an ordering workflow)
    recent: tuple[MedicineUse, ...]  # stopped/completed, ended within the recent window
    stop_date_unknown: tuple[MedicineUse, ...]  # stopped/completed with no recorded end date
    matched_by_name: tuple[str, ...]  # refs of orders recognised by name only
    # Orders we cannot classify (Medication not found, or the resource failed to parse):
    # they might be azathioprine, so "not on azathioprine" cannot be concluded.
    unknown: tuple[str, ...]
    unknown_reasons: tuple[str, ...]
    # Medications whose name is close to azathioprine's but matches none exactly (terminology near miss).
    maybe_azathioprine: tuple[str, ...] = ()
    # A current order that renews earlier ones: its ref and when the therapy it continues began.
    continued_from: tuple[tuple[str, datetime], ...] = ()

    @property
    def on_current(self) -> bool:
        return bool(self.current)

    @property
    def start(self) -> datetime | None:
        """Earliest start of the current therapy (a renewal counts from the order it renews; None when any
        current order is undated)."""
        began = dict(self.continued_from)
        starts = [began.get(o.ref, o.start) for o in self.current]
        if not starts or any(s is None for s in starts):
            return None
        return min(s for s in starts if s is not None)

    @property
    def last_stop(self) -> datetime | None:
        ends = [o.end for o in self.recent if o.end]
        return max(ends) if ends else None

    @property
    def orders(self) -> tuple[MedicineUse, ...]:
        return self.current + self.recent + self.stop_date_unknown

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(o.ref for o in self.current + self.recent)


def therapy(record: PatientRecord, m: Mappings, now: datetime) -> Therapy:
    """The therapy state every rule asks of the same record, mappings and moment in one evaluation: worked
    out once and kept on the record (mappings and moment compared by identity: an equal instant in another
    zone is worked out again)."""
    found = record.derived.get("therapy")  # the last one asked (one evaluation asks one mappings and moment)
    if isinstance(found, _TherapyOf) and found.mappings is m and found.now is now:
        return found.therapy
    answer = _therapy(record, m, now)
    record.derived["therapy"] = _TherapyOf(m, now, answer)
    return answer


class _TherapyOf(Struct, frozen=True):
    """A Therapy with what it was worked out for."""

    mappings: Mappings
    now: datetime
    therapy: Therapy


def _therapy(record: PatientRecord, m: Mappings, now: datetime) -> Therapy:
    policy = m.policy.therapy
    window = timedelta(days=policy.recent_window_days.value)
    current: list[MedicineUse] = []
    recent: list[MedicineUse] = []
    unknown_stop: list[MedicineUse] = []
    by_name: list[str] = []
    unknown: list[str] = []
    reasons: list[str] = []
    maybe: list[str] = []
    for order in record.medicine_uses:
        if order.status_class == "never":
            continue
        match = order.drugs.azathioprine
        if match is None:
            if order.medication_problem and order.status_class in ("current", "uncertain"):
                unknown.append(order.ref)
                reasons.append(f"{order_name(order)}: {order.medication_problem}")
                if order.drugs.near_miss is not None and order.medication is not None:
                    maybe.append(order.medication.label)
            continue
        if match == "name":
            by_name.append(order.ref)
        if order.status_class == "uncertain":
            # Azathioprine, but whether it is taken cannot be told: never "not on azathioprine".
            unknown.append(order.ref)
            reasons.append(uncertain_reason(order))
        elif is_current(order, record, now):
            # An active order whose period has ended is still listed as current: the record says
            # active, and the fail-safe reading is that the drug is taken.
            current.append(order)
        elif order.status_class == "recent":
            if order.end is None:
                unknown_stop.append(order)
            elif now - order.end <= window:
                recent.append(order)
    for problem in record.problems:
        if problem.resource_type in MEDICATION_TYPES:
            concept = Concept(codings=problem.codes)
            if azathioprine_match(concept, m) or not problem.codes:
                unknown.append(problem.ref)
                reasons.append(f"{problem_name(problem)} could not be read: {problem.error}")
    return Therapy(
        current=tuple(current),
        recent=tuple(recent),
        stop_date_unknown=tuple(unknown_stop),
        matched_by_name=tuple(by_name),
        unknown=tuple(unknown),
        unknown_reasons=tuple(reasons),
        maybe_azathioprine=tuple(maybe),
        continued_from=_renewals(record, current, m),
    )


def _renewals(
    record: PatientRecord, current: list[MedicineUse], m: Mappings
) -> tuple[tuple[str, datetime], ...]:
    """For each current order that renews earlier azathioprine orders (priorPrescription, or begun within
    the renewal gap of one's end), when the therapy began: a renewal is not a new start."""
    gap = timedelta(days=m.policy.therapy.renewal_max_gap_days.value)
    earlier = [o for o in record.medicine_uses
               if o.drugs.azathioprine is not None and o.status_class in ("current", "recent") and o.start]
    out: list[tuple[str, datetime]] = []
    for order in current:
        at, link, seen = order.start, order, {order.ref}
        while at is not None:
            before = next((p for p in earlier if p.ref not in seen and p.start is not None and p.start < at
                           and (p.ref == link.prior or _ends_near(p, at, gap))), None)
            if before is None or before.start is None:
                break
            at, link = before.start, before
            seen.add(before.ref)
        if at is not None and at != order.start:
            out.append((order.ref, at))
    return tuple(out)


def _ends_near(order: MedicineUse, start: datetime, gap: timedelta) -> bool:
    end = order.end or order.current_until
    return end is not None and start - gap <= end <= start + gap


MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"}
)


def therapy_fact(t: Therapy | None) -> TherapyFact | None:
    """The therapy as a fact: current, on hold, starting (a new order only), stopped/completed, stop unknown."""
    if t is None:
        return None
    if t.current:
        settled = [o for o in t.current if o.status_class != "draft"]
        o = (settled or list(t.current))[0]
        held = bool(settled) and all(x.status == "on-hold" for x in settled)
        state: Literal["current", "on-hold", "starting"] = (
            "starting" if not settled else "on-hold" if held else "current"
        )
        return TherapyFact(state=state, source=SOURCE_OF[o.source], reference=o.ref,  # type: ignore[arg-type]
                           since=iso(o.start or o.authored_on))
    if t.recent:
        o = max(t.recent, key=lambda x: x.end or datetime.min)
        return TherapyFact(state="completed" if o.status == "completed" else "stopped",
                           source=SOURCE_OF[o.source], reference=o.ref,  # type: ignore[arg-type]
                           since=iso(o.start), stopped=iso(o.end))
    if t.stop_date_unknown:
        o = t.stop_date_unknown[0]
        return TherapyFact(state="stop-date-unknown", source=SOURCE_OF[o.source],  # type: ignore[arg-type]
                           reference=o.ref, since=iso(o.start))
    return None


def make_finding(
    m: Mappings,
    rule: RuleId,
    code: str,
    status: Status,
    severity: Severity,
    *,
    evidence: Iterable[Evidence] = (),
    missing: Iterable[str] = (),
    implicated: Iterable[str] = (),
    therapy: Therapy | None = None,
    trigger: Trigger | None = None,
    subject: str | None = None,
    reason: str | None = None,
    advice: str | None = None,
    source: str | None = None,
    checked: Iterable[str] = (),
) -> Finding:
    """A finding of facts: the wording layer (azaguard.wording) says it, the rule writes no sentence."""
    return Finding(
        rule=rule,
        code=code,
        status=status,
        severity=severity,
        trigger=trigger,
        therapy=therapy_fact(therapy),
        subject=subject,
        reason=reason,
        advice=advice,
        source=source,
        checked=tuple(checked),
        evidence=tuple(evidence),
        missing=tuple(dict.fromkeys(missing)),
        implicated=tuple(dict.fromkeys(implicated)),
        mappings_version=m.version,
    )


def order_evidence(order: MedicineUse, therapy_: Therapy | None = None) -> Evidence:
    label = order.medication.label if order.medication else "medication not found"
    how = " (matched by name only)" if therapy_ and order.ref in therapy_.matched_by_name else ""
    if order.date_note:
        how += f" ({order.date_note})"
    return Evidence(
        reference=order.ref, role="therapy",
        description=f"azathioprine {order.kind}, {order.status}{how}: {label}",
        date=iso(order.start or order.authored_on),
    )


def measurement_evidence(meas: Measurement, label: str, role: Role = "trigger") -> Evidence:
    result = meas.result
    normalised = f"{result.value:.4g} {result.unit}" if result.value is not None and result.unit else None
    notes = []
    if meas.preliminary:
        notes.append("preliminary")
    if result.unit_from_text:
        notes.append("unit read from text/alias")
    if meas.how:
        notes.append(meas.how)
    if meas.date_note:
        notes.append(meas.date_note)
    suffix = f" ({', '.join(notes)})" if notes else ""
    q = result.recorded
    value = q.as_recorded() if q else (result.concept.label if result.concept else result.text)
    text = None if q else value
    return Evidence(
        reference=meas.ref, description=f"{label}{suffix}", role=role, quantity=quantity_of(meas), text=text,
        value=value, normalised=normalised, date=iso(meas.effective),
    )


def problem_evidence(problem: ParseProblem) -> Evidence:
    return Evidence(reference=problem.ref, role="trigger",
                    description=f"{noun(problem.resource_type)} that could not be read: {problem.error}")


def observation_problems(
    record: PatientRecord, loinc_codes: Iterable[str], m: Mappings
) -> list[ParseProblem]:
    """Observations that failed to parse and might have held one of these LOINC codes."""
    wanted = set(loinc_codes)
    out = []
    for p in record.problems:
        if p.resource_type != "Observation":
            continue
        if not p.codes or any(c.code in wanted for c in p.codes):
            out.append(p)
    return out


def applicability(
    record: PatientRecord, m: Mappings, now: datetime, rule: RuleId
) -> tuple[Therapy, Finding | None]:
    """The patient's therapy, and a finding to return instead of evaluating when the rule does not apply.

    Returns `not-applicable` when there is positive evidence of no (relevant) azathioprine, and
    `cannot-evaluate` when an unreadable order might be azathioprine.
    """
    t = therapy(record, m, now)
    include_recent = SPEC[rule].applies_after_stop
    patient = record.patient
    if patient is not None and patient.deceased:
        # No monitoring, dose, lab or vaccine alert for a patient who has died (clinical-rules.md section 9).
        return t, make_finding(
            m, rule, "patient-deceased", Status.NOT_APPLICABLE, Severity.INFO,
            evidence=[Evidence(reference=patient.ref, description="patient deceased", date=iso(patient.deceased_on))],
            trigger=Trigger(concept="death", at=iso(patient.deceased_on), reference=patient.ref),
        )
    applies = t.on_current or (include_recent and (t.recent or t.stop_date_unknown))
    if applies:
        return t, None
    if t.unknown:
        return t, make_finding(
            m, rule, "medication-unknown", Status.CANNOT_EVALUATE, Severity.MODERATE,
            evidence=[Evidence(reference=r, role="therapy", description="unidentified or uncertain medication record")
                      for r in t.unknown],
            missing=[f"confirmation whether {name} is azathioprine (its name is close to it)"
                     for name in t.maybe_azathioprine]
            or ["which medication each unreadable medication record is, and its status"],
            reason=_unknown_reason(t), subject="; ".join(t.unknown_reasons),
        )
    if t.recent or t.stop_date_unknown:
        refs = [o.ref for o in t.recent + t.stop_date_unknown]
        return t, make_finding(
            m, rule, "not-current", Status.NOT_APPLICABLE, Severity.INFO,
            evidence=[order_evidence(o, t) for o in t.recent + t.stop_date_unknown],
            implicated=refs, therapy=t,
        )
    return t, make_finding(
        m, rule, "not-on-azathioprine", Status.NOT_APPLICABLE, Severity.INFO,
    )


def crosses(value: float, comparator: str | None, th: Threshold) -> bool | None:
    """Whether the true value is past the threshold; None when a comparator leaves it open."""
    t = th.value
    if th.direction == "below":
        decide = {
            None: value < t,
            "<": True if value <= t else None,
            "<=": True if value < t else None,
            ">": False if value >= t else None,
            ">=": False if value >= t else None,
        }
    else:
        decide = {
            None: value > t,
            ">": True if value >= t else None,
            ">=": True if value > t else None,
            "<": False if value <= t else None,
            "<=": False if value <= t else None,
        }
    return decide.get(comparator)  # "ad" (sufficient to achieve) and anything else: undecidable


# --- trust: time and conflicts ------------------------------------------------------------------


def is_future(dt: datetime | None, m: Mappings, now: datetime) -> bool:
    """Dated after now (beyond the configured clock skew): not current evidence."""
    return dt is not None and dt > now + timedelta(minutes=m.policy.labs.future_skew_minutes.value)


def split_future(
    results: Iterable[Measurement], m: Mappings, now: datetime
) -> tuple[tuple[Measurement, ...], tuple[Measurement, ...]]:
    """(usable, future-dated): a result dated after now never clears or decides a rule."""
    usable: list[Measurement] = []
    future: list[Measurement] = []
    for r in results:
        (future if is_future(r.effective, m, now) else usable).append(r)
    return tuple(usable), tuple(future)


def future_note(future: Iterable[Measurement]) -> str:
    items = [f"a result dated {short_date(r.effective)}" for r in future]
    return "; ".join(items)


def decisive(dated: list[Measurement], direction: Literal["below", "above"] | None) -> tuple[Measurement, str]:
    """The result that decides: the newest; among results at that same time, an unreadable one first
    (it cannot be ruled out), else the worse value for the threshold's direction. Never input order.
    Returns (result, a note on the conflict or '')."""
    newest = max(r.effective for r in dated if r.effective is not None)
    tied = [r for r in dated if r.effective == newest]
    if len(tied) == 1:
        return tied[0], ""
    unreadable = [r for r in tied if r.result.value is None and r.result.concept is None and r.result.text is None]
    values = {r.result.value for r in tied}
    if unreadable:
        chosen = unreadable[0]
    elif direction is not None and None not in values:
        pick = min if direction == "below" else max
        chosen = pick(tied, key=lambda r: r.result.value if r.result.value is not None else 0.0)
    else:
        chosen = tied[0]
    if len(values) == 1 and not unreadable:
        return chosen, ""
    others = len(tied) - 1
    return chosen, f"; conflicting results at the same time ({others + 1} results): the worse one decides"
