"""What every rule family shares: is the patient on azathioprine, and how to say so.

Pure functions over PatientRecord + Mappings + now; no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.display import cite, decimals_of, format_day, format_quantity, humanise_text, sentence
from azaguard.findings import Evidence, Finding, RuleId, Severity, Status
from azaguard.mappings import Mappings, Threshold
from azaguard.record import Concept, Measurement, MedicationOrder, ParseProblem, PatientRecord, Quantity
from azaguard.terminology import MatchKind, drug_ingredients

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
    if meas.value is None:
        return "?"
    recorded = meas.quantity.value if meas.quantity is not None else None
    decimals = decimals_of(f"{recorded:g}") if isinstance(recorded, int | float) else None
    comparator = meas.quantity.comparator if meas.quantity is not None and meas.quantity.comparator else ""
    return format_quantity(meas.value, meas.unit, m, recorded_decimals=decimals, comparator=comparator)


def number(meas: Measurement, m: Mappings) -> str:
    """The value of `amount` without its unit (for "from 6.0 to 2.9 ×10⁹/L")."""
    shown = amount(meas, m)
    return shown.split(" ", 1)[0]


def recorded_amount(q: Quantity | None, m: Mappings) -> str:
    """A result as the lab sent it, for people ("2400 IU/mL", "<35 IU/mL"): its own unit in display form."""
    if q is None or q.value is None:
        return "no value"
    return format_quantity(q.value, q.code or q.unit, m, recorded_decimals=decimals_of(f"{q.value:g}"),
                           comparator=q.comparator or "")


def limit_amount(value: float, unit: str | None, m: Mappings) -> str:
    """A threshold in the unit of the value it is compared with ("3.5 ×10⁹/L")."""
    return format_quantity(value, unit, m, recorded_decimals=decimals_of(f"{value:g}"))


def source_name(source: str, m: Mappings) -> str:
    """A mappings source as clinicians cite it ("BSR 2017 monitoring guideline"), never a project file."""
    return cite(source, m) or humanise_text(source, m)


def ago(dt: datetime | None, now: datetime) -> str:
    """'12 days ago'; never a negative count ('a date in the future')."""
    if dt is None:
        return "date unknown"
    days = (now - dt).days
    return f"{days} days ago" if days >= 0 else "a date in the future"


def azathioprine_match(concept: Concept | None, m: Mappings) -> MatchKind | None:
    """'code' when a known azathioprine code is present, 'name' on a name-only match, else None."""
    return drug_ingredients(concept, m).azathioprine


def is_current(order: MedicationOrder, record: PatientRecord, now: datetime) -> bool:
    """Current therapy: a current status, a draft inside an ordering workflow, or a dispense/administration
    whose supply or effect reaches `now`."""
    if order.status_class == "current":
        return True
    if order.status_class == "draft":
        return record.ordering_context
    return order.status_class == "recent" and order.current_until is not None and now <= order.current_until


def uncertain_reason(order: MedicationOrder) -> str:
    return (f"{order.ref}: {order.kind} status {order.status!r} is not one the rules expect, so whether "
            "it is current cannot be told")


class Therapy(Struct, frozen=True):
    """The patient's azathioprine exposure at `now`."""

    current: tuple[MedicationOrder, ...]  # active / on-hold (+ draft in an ordering workflow)
    recent: tuple[MedicationOrder, ...]  # stopped/completed, ended within the recent window
    stop_date_unknown: tuple[MedicationOrder, ...]  # stopped/completed with no recorded end date
    matched_by_name: tuple[str, ...]  # refs of orders recognised by name only
    # Orders we cannot classify (Medication not found, or the resource failed to parse):
    # they might be azathioprine, so "not on azathioprine" cannot be concluded.
    unknown: tuple[str, ...]
    unknown_reasons: tuple[str, ...]

    @property
    def on_current(self) -> bool:
        return bool(self.current)

    @property
    def start(self) -> datetime | None:
        """Earliest recorded start among current orders (None when any is undated)."""
        starts = [o.start for o in self.current]
        if not starts or any(s is None for s in starts):
            return None
        return min(s for s in starts if s is not None)

    @property
    def last_stop(self) -> datetime | None:
        ends = [o.end for o in self.recent if o.end]
        return max(ends) if ends else None

    @property
    def orders(self) -> tuple[MedicationOrder, ...]:
        return self.current + self.recent + self.stop_date_unknown

    @property
    def refs(self) -> tuple[str, ...]:
        return tuple(o.ref for o in self.current + self.recent)


# The last answer: every rule asks it of the same record, mappings and moment in one evaluation. All
# three compared by identity (a record is frozen; an equal instant in another zone is worked out again).
_LAST_THERAPY: tuple[PatientRecord, Mappings, datetime, Therapy] | None = None


def therapy(record: PatientRecord, m: Mappings, now: datetime) -> Therapy:
    global _LAST_THERAPY
    last = _LAST_THERAPY
    if last is not None and last[0] is record and last[1] is m and last[2] is now:
        return last[3]
    found = _therapy(record, m, now)
    _LAST_THERAPY = (record, m, now, found)
    return found


def _therapy(record: PatientRecord, m: Mappings, now: datetime) -> Therapy:
    policy = m.policy.therapy
    window = timedelta(days=policy.recent_window_days.value)
    current: list[MedicationOrder] = []
    recent: list[MedicationOrder] = []
    unknown_stop: list[MedicationOrder] = []
    by_name: list[str] = []
    unknown: list[str] = []
    reasons: list[str] = []
    for order in record.medication_orders:
        if order.status_class == "never":
            continue
        match = order.drugs.azathioprine
        if match is None:
            if order.medication_problem and order.status_class in ("current", "uncertain"):
                unknown.append(order.ref)
                reasons.append(f"{order.ref}: {order.medication_problem}")
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
                reasons.append(f"{problem.ref} could not be read: {problem.error}")
    return Therapy(
        current=tuple(current),
        recent=tuple(recent),
        stop_date_unknown=tuple(unknown_stop),
        matched_by_name=tuple(by_name),
        unknown=tuple(unknown),
        unknown_reasons=tuple(reasons),
    )


MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration"}
)


def make_finding(
    m: Mappings,
    rule: RuleId,
    code: str,
    status: Status,
    severity: Severity,
    summary: str,
    detail: str,
    *,
    evidence: Iterable[Evidence] = (),
    missing: Iterable[str] = (),
    implicated: Iterable[str] = (),
) -> Finding:
    if len(summary) > 139:  # a whole clause, never cut mid-word
        summary = sentence(summary).rstrip(".")
    return Finding(
        rule=rule,
        code=code,
        status=status,
        severity=severity,
        summary=summary,
        detail=detail,
        evidence=tuple(evidence),
        missing=tuple(dict.fromkeys(missing)),
        implicated=tuple(dict.fromkeys(implicated)),
        mappings_version=m.version,
    )


def order_evidence(order: MedicationOrder, therapy_: Therapy | None = None) -> Evidence:
    label = order.medication.label if order.medication else "(medication not found)"
    how = " (matched by name only)" if therapy_ and order.ref in therapy_.matched_by_name else ""
    if order.date_note:
        how += f" ({order.date_note})"
    return Evidence(
        reference=order.ref,
        description=f"azathioprine {order.kind}, status {order.status}{how}: {label}",
        date=iso(order.start or order.authored_on),
    )


def measurement_evidence(meas: Measurement, label: str) -> Evidence:
    normalised = f"{meas.value:.4g} {meas.unit}" if meas.value is not None and meas.unit else None
    notes = []
    if meas.preliminary:
        notes.append("preliminary")
    if meas.unit_from_text:
        notes.append("unit read from text/alias")
    if meas.how:
        notes.append(meas.how)
    if meas.date_note:
        notes.append(meas.date_note)
    suffix = f" ({', '.join(notes)})" if notes else ""
    value = meas.quantity.as_recorded() if meas.quantity else (
        meas.coded_value.label if meas.coded_value else meas.text_value
    )
    return Evidence(
        reference=meas.ref, description=f"{label}{suffix}", value=value, normalised=normalised,
        date=iso(meas.effective),
    )


def problem_evidence(problem: ParseProblem) -> Evidence:
    return Evidence(reference=problem.ref, description=f"could not be read: {problem.error}")


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
    record: PatientRecord, m: Mappings, now: datetime, rule: RuleId, *, include_recent: bool
) -> tuple[Therapy, Finding | None]:
    """The patient's therapy, and a finding to return instead of evaluating when the rule does not apply.

    Returns `not-applicable` when there is positive evidence of no (relevant) azathioprine, and
    `cannot-evaluate` when an unreadable order might be azathioprine.
    """
    t = therapy(record, m, now)
    patient = record.patient
    if patient is not None and patient.deceased:
        # No monitoring, dose, lab or vaccine alert for a patient who has died (clinical-rules.md section 9).
        on = f" on {short_date(patient.deceased_on)}" if patient.deceased_on else ""
        return t, make_finding(
            m, rule, "patient-deceased", Status.NOT_APPLICABLE, Severity.INFO,
            f"The patient is deceased{on}: no checks apply",
            f"The record says the patient died{on} (Patient.deceased), so azathioprine safety checks do not apply.",
            evidence=[Evidence(reference=patient.ref, description=f"patient deceased{on}",
                               date=iso(patient.deceased_on))],
        )
    applies = t.on_current or (include_recent and (t.recent or t.stop_date_unknown))
    if applies:
        return t, None
    if t.unknown:
        return t, make_finding(
            m, rule, "medication-unknown", Status.CANNOT_EVALUATE, Severity.MODERATE,
            "Cannot tell whether the patient is on azathioprine: a medication record could not be read",
            "At least one medication record could not be identified or has a status the rules do not "
            "expect, so azathioprine therapy can be neither confirmed nor excluded. "
            + "; ".join(t.unknown_reasons),
            evidence=[Evidence(reference=r, description="unidentified or uncertain medication record")
                      for r in t.unknown],
            missing=[f"medication or status of {r}" for r in t.unknown],
        )
    if t.recent or t.stop_date_unknown:
        refs = [o.ref for o in t.recent + t.stop_date_unknown]
        return t, make_finding(
            m, rule, "not-current", Status.NOT_APPLICABLE, Severity.INFO,
            "Azathioprine recently stopped: this rule applies to current therapy",
            "Azathioprine was stopped; this rule checks patients currently taking it. "
            "The vaccination rule still applies after stopping.",
            evidence=[order_evidence(o, t) for o in t.recent + t.stop_date_unknown],
            implicated=refs,
        )
    return t, make_finding(
        m, rule, "not-on-azathioprine", Status.NOT_APPLICABLE, Severity.INFO,
        "Not on azathioprine (no current or recent order)",
        "No active, on-hold, or recently stopped azathioprine order is on the record.",
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
    items = [f"{r.ref} dated {short_date(r.effective)}" for r in future]
    return "; ".join(items)


def decisive(dated: list[Measurement], direction: Literal["below", "above"] | None) -> tuple[Measurement, str]:
    """The result that decides: the newest; among results at that same time, an unreadable one first
    (it cannot be ruled out), else the worse value for the threshold's direction. Never input order.
    Returns (result, a note on the conflict or '')."""
    newest = max(r.effective for r in dated if r.effective is not None)
    tied = [r for r in dated if r.effective == newest]
    if len(tied) == 1:
        return tied[0], ""
    unreadable = [r for r in tied if r.value is None and r.coded_value is None and r.text_value is None]
    values = {r.value for r in tied}
    if unreadable:
        chosen = unreadable[0]
    elif direction is not None and None not in values:
        pick = min if direction == "below" else max
        chosen = pick(tied, key=lambda r: r.value if r.value is not None else 0.0)
    else:
        chosen = tied[0]
    if len(values) == 1 and not unreadable:
        return chosen, ""
    others = ", ".join(r.ref for r in tied if r is not chosen)
    return chosen, f" Conflicting results at the same time ({others}); the worse one ({chosen.ref}) decides."
