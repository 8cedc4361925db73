"""What the leaflets tell patients to report (clinical-rules.md section 9): warning signs and side effects.

Pure facts over the record, for the rules that speak about them: infection-hold (warning signs of infection),
and the rule each side effect's check belongs to (bruising or bleeding: blood-counts; loss of appetite: liver).
A sign counts when it was recorded within the window (signs.json `window_days`) and is not over: a Condition
resolved, inactive, abated, refuted or entered in error does not count; one without a status counts by its
date (recorded, else onset; a month-only date read as late as it can be); an answer "no" is evidence of
absence. A Condition that is itself an infection that holds (B37.0 oral candidiasis) stays with the infection
findings and is not listed twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from msgspec import Struct
from msgspec.structs import replace as struct_replace

from azaguard.findings import Evidence, Finding, RuleId, Severity, Status, Trigger
from azaguard.mappings import Mappings, Threshold
from azaguard.record import ConditionEntry, Lasting, Measurement, PatientRecord, SignEntry
from azaguard.rules.common import (
    amount,
    crosses,
    decisive,
    iso,
    limit_amount,
    make_finding,
    measurement_evidence,
    measurement_trigger,
    short_date,
    split_future,
)
from azaguard.terminology import infection_class
from azaguard.terminology.signs import SignMatch, sign_of

_IGNORED_STATUSES = frozenset({"entered-in-error", "cancelled"})


class SignHit(Struct, frozen=True):
    """One recorded sign, current: which sign, where and when it was recorded."""

    ref: str
    match: SignMatch
    recorded_as: str  # the chart's words ("Pain in throat", "Sore throat?")
    when: datetime
    how: str  # "encounter diagnosis", "answer 'Yes' to 'Sore throat?'", "nursing observation: value Present"
    date_note: str | None
    length_note: str | None = None  # how long it had lasted, for a sign that counts only past a length

    def evidence(self) -> Evidence:
        note = "".join(f"; {n}" for n in (self.length_note, self.date_note) if n)
        kind = "side effect" if self.match.kind == "side_effect" else "warning sign"
        return Evidence(reference=self.ref, description=f"{kind} ({self.match.label}): {self.recorded_as}, "
                        f"{self.how} ({self.match.how}){note}", date=iso(self.when))

    def phrase(self, now: datetime) -> str:
        """'sore throat (Pain in throat) recorded 31 Oct 2026'."""
        return f"{self.recorded_as} recorded {short_date(self.when)}"


def current_signs(record: PatientRecord, m: Mappings, now: datetime) -> list[SignHit]:
    """Every warning sign and side effect recorded within the window, newest first."""
    window = timedelta(days=m.signs.window_days.value)
    skew = timedelta(minutes=m.policy.labs.future_skew_minutes.value)
    hits: list[SignHit] = []
    for cond in record.conditions:
        hit = _condition_sign(cond, m)
        if hit is not None and (long_enough := _with_length(hit, cond.lasting, m, now)) is not None:
            hits.append(long_enough)
    for entry in record.signs:
        hit = _entry_sign(entry, m)
        if hit is not None and (long_enough := _with_length(hit, entry.lasting, m, now)) is not None:
            hits.append(long_enough)
    current = [h for h in hits if now - window <= h.when <= now + skew]
    current.sort(key=lambda h: h.when, reverse=True)
    return current


class UndatedSign(Struct, frozen=True):
    """A warning sign recorded as present (or a Condition not over) without any date: it may be current."""

    ref: str
    match: SignMatch
    recorded_as: str
    how: str


def undated_signs(record: PatientRecord, m: Mappings) -> list[UndatedSign]:
    """Signs and side effects that cannot be placed in the window: no date at all (a date that cannot be read makes
    the resource unreadable, said elsewhere). Never taken as absent: the rule cannot tell they are not current."""
    out: list[UndatedSign] = []
    for cond in record.conditions:
        if cond.recorded is None and cond.onset is None and _open_sign(cond, m):
            match = sign_of(cond.concept, m)
            if match is not None:
                out.append(UndatedSign(cond.ref, match, cond.concept.label, "condition without a date"))
    for entry in record.signs:
        if entry.when is None and entry.present and entry.status not in _IGNORED_STATUSES:
            match = sign_of(entry.concept, m)
            if match is not None:
                what = "symptom check-in" if entry.source == "QuestionnaireResponse" else "symptom observation"
                out.append(UndatedSign(entry.ref, match, entry.concept.label.rstrip(" ?") or entry.concept.label,
                                       f"{what} without a date: {entry.detail}"))
    return out


def _open_sign(cond: ConditionEntry, m: Mappings) -> bool:
    """Not refuted, not over, and not an infection that holds on its own."""
    c = m.conditions
    if (cond.verification_status or "").strip().lower() in c.excluded_verification_statuses:
        return False
    if (cond.clinical_status or "").strip().lower() in c.ended_clinical_statuses or cond.abated:
        return False
    infection = infection_class(cond.concept, m)
    return infection is None or not infection.holds


def _condition_sign(cond: ConditionEntry, m: Mappings) -> SignHit | None:
    c = m.conditions
    if (cond.verification_status or "").strip().lower() in c.excluded_verification_statuses:
        return None
    status = (cond.clinical_status or "").strip().lower()
    if status in c.ended_clinical_statuses or cond.abated:
        return None
    match = sign_of(cond.concept, m)
    if match is None:
        return None
    infection = infection_class(cond.concept, m)
    if infection is not None and infection.holds:
        return None  # an infection that holds: the active-infection finding speaks for it
    when = cond.recorded or cond.onset
    if cond.onset is not None and cond.recorded is not None:
        when = max(cond.onset, cond.recorded)
    if when is None:
        return None  # undated: cannot be placed in the window (an undated infection is reported elsewhere)
    what = "lab report conclusion" if cond.source == "DiagnosticReport" else (
        f"condition, status {cond.clinical_status}" if cond.clinical_status else "encounter diagnosis")
    return SignHit(cond.ref, match, cond.concept.label, when, what, cond.date_note)


def _with_length(hit: SignHit, lasting: Lasting | None, m: Mappings, now: datetime) -> SignHit | None:
    """A sign that counts only past a length (signs.json `lasting_more_than_days`: a cough over two days).

    Longer than the length → the sign, saying how long; the length or shorter → None (a cough of one day
    is not the leaflet's sign; a Condition's span grows with each day it stays open, so the next check sees it
    once it has lasted longer). Not recorded, or not readable → the sign counts, saying so: it cannot be shown
    to be short enough to ignore."""
    limit = m.signs.signs[hit.match.key].lasting_more_than_days
    if limit is None:
        return hit
    days: float | None = None
    if lasting is not None and not lasting.unreadable:
        if lasting.days is not None:
            days = lasting.days
        elif lasting.since is not None:
            days = ((lasting.until or now) - lasting.since).total_seconds() / 86400
    if days is None:
        why = f"its length ({lasting.said}) cannot be read" if lasting is not None else "its length is not recorded"
        note = f"{why}: counted, as it may have lasted more than {limit.value:g} days"
        return struct_replace(hit, length_note=note)
    if days <= limit.value:
        return None
    return struct_replace(hit, length_note=f"lasted {_days(days)} ({lasting.said if lasting else ''}): more than "
                          f"{limit.value:g} days")


def _days(days: float) -> str:
    return f"{days:.1f} days" if days % 1 else f"{days:g} days"


def _entry_sign(entry: SignEntry, m: Mappings) -> SignHit | None:
    if not entry.present or entry.when is None or entry.status in _IGNORED_STATUSES:
        return None
    match = sign_of(entry.concept, m)
    if match is None:
        return None
    what = "symptom check-in" if entry.source == "QuestionnaireResponse" else "symptom observation"
    # A check-in names the symptom by its question ("Sore throat?"): the symptom is said without the mark.
    recorded = entry.concept.label.rstrip(" ?") or entry.concept.label
    return SignHit(entry.ref, match, recorded, entry.when, f"{what}: {entry.detail}", entry.date_note)


def side_effects_for(hits: list[SignHit], rule_id: str, m: Mappings) -> list[SignHit]:
    """The signs whose check belongs to this rule (bruising → blood-counts), warning signs included when they
    name one (black stools, blood in the urine)."""
    return [h for h in hits if (c := m.signs.signs[h.match.key].check) is not None and c.rule == rule_id]


def warning_signs(hits: list[SignHit]) -> list[SignHit]:
    return [h for h in hits if h.match.kind == "warning"]


# --- findings ------------------------------------------------------------------------------------------


def infection_findings(
    hits: list[SignHit], near_fever: list[Measurement], record: PatientRecord, m: Mappings, now: datetime,
    aza_refs: list[str], aza_evidence: list[Evidence],
) -> list[Finding]:
    """infection-hold's word on the leaflets' warning signs: a caution listing them (and a temperature from the
    leaflet's 100 °F up to the fever threshold); a hold when a sign comes with a low neutrophil count."""
    out: list[Finding] = []
    warning = warning_signs(hits)
    days = int(m.signs.window_days.value)
    if warning:
        names = "; ".join(dict.fromkeys(h.phrase(now) for h in warning))
        low, note, neutro_ev = _low_neutrophils(record, m, now)
        evidence = [h.evidence() for h in warning]
        if low:
            out.append(make_finding(
                m, "infection-hold", "warning-sign-neutropenic", Status.HOLD, Severity.HIGH,
                checked=[f"warning sign(s) of infection in the last {days} days: {names}", note.rstrip(".")],
                source=m.signs.hold_with_neutrophils_below.source,
                evidence=evidence + neutro_ev + aza_evidence, implicated=aza_refs,
                trigger=_trigger(warning), subject=_names(warning), advice="assess today",
            ))
        else:
            out.append(make_finding(
                m, "infection-hold", "warning-signs", Status.CAUTION, Severity.MODERATE,
                checked=[f"{names} (last {days} days)", *([note.rstrip(".")] if note else [])],
                evidence=evidence + neutro_ev + aza_evidence, implicated=aza_refs,
                trigger=_trigger(warning), subject=_names(warning),
            ))
    undated = [u for u in undated_signs(record, m) if u.match.kind == "warning"]
    if undated:
        names = ", ".join(dict.fromkeys(u.recorded_as for u in undated))
        out.append(make_finding(
            m, "infection-hold", "warning-sign-undated", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"warning sign of infection recorded without a date ({names}): whether it is from the last "
                   f"{days} days cannot be told",
            advice="ask the patient and date the entry; assess for infection if current",
            evidence=[Evidence(reference=u.ref, description=f"warning sign ({u.match.label}): {u.recorded_as}, "
                               f"{u.how} ({u.match.how})") for u in undated] + aza_evidence,
            missing=[f"the date of the warning sign {u.recorded_as}" for u in undated], implicated=aza_refs,
            subject=names,
        ))
    if near_fever:
        line = m.signs.leaflet_fever_cel.value
        peak = max(near_fever, key=lambda t: t.result.value or 0.0)
        out.append(make_finding(
            m, "infection-hold", "leaflet-fever", Status.CAUTION, Severity.MODERATE,
            reason=f"at or above the leaflet's 'fever over 100 °F' ({line:g} °C) but below the hold threshold "
                   f"({m.policy.infection.fever_threshold_cel.value:g} °C)",
            source=m.signs.leaflet_fever_cel.source,
            evidence=[measurement_evidence(t, "temperature at or above the leaflet's 100 °F") for t in near_fever]
            + aza_evidence, implicated=aza_refs, trigger=measurement_trigger(peak, "temperature"),
        ))
    return out


def side_effect_findings(
    hits: list[SignHit], rule_id: RuleId, m: Mappings, now: datetime, implicated: list[str],
    undated: list[UndatedSign] | None = None,
) -> list[Finding]:
    """A caution on the rule whose check a reported side effect calls for (bruising → platelets and a CBC);
    one recorded without any date cannot be set aside: cannot-evaluate, naming it."""
    out: list[Finding] = []
    mine_undated = [u for u in undated or [] if (c := m.signs.signs[u.match.key].check) is not None
                    and c.rule == rule_id]
    if mine_undated:
        names = ", ".join(dict.fromkeys(u.recorded_as for u in mine_undated))
        out.append(make_finding(
            m, rule_id, "side-effect-undated", Status.CANNOT_EVALUATE, Severity.MODERATE,
            reason=f"side effect the leaflets list recorded without a date ({names}): whether it is recent cannot "
                   "be told",
            advice="ask the patient, date the entry, and do the check it calls for if current",
            evidence=[Evidence(reference=u.ref, description=f"side effect ({u.match.label}): {u.recorded_as}, "
                               f"{u.how} ({u.match.how})") for u in mine_undated],
            missing=[f"the date of the side effect {u.recorded_as}" for u in mine_undated], implicated=implicated,
            subject=names,
        ))
    mine = side_effects_for(hits, rule_id, m)
    if not mine:
        return out
    checks = list(dict.fromkeys(c.text for h in mine if (c := m.signs.signs[h.match.key].check) is not None))
    names = "; ".join(dict.fromkeys(h.phrase(now) for h in mine))
    labels = ", ".join(dict.fromkeys(h.match.label for h in mine))
    return [*out, make_finding(
        m, rule_id, "side-effect-reported", Status.CAUTION, Severity.MODERATE,
        checked=[f"the leaflets list {labels} as side effects to report: {names}", *checks],
        evidence=[h.evidence() for h in mine], implicated=implicated, trigger=_trigger(mine),
        subject=checks[0].removeprefix("check ").removesuffix(" now"), reason=f"{labels} reported",
    )]


def _names(hits: list[SignHit]) -> str:
    """'Pain in throat, Cough': what the chart recorded, each once."""
    return ", ".join(dict.fromkeys(h.recorded_as for h in hits))


def _trigger(hits: list[SignHit]) -> Trigger:
    """The signs as what set the finding off: named together, dated by the newest."""
    newest = max(hits, key=lambda h: h.when)
    return Trigger(concept=_names(hits), at=iso(newest.when), reference=newest.ref)


def near_fever(temperatures: tuple[Measurement, ...], m: Mappings) -> list[Measurement]:
    """Readings below the fever threshold yet at or above the leaflet's 100 °F (37.8 °C)."""
    line = m.signs.leaflet_fever_cel.value
    # Compared at the 0.1 °C the leaflet's line is given in: 100.0 °F (37.78 °C) is on it.
    return [t for t in temperatures if t.result.value is not None and round(t.result.value, 1) >= line and not (
        t.result.recorded is not None and t.result.recorded.comparator in ("<", "<="))]


def _low_neutrophils(record: PatientRecord, m: Mappings, now: datetime) -> tuple[bool, str, list[Evidence]]:
    """Whether the deciding neutrophil count in the neutropenia window is below the sign-hold threshold."""
    key = m.policy.infection.neutropenia_analyte
    analyte = m.analytes.analytes[key]
    days = int(m.policy.infection.neutropenia_window_days.value)
    current, _ = split_future(record.measurements_of(key), m, now)
    recent = [x for x in current if x.effective is not None and now - x.effective <= timedelta(days=days)]
    if not recent:
        return False, f"No {analyte.label} count in the last {days} days: check a full blood count.", []
    latest, _ = decisive(recent, "below")
    ev = [measurement_evidence(latest, f"latest {analyte.label} count")]
    if latest.result.value is None:
        return False, f"The latest {analyte.label} count cannot be read: check a full blood count.", ev
    limit = m.signs.hold_with_neutrophils_below
    low = crosses(latest.result.value, latest.result.recorded.comparator if latest.result.recorded else None,
                  Threshold(direction="below", value=limit.value, source=limit.source))
    if low:
        return True, (f"{analyte.label} {amount(latest, m)} on {short_date(latest.effective)} is below "
                      f"{limit_amount(limit.value, latest.result.unit, m)}."), ev
    return False, "", ev
