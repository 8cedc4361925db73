"""Vaccination hold (clinical-rules.md §2): live vaccines and azathioprine do not mix.

Live vaccines planned or ordered while the patient is on azathioprine, or within the
post-stop wait, are held; a product we cannot classify needs a clinician; a live dose
given during therapy, or just before it started, is flagged for the prescriber.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.findings import Evidence, Finding, RuleId, Severity, Status, Trigger
from azaguard.mappings import Mappings
from azaguard.naming import noun
from azaguard.record import Concept, MedicineUse, ParseProblem, PatientRecord, VaccineEvent
from azaguard.rules.common import (
    Therapy,
    applicability,
    iso,
    make_finding,
    order_evidence,
    order_name,
    problem_evidence,
    problem_name,
    rule,
    short_date,
)
from azaguard.rules.dosing import daily_dose
from azaguard.terminology import VaccineKind, is_vaccine_concept, vaccine_class

RULE: RuleId = "vaccination-hold"
Kind = Literal["live", "not_live", "ambiguous", "not_vaccine"]


class Classified(Struct, frozen=True):
    """A vaccine event with what kind of product it is and why we think so."""

    event: VaccineEvent
    kind: Kind
    name: str
    basis: str  # "CVX 03 (live list)", "matched by name only ('yellow fever')", ...
    by_name: bool = False

    def evidence(self, what: str) -> Evidence:
        return Evidence(
            reference=self.event.ref, role="trigger",
            description=f"{what}: {self.name} ({self.basis}), {noun(self.event.source)} {self.event.status}",
            date=iso(self.event.date),
        )

    def trigger(self) -> Trigger:
        return Trigger(concept=self.name, at=iso(self.event.date), reference=self.event.ref)


_KINDS: dict[VaccineKind, Kind] = {
    "live": "live", "not-live": "not_live", "ambiguous": "ambiguous",
    # An immune globulin or monoclonal antibody recorded among vaccines (VariZIG, nirsevimab): never "may be live".
    "not-a-vaccine": "not_vaccine",
}


def classify(event: VaccineEvent, m: Mappings) -> Classified:
    """Live / not live / ambiguous, as the terminology reads the product (every event here is a vaccine)."""
    c = vaccine_class(event.vaccine, m, is_vaccine=True)
    return Classified(event, _KINDS[c.kind], c.name, c.basis, c.by_name)


def is_planned(event: VaccineEvent, m: Mappings) -> bool:
    """Planned: a due/overdue forecast, or an open order. A forecast or order status we cannot read counts
    as planned (never taken as "not due"); only known finished/not-needed statuses clear it."""
    policy = m.policy.vaccination
    if event.source == "ImmunizationRecommendation":
        return event.status not in policy.settled_forecast_statuses
    if event.source in ("MedicationRequest", "ServiceRequest"):
        return event.status in policy.order_active_statuses or event.status not in policy.order_inactive_statuses
    return False


def is_given(event: VaccineEvent) -> bool:
    # not-done is not a dose; entered-in-error is not a record.
    # A Procedure coded as a vaccination (claims: CPT 90707) is a dose given too.
    return event.source in ("Immunization", "MedicationAdministration", "Procedure") and event.status == "completed"


@rule("vaccination-hold")
def evaluate(record: PatientRecord, mappings: Mappings, now: datetime) -> list[Finding]:
    t, early = applicability(record, mappings, now, RULE)
    m = mappings
    vaccines = [classify(e, m) for e in record.vaccines]
    if early is not None:
        if early.status is Status.NOT_APPLICABLE and early.code != "patient-deceased":
            # A stop older than the recent window can still have a live vaccine inside its wait, given lately.
            window = timedelta(days=m.policy.therapy.recent_window_days.value)
            lately = [c for c in vaccines if is_given(c.event) and c.kind == "live" and c.event.date is not None
                      and now - c.event.date <= window]
            after = [f for f in _given_findings(lately, t, record, m) if f.code == "live-vaccine-given-after-stop"]
            if after:
                return after
        return [early]
    planned = [c for c in vaccines if is_planned(c.event, m)]
    out: list[Finding] = []
    out += _planned_findings(planned, t, record, m, now)
    out += _given_findings(
        [c for c in vaccines if is_given(c.event) and c.kind in ("live", "ambiguous")], t, record, m
    )
    problems = _vaccine_problems(record, m)
    if problems:
        out.append(_unreadable(problems, t, m))
    unidentified = _unidentified_orders(record, t, m)
    if unidentified:
        out.append(_unidentified(unidentified, t, m))
    if not out:
        out.append(_ok(t, record, m))
    return out


# --- planned vaccines -------------------------------------------------------------


def _planned_findings(
    planned: list[Classified], t: Therapy, record: PatientRecord, m: Mappings, now: datetime
) -> list[Finding]:
    out: list[Finding] = []
    live = [c for c in planned if c.kind == "live"]
    ambiguous = [c for c in planned if c.kind == "ambiguous"]
    inactivated = [c for c in planned if c.kind == "not_live"]
    exposure_evidence = _exposure(t)
    aza_refs = [o.ref for o in t.orders]
    tier = _tier(t, record, m, now)
    if live:
        out.append(_live_planned(live, t, exposure_evidence, aza_refs, tier, m, now))
    if ambiguous:
        names = _names(ambiguous)
        out.append(make_finding(
            m, RULE, "ambiguous-vaccine-planned", Status.CAUTION, Severity.HIGH,
            checked=[c.basis for c in ambiguous] + tier,
            evidence=[c.evidence("vaccine planned") for c in ambiguous] + exposure_evidence,
            missing=[f"the exact product (CVX code) of the planned {c.name} vaccine" for c in ambiguous],
            implicated=aza_refs + [c.event.ref for c in ambiguous],
            therapy=t, trigger=ambiguous[0].trigger(), subject=names,
        ))
    if inactivated:
        names = _names(inactivated)
        out.append(make_finding(
            m, RULE, "inactivated-vaccine-planned", Status.CAUTION, Severity.INFO, checked=tier,
            evidence=[c.evidence("vaccine planned") for c in inactivated] + exposure_evidence,
            implicated=aza_refs + [c.event.ref for c in inactivated],
            therapy=t, trigger=inactivated[0].trigger(), subject=names,
        ))
    return out


def _live_planned(
    live: list[Classified],
    t: Therapy,
    exposure_evidence: list[Evidence],
    aza_refs: list[str],
    tier: list[str],
    m: Mappings,
    now: datetime,
) -> Finding:
    names = _names(live)
    wait = int(m.policy.vaccination.post_stop_live_wait_days.value)
    evidence = [c.evidence("live vaccine planned") for c in live] + exposure_evidence
    implicated = aza_refs + [c.event.ref for c in live]
    source = m.policy.vaccination.post_stop_live_wait_days.source
    by_name = [c.name for c in live if c.by_name]
    notes = ([f"recognised as live by name only: {', '.join(by_name)}"] if by_name else []) + tier
    facts = {"therapy": t, "trigger": live[0].trigger(), "subject": names, "source": source, "checked": notes}
    in_time = _in_time(live, t, evidence, implicated, notes, m, now)
    if in_time is not None:
        return in_time
    last_stop = t.last_stop
    within_wait = bool(t.current) or (last_stop is not None and now - last_stop <= timedelta(days=wait))
    if within_wait:
        return make_finding(
            m, RULE, "live-vaccine-planned", Status.HOLD, Severity.CRITICAL,
            evidence=evidence, implicated=implicated, **facts,  # type: ignore[arg-type]
        )
    if t.current or t.recent:
        # Stopped longer ago than the configured wait (only when the therapy window is longer).
        return make_finding(
            m, RULE, "live-vaccine-after-wait", Status.CAUTION, Severity.LOW,
            evidence=evidence, implicated=implicated, **facts,  # type: ignore[arg-type]
        )
    return make_finding(
        m, RULE, "live-vaccine-stop-date-unknown", Status.CAUTION, Severity.HIGH,
        evidence=evidence,
        missing=[f"the stop date of {order_name(o)}" for o in t.stop_date_unknown],
        implicated=implicated, **facts,  # type: ignore[arg-type]
    )


def _in_time(
    live: list[Classified], t: Therapy, evidence: list[Evidence], implicated: list[str], notes: list[str],
    m: Mappings, now: datetime,
) -> Finding | None:
    """Vaccines in time (clinical-rules §9): a live vaccine planned before a planned start (every current order
    starts later) follows the pre-start rule; one planned at least the post-stop wait after a planned stop (every
    current order ends later) is a caution to confirm the stop. Anything else: None (the hold decides)."""
    policy = m.policy.vaccination
    names = _names(live)
    when = max(max(c.event.date or now, now) for c in live)  # the latest planned date; undated or overdue: now
    soonest = min(max(c.event.date or now, now) for c in live)
    starts = [o.start for o in t.current]
    wait = timedelta(days=policy.post_stop_live_wait_days.value)
    # An earlier course's post-stop wait still runs, or may (a course stopped on an unrecorded date).
    stopped_lately = bool(t.stop_date_unknown) or (t.last_stop is not None and soonest - t.last_stop < wait)
    if t.current and all(s is not None and s > now for s in starts) and not stopped_lately:
        start = min(s for s in starts if s is not None)
        gap = start - when
        before, avoid = policy.live_before_start_days.value, policy.live_avoid_within_start_days.value
        if gap < timedelta(days=avoid):
            return None
        # At least `before` days ahead: the advised timing (give it by then); between `avoid` and `before`: too close.
        code, severity, reason = (
            ("live-vaccine-before-planned-start", Severity.LOW,
             f"planned {gap.days} days before azathioprine starts ({short_date(start)}); give it by "
             f"{short_date(start - timedelta(days=before))}")
            if gap >= timedelta(days=before) else
            ("live-vaccine-close-to-planned-start", Severity.HIGH,
             f"only {gap.days} days before azathioprine starts ({short_date(start)}); advised gap at least "
             f"{before:g} days, and none within {avoid:g} days"))
        return make_finding(
            m, RULE, code, Status.CAUTION, severity, evidence=evidence, implicated=implicated,
            trigger=live[0].trigger(), subject=names, source=policy.live_before_start_days.source, checked=notes,
            reason=reason,
        )
    ends = [o.end for o in t.current]
    if t.current and all(e is not None and e > now for e in ends):
        stop = max(e for e in ends if e is not None)
        if soonest - stop >= wait:
            return make_finding(
                m, RULE, "live-vaccine-after-planned-stop", Status.CAUTION, Severity.MODERATE,
                evidence=evidence, implicated=implicated, trigger=live[0].trigger(), subject=names,
                source=policy.post_stop_live_wait_days.source, checked=notes,
                reason=f"planned {(soonest - stop).days} days after azathioprine's planned stop ({short_date(stop)}), "
                       f"after the {wait.days}-day wait",
            )
    return None


def _exposure(t: Therapy) -> list[Evidence]:
    """The orders that show the patient's azathioprine exposure (the wording says it from the therapy fact)."""
    return [order_evidence(o, t) for o in (t.current or t.recent or t.stop_date_unknown)]


def _names(items: list[Classified]) -> str:
    return ", ".join(dict.fromkeys(c.name for c in items))


# --- vaccines already given -------------------------------------------------------------


Period = tuple[MedicineUse, datetime | None, datetime | None]


def _periods(record: PatientRecord, m: Mappings) -> list[Period]:
    """Every azathioprine order on the record with its (start, end); None = unknown / ongoing."""
    return [
        # An active order past its recorded end is still taken (the record says active).
        (o, o.start, None if o.status_class in ("current", "uncertain") else o.end)
        for o in record.medicine_uses
        if o.status_class != "never" and o.drugs.azathioprine is not None
        and (o.status_class != "draft" or record.ordering_context)
    ]


def _given_findings(
    given: list[Classified], t: Therapy, record: PatientRecord, m: Mappings
) -> list[Finding]:
    if not given:
        return []
    live_given = [c for c in given if c.kind == "live"]
    unknown_given = [c for c in given if c.kind == "ambiguous"]
    policy = m.policy.vaccination
    periods = _periods(record, m)
    aza_refs = [o.ref for o, _, _ in periods]
    aza_evidence = [order_evidence(o, t) for o, _, _ in periods]
    during: list[Classified] = []
    before: list[tuple[Classified, int]] = []
    after_stop: list[tuple[Classified, int]] = []
    wait = policy.post_stop_live_wait_days.value
    starts = [s for _, s, _ in periods if s is not None]
    for c in live_given:
        d = c.event.date
        if d is None or any((s is None or s <= d) and (e is None or d <= e) for _, s, e in periods):
            # An undated dose cannot be placed outside therapy, so it is treated as during it.
            during.append(c)
        else:
            # Within the wait after a course ended (the drug's effect outlasts it): reported too.
            gaps = [(d - e).days for _, _, e in periods if e is not None and e < d and (d - e).days < wait]
            if gaps:
                after_stop.append((c, min(gaps)))
                continue
            # The course that began next after the dose (an earlier course may have ended before it).
            later = [s for s in starts if s > d]
            if later and (min(later) - d).days < policy.live_before_start_days.value:
                before.append((c, (min(later) - d).days))
    unknown_during = [c for c in unknown_given if _overlaps(c, periods)]
    out: list[Finding] = []
    if unknown_during:
        out.append(make_finding(
            m, RULE, "unidentified-vaccine-given", Status.CAUTION, Severity.MODERATE,
            checked=[c.basis for c in unknown_during],
            evidence=[c.evidence("vaccine given, product unidentified") for c in unknown_during] + aza_evidence,
            missing=[f"the exact product of the vaccine given {short_date(c.event.date)}" for c in unknown_during],
            implicated=aza_refs + [c.event.ref for c in unknown_during],
            therapy=t, trigger=unknown_during[0].trigger(), subject=_names(unknown_during),
        ))
    if during:
        undated = [c.name for c in during if c.event.date is None]
        out.append(make_finding(
            m, RULE, "live-vaccine-given", Status.CAUTION, Severity.HIGH,
            checked=[f"no date is recorded for the {', '.join(undated)} dose"] if undated else [],
            evidence=[c.evidence("live vaccine given") for c in during] + aza_evidence,
            implicated=aza_refs + [c.event.ref for c in during],
            therapy=t, trigger=during[0].trigger(), subject=_names(during),
        ))
    if after_stop:
        closest = min(g for _, g in after_stop)
        out.append(make_finding(
            m, RULE, "live-vaccine-given-after-stop", Status.CAUTION, Severity.HIGH,
            checked=[f"{order_name(o)}: {o.date_note}" for o, _, _ in periods if o.date_note],
            evidence=[c.evidence(f"live vaccine given {g} days after stopping") for c, g in after_stop]
            + aza_evidence,
            implicated=aza_refs + [c.event.ref for c, _ in after_stop],
            subject=_names([c for c, _ in after_stop]), source=policy.post_stop_live_wait_days.source,
            reason=f"{closest} days after azathioprine stopped, inside the {int(wait)}-day wait",
            therapy=t, trigger=after_stop[0][0].trigger(),
        ))
    if before:
        weeks_rule = int(policy.live_before_start_days.value)
        avoid = policy.live_avoid_within_start_days.value
        closest = min(g for _, g in before)
        first = min(before, key=lambda x: x[1])[0]
        out.append(make_finding(
            m, RULE, "started-soon-after-live-vaccine", Status.CAUTION,
            Severity.HIGH if closest < avoid else Severity.MODERATE,
            evidence=[c.evidence(f"live vaccine given {g} days before azathioprine start") for c, g in before]
            + aza_evidence,
            implicated=aza_refs + [c.event.ref for c, _ in before],
            therapy=t, trigger=first.trigger(), subject=first.name, source=policy.live_before_start_days.source,
            reason=f"azathioprine started {closest} days after the {first.name} vaccine (live); advised gap "
                   f"at least {weeks_rule} days, and none within {int(avoid)} days",
        ))
    return out


def _overlaps(c: Classified, periods: list[Period]) -> bool:
    """A dose undated, or dated inside an azathioprine period."""
    d = c.event.date
    return d is None or any((s is None or s <= d) and (e is None or d <= e) for _, s, e in periods)


# --- unreadable records, ok ------------------------------------------------------------


def _vaccine_problems(record: PatientRecord, m: Mappings) -> list[ParseProblem]:
    """Resources that failed to parse and may have been a vaccine plan, order or dose."""
    out = []
    for p in record.problems:
        # The terminology decides whether the codes we could read are a vaccine (CVX, NDC, CPT, names ...).
        is_vaccine = bool(p.codes) and is_vaccine_concept(Concept(codings=p.codes), m)
        vaccine_type = p.resource_type in ("Immunization", "ImmunizationRecommendation")
        maybe_order = p.resource_type == "ServiceRequest" and (is_vaccine or not p.codes)
        if vaccine_type or maybe_order or (p.resource_type == "MedicationRequest" and is_vaccine):
            out.append(p)
    return out


def _unidentified_orders(record: PatientRecord, t: Therapy, m: Mappings) -> list[MedicineUse]:
    """Open orders whose product cannot be identified (no name, no code we know): each may be a live vaccine."""
    own = {o.ref for o in t.orders}
    inactive = m.policy.vaccination.order_inactive_statuses
    return [o for o in record.medicine_uses
            if o.source == "MedicationRequest" and o.medication_problem and o.ref not in own
            and o.status not in inactive]


def _unidentified(orders: list[MedicineUse], t: Therapy, m: Mappings) -> Finding:
    return make_finding(
        m, RULE, "order-unidentified", Status.CANNOT_EVALUATE, Severity.MODERATE,
        subject="; ".join(f"{order_name(o)}: {o.medication_problem}" for o in orders),
        reason=f"{len(orders)} open order(s) could not be identified and may be a vaccine",
        evidence=[Evidence(reference=o.ref, role="trigger", description=f"unidentified {o.kind}, {o.status}")
                  for o in orders],
        missing=[f"the product of {order_name(o)}" for o in orders],
        implicated=[o.ref for o in t.orders] + [o.ref for o in orders],
    )


def _unreadable(problems: list[ParseProblem], t: Therapy, m: Mappings) -> Finding:
    refs = [p.ref for p in problems]
    return make_finding(
        m, RULE, "vaccine-record-unreadable", Status.CANNOT_EVALUATE, Severity.MODERATE,
        subject="; ".join(problem_name(p) for p in problems),
        reason=f"{len(refs)} vaccine record(s) could not be read",
        evidence=[problem_evidence(p) for p in problems],
        missing=[f"a readable {noun(p.resource_type)} in place of the unreadable one" for p in problems],
        implicated=[o.ref for o in t.orders],
    )


def _ok(t: Therapy, record: PatientRecord, m: Mappings) -> Finding:
    seen = [
        Evidence(reference=e.ref, description=f"{noun(e.source)} {e.status}: {e.vaccine.label} ({why})",
                 date=iso(e.date))
        for e in record.vaccines
        for why in ["not a vaccine: an immune globulin or monoclonal antibody"
                    if classify(e, m).kind == "not_vaccine" else "not planned"]
    ]
    return make_finding(
        m, RULE, "no-vaccine-planned", Status.OK, Severity.INFO,
        evidence=[order_evidence(o, t) for o in t.orders] + seen,
        implicated=[o.ref for o in t.orders],
    )


# --- immunosuppression tier (context only) ------------------------------------------------


def _tier(t: Therapy, record: PatientRecord, m: Mappings, now: datetime) -> list[str]:
    """['dose about 2.0 mg/kg/day: low-level …'] when the dose rule can compute the dose per kg, else [].

    The same dose and weight reading as the dose rule (a future-dated, implausible, stale or unreadable
    weight gives no tier). Context only: the tier never lifts a hold (CDC calls azathioprine severely
    immunocompromising).
    """
    dose = daily_dose(record, m, now, t).mg_per_kg_day
    if dose is None:
        return []
    limit = m.policy.vaccination.low_level_max_mg_per_kg_day.value
    tier = "low-level" if dose <= limit else "high-level"
    return [f"dose about {dose:.1f} mg/kg/day: {tier} immunosuppression (low-level is ≤ {limit:g} mg/kg/day); "
            "this does not change the advice on live vaccines"]
