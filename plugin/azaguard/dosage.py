"""Dose from a FHIR Dosage[]: the average mg a day for today, or why it cannot be read.

Pure, beside units.py and below the record and the rules: record.py reduces each Dosage element to a
`Dosage` here, and every rule that needs an amount (the dose rule, allopurinol in the interactions rule,
the vaccine tier, prophylaxis regimens) reads `daily_mg`. What it reads, as FHIR R4 defines it:

- phases: instructions with different `sequence` apply one after the other, the same `sequence` (or none)
  together; `boundsPeriod`/`boundsDuration`/`boundsRange` place each in time (a duration follows the
  previous phase, the first from the order's start). Only what applies at `now` counts: a finished
  titration or a taper is its current step; concurrent instructions are summed.
- how often: `timing.repeat` frequency/frequencyMax per period/periodMax periodUnit, `when`, `timeOfDay`,
  `dayOfWeek` (three days a week is 3/7 of the daily amount), `count`; or `timing.code` (GTSAbbreviation).
- how much: `doseQuantity`, `doseRange` (its upper bound), `rateQuantity`/`rateRatio`/`rateRange`; in a
  mass, a mass per kg (x weight), a count of tablets (x strength per unit) or a volume (x concentration);
  `maxDosePerPeriod` and `maxDosePerAdministration` cap it.

Where a Dosage gives a range (doseRange, frequencyMax, period/periodMax) the higher reading is taken:
every rule reading a dose errs towards alarm on a higher dose. Anything it cannot read is named (the order
and the element) in `missing`: never a guess, never a silent zero.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

from msgspec import Struct

from azaguard.fhirtypes.timeunits import days_per
from azaguard.mappings import Mappings
from azaguard.units import Quantity, UnitError, normalise

# --- the reduced Dosage -------------------------------------------------------------------------


class Repeat(Struct, frozen=True, kw_only=True):
    """Timing.repeat, reduced to what the dose reading needs."""

    frequency: int | None = None
    frequency_max: int | None = None
    period: float | None = None
    period_max: float | None = None
    period_unit: str | None = None
    day_of_week: tuple[str, ...] = ()
    when: tuple[str, ...] = ()
    time_of_day: tuple[str, ...] = ()
    count: int | None = None
    count_max: int | None = None
    bounds_start: datetime | None = None
    bounds_end: datetime | None = None
    bounds_duration: Quantity | None = None  # boundsDuration, or boundsRange's upper bound


class Ratio(Struct, frozen=True):
    numerator: Quantity | None
    denominator: Quantity | None


class Dosage(Struct, frozen=True, kw_only=True):
    """One Dosage element of an order, statement or dispense."""

    text: str | None = None
    sequence: int | None = None
    as_needed: bool = False
    repeat: Repeat | None = None
    timing_codes: tuple[tuple[str | None, str], ...] = ()  # Timing.code codings (system, code)
    timing_text: str | None = None  # Timing.code.text
    dose: Quantity | None = None  # doseQuantity, or doseRange's upper bound
    dose_from_range: bool = False
    rate: Quantity | None = None  # rateQuantity, or rateRange's upper bound
    rate_ratio: Ratio | None = None
    max_per_period: Ratio | None = None
    max_per_administration: Quantity | None = None
    route: tuple[str, ...] = ()  # the route's names and codes (for the non-systemic check)


class Strength(Struct, frozen=True):
    """mg of the ingredient in one countable unit (tablet, capsule) or in one mL, and where it was read."""

    mg: float
    per: Literal["unit", "mL"]
    source: str


class DoseReading(Struct, frozen=True):
    """What `daily_mg` read: the average mg/day today, or why not (`missing`, each naming the element)."""

    mg_per_day: float | None
    administrations_per_day: float | None  # of the instructions that apply today (summed)
    single_dose: bool  # a one-off (count 1): a pre-procedure dose
    how: str  # "dosage 2 (sequence 2): 150 mg x 1/day = 150 mg/day"
    missing: tuple[str, ...] = ()


# --- reading ------------------------------------------------------------------------------------


def daily_mg(
    dosages: Sequence[Dosage],
    *,
    ref: str,
    now: datetime,
    start: datetime | None,
    strength: Strength | None,
    weight_kg: float | None,
    m: Mappings,
) -> DoseReading:
    """The average mg/day the instructions that apply at `now` give, or the reasons they cannot be read."""
    if not dosages:
        return DoseReading(None, None, False, "", (f"dosage instructions on {ref}",))
    current, phase_note, missing = _current(dosages, ref=ref, now=now, start=start, m=m)
    if missing:
        return DoseReading(None, None, False, "", tuple(missing))
    total = per_day_total = 0.0
    notes: list[str] = []
    single = True
    for i, d in current:
        where = f"{ref} dosage {i + 1}" if len(dosages) > 1 else ref
        one = _one(d, where, strength=strength, weight_kg=weight_kg, m=m)
        missing += one.missing
        if one.mg_per_day is None:
            continue
        total += one.mg_per_day
        per_day_total += one.administrations_per_day or 0.0
        single = single and one.single_dose
        label = f"dosage {i + 1}: " if len(dosages) > 1 else ""
        notes.append(label + one.how)
    if missing:
        return DoseReading(None, None, False, "", tuple(dict.fromkeys(missing)))
    how = " + ".join(notes) + (f" = {total:g} mg/day" if len(notes) > 1 else "") + phase_note
    return DoseReading(total, per_day_total, single, how)


class Schedule(Struct, frozen=True):
    """How often the instructions that apply today are given, whatever the amount (prophylaxis regimens)."""

    administrations_per_day: float | None
    single_dose: bool
    how: str
    missing: tuple[str, ...] = ()


def schedule(dosages: Sequence[Dosage], *, ref: str, now: datetime, start: datetime | None, m: Mappings) -> Schedule:
    """Administrations a day of the instructions that apply at `now` (summed), or what is missing."""
    if not dosages:
        return Schedule(None, False, "", (f"dosage instructions on {ref}",))
    current, _, missing = _current(dosages, ref=ref, now=now, start=start, m=m)
    total = 0.0
    single = True
    notes: list[str] = []
    for i, d in current:
        where = f"{ref} dosage {i + 1}" if len(dosages) > 1 else ref
        if d.as_needed or d.rate is not None or d.rate_ratio is not None:
            missing.append(f"a regular schedule on {where} ({'as needed' if d.as_needed else 'a continuous rate'})")
            continue
        per_day, one_off, how, lacks = _per_day(d, where, m)
        missing += lacks
        if per_day is not None:
            total += per_day
            single = single and one_off
            notes.append(how)
    if missing:
        return Schedule(None, False, "", tuple(dict.fromkeys(missing)))
    return Schedule(total, single, " + ".join(notes))


def _current(
    dosages: Sequence[Dosage], *, ref: str, now: datetime, start: datetime | None, m: Mappings
) -> tuple[list[tuple[int, Dosage]], str, list[str]]:
    """The instructions that apply at `now` (see the module's docstring), a note on the phase chosen, or
    what is missing to tell."""
    windows: list[tuple[int, Dosage, datetime | None, datetime | None]] = []
    sequences = sorted({d.sequence for d in dosages if d.sequence is not None})
    chain = start
    for n, seq in enumerate(sequences):
        group = [(i, d) for i, d in enumerate(dosages) if d.sequence == seq]
        ends: list[datetime | None] = []
        for i, d in group:
            s, e = _window(d, chain, m)
            if s is None and n > 0 and not _bounded(d):
                # After a phase of unknown end, a phase with no bounds of its own cannot be placed.
                return [], "", [f"which phase of {ref} applies today (sequence {seq} has no bounds and "
                                f"follows a phase without an end)"]
            windows.append((i, d, s, e))
            ends.append(e)
        chain = max(ends) if ends and all(e is not None for e in ends) else None  # type: ignore[type-var]
    for i, d in enumerate(dosages):
        if d.sequence is None:
            s, e = _window(d, start, m)
            windows.append((i, d, s, e))
    windows.sort(key=lambda w: w[0])
    if len(sequences) > 1 and not any(_bounded(d) for _, d, _, _ in windows):
        return [], "", [f"which phase of {ref} applies today ({len(sequences)} sequential dosage instructions "
                        "without bounds)"]
    covering = [(i, d) for i, d, s, e in windows if (s is None or s <= now) and (e is None or now < e)]
    if covering:
        note = " (the phase current today)" if len(covering) < len(windows) else ""
        return covering, note, []
    started = [w for w in windows if w[2] is not None and w[2] <= now]
    if started:
        # Every phase has ended (an active order past its bounds): its last step stands.
        latest = max(w[2] for w in started if w[2] is not None)
        return [(i, d) for i, d, s, _ in started if s == latest], " (the last phase; its bounds have ended)", []
    first = min((w[2] for w in windows if w[2] is not None), default=None)
    return [(i, d) for i, d, s, _ in windows if s == first], " (the first phase; it starts later)", []


def _bounded(d: Dosage) -> bool:
    r = d.repeat
    return r is not None and (r.bounds_start is not None or r.bounds_end is not None or r.bounds_duration is not None)


def _window(d: Dosage, chain: datetime | None, m: Mappings) -> tuple[datetime | None, datetime | None]:
    r = d.repeat
    if r is None:
        return chain, None
    s = r.bounds_start or chain
    e = r.bounds_end
    if e is None and r.bounds_duration is not None and s is not None:
        days = _duration_days(r.bounds_duration, m)
        if days is not None:
            e = s + timedelta(days=days)
    return s, e


def _duration_days(q: Quantity, m: Mappings) -> float | None:
    factor = days_per(q.code or q.unit, m)
    return q.value * factor if factor is not None and q.value is not None else None


class _One(Struct, frozen=True):
    mg_per_day: float | None
    administrations_per_day: float | None
    single_dose: bool
    how: str
    missing: tuple[str, ...]


def _one(d: Dosage, where: str, *, strength: Strength | None, weight_kg: float | None, m: Mappings) -> _One:
    """One instruction: mg/day, administrations/day, how it was read, or what is missing."""
    cap, cap_how, _cap_missing = _cap(d, where, strength, weight_kg, m)
    if d.rate is not None or d.rate_ratio is not None:
        mg, how, missing = _rate(d, where, strength, weight_kg, m)
        return _capped(mg, None, False, how, missing, cap, cap_how)
    if d.as_needed:
        if cap is not None:
            return _One(cap, None, False, f"as needed, at most {cap_how}", ())
        return _One(None, None, False, "", (f"a regular schedule on {where} (ordered as needed)",))
    per_day, single, per_day_how, lacks = _per_day(d, where, m)
    amount, amount_how, more = _amount(d.dose, where, "dose", strength, weight_kg, m)
    lacks += more
    if amount is not None and d.max_per_administration is not None:
        limit, _, _ = _amount(d.max_per_administration, where, "maxDosePerAdministration", strength, weight_kg, m)
        if limit is not None and limit < amount:
            amount, amount_how = limit, f"{amount_how} capped at {limit:g} mg per administration"
    if lacks:
        if cap is not None:
            # The schedule or amount cannot be read, but the order caps the daily amount: at most that.
            return _One(cap, None, single, f"at most {cap_how} ({'; '.join(lacks)})", ())
        return _One(None, None, False, "", tuple(lacks))
    if amount is None or per_day is None:  # never: every path without them named what is missing
        return _One(None, None, False, "", (f"a dose and schedule on {where}",))
    mg = amount * per_day
    how = f"{amount_how} x {per_day_how}" if per_day_how else amount_how
    return _capped(mg, per_day, single, how + f" = {mg:g} mg/day", [], cap, cap_how)


def _capped(
    mg: float | None, per_day: float | None, single: bool, how: str, missing: list[str], cap: float | None,
    cap_how: str,
) -> _One:
    if mg is not None and cap is not None and cap < mg:
        return _One(cap, per_day, single, f"{how}, capped by maxDosePerPeriod at {cap_how}", ())
    return _One(mg, per_day, single, how, tuple(missing))


def _per_day(d: Dosage, where: str, m: Mappings) -> tuple[float | None, bool, str, list[str]]:
    """Administrations per day (the higher reading), whether it is a one-off, how it was read."""
    tables = m.units.dosage
    r = d.repeat
    if r is not None:
        got = _repeat_per_day(r, where, m)
        if got is not None:
            return got
    for system, code in d.timing_codes:
        if system is not None and system not in tables.timing_code_systems:
            continue
        per = tables.timing_codes_per_day.get(code.strip().upper())
        if per is not None:
            return per, False, f"{per:g}/day ({code})", []
    if d.timing_text and d.timing_text.strip().upper() in tables.timing_codes_per_day:
        per = tables.timing_codes_per_day[d.timing_text.strip().upper()]
        return per, False, f"{per:g}/day ({d.timing_text.strip()})", []
    if d.timing_codes or d.timing_text:
        shown = ", ".join(c for _, c in d.timing_codes) or d.timing_text
        return None, False, "", [f"a known timing code on {where} (timing.code {shown})"]
    if r is not None:
        return None, False, "", [
            f"administrations per day on {where} (timing.repeat gives no frequency, when or timeOfDay)"]
    return None, False, "", [f"administrations per day on {where} (no timing)"]


def _repeat_per_day(r: Repeat, where: str, m: Mappings) -> tuple[float | None, bool, str, list[str]] | None:
    tables = m.units.dosage
    freq = r.frequency_max if r.frequency_max is not None else r.frequency
    per_day: float | None = None
    how = ""
    period_days: float | None = None
    if freq is not None or r.period is not None:
        if r.period is None or not r.period_unit:
            if freq is not None and r.period is None and not r.period_unit:
                return None, False, "", [f"the period of {where} (timing.repeat.frequency {freq} with no period)"]
        else:
            unit_days = m.units.time.days.get(r.period_unit)  # a UnitsOfTime code, exactly
            if unit_days is None:
                return None, False, "", [f"a known periodUnit on {where} ({r.period_unit!r})"]
            # The shorter of period and periodMax gives the more frequent reading.
            period = min(p for p in (r.period, r.period_max) if p is not None)
            if period <= 0:
                return None, False, "", [f"a positive period on {where}"]
            period_days = period * unit_days
            per_day = (freq if freq is not None else 1) / period_days
            how = f"{freq if freq is not None else 1}/{period:g} {r.period_unit}"
    named = 0.0
    named_how = ""
    if r.when:
        counts = [tables.event_timing_per_day.get(w.split(".")[0].upper()) for w in r.when]
        if any(c is None for c in counts):
            unknown = [w for w, c in zip(r.when, counts, strict=True) if c is None]
            return None, False, "", [f"a known timing.repeat.when on {where} ({', '.join(unknown)})"]
        named = sum(c for c in counts if c is not None)
        named_how = f"when {'/'.join(r.when)}"
    if len(r.time_of_day) > named:
        named, named_how = float(len(set(r.time_of_day))), f"at {', '.join(r.time_of_day)}"
    daily_or_less = period_days is None or period_days <= 1
    if named and daily_or_less and (per_day is None or named > per_day):
        # The times named in a day are administrations too: a frequency left at 1 with two times is two.
        per_day, how = named, named_how
    if per_day is None:
        if r.count is not None and (r.count_max or r.count) >= 1:
            n = r.count_max or r.count
            return float(n), n == 1, f"{n} time(s) in all", []
        return None  # nothing in repeat: a timing code may say
    if r.day_of_week and daily_or_less:
        days = {d.lower() for d in r.day_of_week} & set(tables.days_of_week)
        per_day *= len(days) / 7
        how += f" on {len(days)} day(s) a week ({', '.join(r.day_of_week)})"
    single = (r.count_max or r.count) == 1
    return per_day, single, how + ("" if how.endswith("/day") else f" = {per_day:.4g}/day"), []


def _amount(
    q: Quantity | None, where: str, element: str, strength: Strength | None, weight_kg: float | None, m: Mappings
) -> tuple[float | None, str, list[str]]:
    """A dose quantity in mg (per administration), how it was read, or what is missing."""
    if q is None or q.value is None:
        return None, "", [f"a dose on {where} (no doseQuantity or doseRange with an upper bound)"]
    if q.comparator:
        return None, "", [f"an exact dose on {where} (recorded {q.as_recorded()})"]
    shown = q.as_recorded()
    if _is_count(q, m):
        if strength is None or strength.per != "unit":
            return None, "", [f"tablet strength of {where} ({element} {shown}: no strength per unit in "
                              "Medication.ingredient.strength, a known RxNorm product or the product name)"]
        return q.value * strength.mg, f"{q.value:g} x {strength.mg:g} mg ({strength.source})", []
    for dimension in ("drug-mass", "drug-mass-per-body-mass", "drug-volume"):
        try:
            n = normalise(q.value, code=q.code, system=q.system, text=q.unit, dimension=dimension, mappings=m)
        except UnitError:
            continue
        if dimension == "drug-mass":
            return n.value, f"{n.value:g} mg", []
        if dimension == "drug-mass-per-body-mass":
            if weight_kg is None:
                return None, "", [f"a recent body weight for the weight-based {element} on {where} ({shown})"]
            return n.value * weight_kg, f"{shown} x {weight_kg:g} kg = {n.value * weight_kg:g} mg", []
        if strength is None or strength.per != "mL":
            return None, "", [f"the concentration of {where} ({element} {shown}: no mg per mL in "
                              "Medication.ingredient.strength, a known RxNorm product or the product name)"]
        mg = n.value * strength.mg
        return mg, f"{n.value:g} mL x {strength.mg:g} mg/mL ({strength.source}) = {mg:g} mg", []
    return None, "", [f"a known dose unit on {where} ({element} {shown})"]


def _is_count(q: Quantity, m: Mappings) -> bool:
    units = _count_units(m)
    return any(u is not None and u.strip().lower() in units for u in (q.code, q.unit))


def _count_units(m: Mappings) -> frozenset[str]:
    return m.derived(_lower_count_units)


def _lower_count_units(m: Mappings) -> frozenset[str]:
    return frozenset(u.lower() for u in m.units.dose_count_units.units)


def _rate(
    d: Dosage, where: str, strength: Strength | None, weight_kg: float | None, m: Mappings
) -> tuple[float | None, str, list[str]]:
    """A continuous rate (rateQuantity/rateRange in mass per time, or rateRatio) as mg/day."""
    if d.rate is not None:
        q = d.rate
        if q.value is None or q.comparator:
            return None, "", [f"an exact rate on {where} ({q.as_recorded()})"]
        try:
            n = normalise(q.value, code=q.code, system=q.system, text=q.unit, dimension="drug-rate", mappings=m)
        except UnitError:
            return None, "", [f"a known rate unit on {where} (rate {q.as_recorded()})"]
        return n.value, f"rate {q.as_recorded()} = {n.value:g} mg/day", []
    ratio = d.rate_ratio or Ratio(None, None)
    mg, how, missing = _amount(ratio.numerator, where, "rateRatio", strength, weight_kg, m)
    days = _time_days(ratio.denominator, m)
    if days is None:
        missing = [*missing, f"a time in the rateRatio denominator on {where}"]
    if missing or mg is None or days is None:
        return None, "", missing
    return mg / days, f"{how} per {days:g} day(s) = {mg / days:g} mg/day", []


def _cap(
    d: Dosage, where: str, strength: Strength | None, weight_kg: float | None, m: Mappings
) -> tuple[float | None, str, list[str]]:
    """maxDosePerPeriod as mg/day (None when absent or unreadable)."""
    ratio = d.max_per_period
    if ratio is None:
        return None, "", []
    mg, how, missing = _amount(ratio.numerator, where, "maxDosePerPeriod", strength, weight_kg, m)
    days = _time_days(ratio.denominator, m)
    if mg is None or days is None:
        return None, "", missing
    return mg / days, f"{mg / days:g} mg/day (maxDosePerPeriod {how} per {days:g} day(s))", []


def _time_days(q: Quantity | None, m: Mappings) -> float | None:
    if q is None:
        return None
    factor = days_per(q.code or q.unit, m)
    value = 1.0 if q.value is None else q.value
    return value * factor if factor is not None and value > 0 else None


# --- strength ---------------------------------------------------------------------------------------


def strength_of_ratio(numerator: Quantity | None, denominator: Quantity | None, m: Mappings,
                      source: str) -> Strength | None:
    """A Medication.ingredient.strength Ratio as mg per unit or per mL, or None when it is neither."""
    if numerator is None or numerator.value is None or numerator.comparator:
        return None
    try:
        mg = normalise(numerator.value, code=numerator.code, system=numerator.system, text=numerator.unit,
                       dimension="drug-mass", mappings=m).value
    except UnitError:
        return None
    if denominator is None or (denominator.code in (None, "1") and denominator.unit in (None, "1")):
        per_value = 1.0 if denominator is None or denominator.value is None else denominator.value
        return Strength(mg / per_value, "unit", source) if per_value > 0 else None
    per_value = 1.0 if denominator.value is None else denominator.value
    if per_value <= 0:
        return None
    if _is_count(denominator, m):
        return Strength(mg / per_value, "unit", source)
    try:
        ml = normalise(per_value, code=denominator.code, system=denominator.system, text=denominator.unit,
                       dimension="drug-volume", mappings=m).value
    except UnitError:
        return None
    return Strength(mg / ml, "mL", source)


_NUMBER = r"(\d+(?:[.,]\d+)?)"
_MASS = r"(mg|g|mcg|µg|ug|microgram(?:s)?|milligram(?:s)?)"
_CONCENTRATION = re.compile(
    rf"{_NUMBER}\s*{_MASS}\s*(?:/|per|in|pro)\s*{_NUMBER}?\s*(ml|millilit(?:re|er)s?)(?![a-z])", re.IGNORECASE)
_PER_UNIT = re.compile(rf"(?<![\d.,/]){_NUMBER}\s*{_MASS}(?![a-z/])", re.IGNORECASE)
_MG = {"mg": 1.0, "g": 1000.0, "mcg": 0.001, "µg": 0.001, "ug": 0.001}


def strength_in_names(names: Iterable[str], ingredient: Sequence[str] = ()) -> Strength | None:
    """A strength written in the product name: '50 mg/mL oral suspension' (per mL), 'Imuran 50 mg' (per
    unit). Several different strengths in the names (a combination product) give None, unless one follows
    a name of `ingredient` (see strength_after_name)."""
    names = list(names)
    found = _strengths(names)
    return found if found is not None or not ingredient else strength_after_name(names, ingredient)


def strength_after_name(names: Iterable[str], ingredient: Sequence[str]) -> Strength | None:
    """The strength written right after one of the ingredient's names: 'sulfamethoxazole 800 MG /
    trimethoprim 160 MG' gives trimethoprim 160 mg per unit."""
    found = {
        round(_num(hit.group(1)) * _mg_factor(hit.group(2)), 6)
        for name in names for word in ingredient
        for hit in re.finditer(rf"{re.escape(word)}\W{{0,3}}{_NUMBER}\s*{_MASS}(?![a-z/])", name, re.IGNORECASE)
    }
    if len(found) == 1 and ingredient:
        return Strength(found.pop(), "unit", f"product name (the {ingredient[0]} strength)")
    return None


def _strengths(names: list[str]) -> Strength | None:
    per_ml: set[float] = set()
    per_unit: set[float] = set()
    shown = ""
    for name in names:
        for c in _CONCENTRATION.finditer(name):
            ml = _num(c.group(3)) if c.group(3) else 1.0
            if ml > 0:
                per_ml.add(round(_num(c.group(1)) * _mg_factor(c.group(2)) / ml, 6))
                shown = shown or c.group(0)
        if per_ml:
            continue
        for u in _PER_UNIT.finditer(name):
            per_unit.add(round(_num(u.group(1)) * _mg_factor(u.group(2)), 6))
            shown = shown or u.group(0)
    if len(per_ml) == 1:
        return Strength(per_ml.pop(), "mL", f"product name {shown!r}")
    if not per_ml and len(per_unit) == 1:
        return Strength(per_unit.pop(), "unit", f"product name {shown!r}")
    return None


def _num(text: str) -> float:
    return float(text.replace(",", "."))


def _mg_factor(unit: str) -> float:
    u = unit.lower()
    if u.startswith("microgram"):
        return 0.001
    if u.startswith("milligram"):
        return 1.0
    return _MG.get(u, 1.0)
