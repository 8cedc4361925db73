"""The dosage module on its own: every shape of FHIR Dosage to average mg/day today, or what is missing.

Each test states the instruction as a prescriber would write it and the amount a pharmacist would compute.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from azaguard.dosage import Dosage, DoseReading, Ratio, Repeat, Strength, daily_mg, strength_in_names, strength_of_ratio
from azaguard.mappings import load_mappings
from azaguard.units import Quantity

M = load_mappings()
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
GTS = "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation"
TABLET_50 = Strength(50, "unit", "test")
SUSPENSION_10 = Strength(10, "mL", "test")


def q(value: float | None, code: str | None = "mg", comparator: str | None = None) -> Quantity:
    return Quantity(value=value, comparator=comparator, code=code, system="http://unitsofmeasure.org", unit=code)


def daily(*repeat: float | str) -> Repeat:
    """frequency per period periodUnit: daily(2, 1, 'd') = twice a day."""
    f, p, u = repeat
    return Repeat(frequency=int(f), period=float(p), period_unit=str(u))


def read(*dosages: Dosage, strength: Strength | None = None, weight: float | None = None,
         start: datetime | None = None) -> DoseReading:
    return daily_mg(dosages, ref="MedicationRequest/x", now=NOW, start=start or NOW - timedelta(days=200),
                    strength=strength, weight_kg=weight, m=M)


def mg(*dosages: Dosage, **kw: Any) -> float | None:
    got = read(*dosages, **kw)
    assert not got.missing, got.missing
    return got.mg_per_day


# --- how often -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("repeat", "per_day"), [
    (daily(1, 1, "d"), 1), (daily(2, 1, "d"), 2), (daily(3, 1, "d"), 3),
    (daily(1, 12, "h"), 2), (daily(1, 8, "h"), 3), (daily(1, 4, "h"), 6),
    (daily(1, 2, "d"), 0.5), (daily(3, 1, "wk"), 3 / 7), (daily(1, 1, "wk"), 1 / 7),
    (daily(1, 1, "mo"), 1 / 30.4375), (daily(2, 1, "min"), 2880),
])
def test_frequency_per_period(repeat: Repeat, per_day: float) -> None:
    """50 mg per administration x the administrations a day the repeat gives."""
    assert mg(Dosage(dose=q(50), repeat=repeat)) == pytest.approx(50 * per_day)


def test_frequency_max_and_period_max_read_as_the_higher_rate() -> None:
    """'Once or twice a day' is judged as twice; 'every 4 to 6 hours' as every 4 hours."""
    assert mg(Dosage(dose=q(100), repeat=Repeat(frequency=1, frequency_max=2, period=1, period_unit="d"))) == 200
    assert mg(Dosage(dose=q(10), repeat=Repeat(frequency=1, period=4, period_max=6, period_unit="h"))) == 60


@pytest.mark.parametrize(("code", "per_day"), [
    ("QD", 1), ("BID", 2), ("TID", 3), ("QID", 4), ("QOD", 0.5), ("Q4H", 6), ("Q6H", 4), ("Q8H", 3),
    ("Q12H", 2), ("AM", 1), ("PM", 1), ("WK", 1 / 7),
])
def test_timing_codes(code: str, per_day: float) -> None:
    """GTSAbbreviation timing codes without a repeat (Epic SIG codes)."""
    assert mg(Dosage(dose=q(100), timing_codes=((GTS, code),))) == pytest.approx(100 * per_day)


def test_timing_code_of_another_system_or_unknown_is_not_guessed() -> None:
    got = read(Dosage(dose=q(100), timing_codes=(("urn:local:sig", "BID"),), timing_text="twice"))
    assert got.mg_per_day is None and "timing code" in got.missing[0]
    got = read(Dosage(dose=q(100), timing_codes=((GTS, "Q36H"),)))
    assert got.mg_per_day is None and "Q36H" in got.missing[0]


def test_when_and_time_of_day_count_administrations() -> None:
    """MORN + EVE is twice a day; two times of day with the frequency left at 1 are two doses; a meal
    code without a named meal is the three meals."""
    assert mg(Dosage(dose=q(100), repeat=Repeat(when=("MORN", "EVE")))) == 200
    assert mg(Dosage(dose=q(100), repeat=Repeat(when=("HS",)))) == 100
    assert mg(Dosage(dose=q(100), repeat=Repeat(when=("MORN.early",)))) == 100
    assert mg(Dosage(dose=q(10), repeat=Repeat(when=("C",)))) == 30
    tod = Repeat(frequency=1, period=1, period_unit="d", time_of_day=("08:00:00", "20:00:00"))
    assert mg(Dosage(dose=q(100), repeat=tod)) == 200
    got = read(Dosage(dose=q(100), repeat=Repeat(when=("XYZ",))))
    assert got.mg_per_day is None and "XYZ" in got.missing[0]


@pytest.mark.parametrize(("days", "expected"), [(("mon", "wed", "fri"), 150 * 3 / 7), (("sat",), 150 / 7),
                                                (("mon", "tue", "wed", "thu", "fri", "sat", "sun"), 150)])
def test_days_of_week(days: tuple[str, ...], expected: float) -> None:
    """150 mg on the days named: three days a week is 3/7 of the daily amount."""
    r = Repeat(frequency=1, period=1, period_unit="d", day_of_week=days)
    assert mg(Dosage(dose=q(150), repeat=r)) == pytest.approx(expected)


def test_days_of_week_with_a_weekly_frequency_is_not_counted_twice() -> None:
    """'3 times a week on Mon/Wed/Fri' (frequency 3 per wk): 3/7 a day, not (3/7) x (3/7)."""
    r = Repeat(frequency=3, period=1, period_unit="wk", day_of_week=("mon", "wed", "fri"))
    assert mg(Dosage(dose=q(960), repeat=r)) == pytest.approx(960 * 3 / 7)


def test_single_dose() -> None:
    """Amoxicillin 2 g once before a procedure (count 1): a one-off."""
    got = read(Dosage(dose=q(2, "g"), repeat=Repeat(count=1)))
    assert got.mg_per_day == 2000 and got.single_dose


def test_no_timing_is_missing_never_a_guess() -> None:
    got = read(Dosage(dose=q(50), text="as directed"))
    assert got.mg_per_day is None
    assert got.missing == ("administrations per day on MedicationRequest/x (no timing)",)


def test_unknown_period_unit() -> None:
    got = read(Dosage(dose=q(50), repeat=Repeat(frequency=1, period=1, period_unit="fortnight")))
    assert "periodUnit" in got.missing[0]


# --- how much ---------------------------------------------------------------------------------------


def test_mass_units() -> None:
    assert mg(Dosage(dose=q(0.15, "g"), repeat=daily(1, 1, "d"))) == pytest.approx(150)
    assert mg(Dosage(dose=q(500, "ug"), repeat=daily(1, 1, "d"))) == pytest.approx(0.5)


def test_dose_range_judges_the_upper_bound() -> None:
    assert mg(Dosage(dose=q(100), dose_from_range=True, repeat=daily(2, 1, "d"))) == 200


def test_mg_per_kg_needs_the_weight() -> None:
    """2 mg/kg once daily in a 70 kg patient is 140 mg; without a weight it is not read."""
    assert mg(Dosage(dose=q(2, "mg/kg"), repeat=daily(1, 1, "d")), weight=70) == 140
    got = read(Dosage(dose=q(2, "mg/kg"), repeat=daily(1, 1, "d")))
    assert got.mg_per_day is None and "body weight" in got.missing[0]


@pytest.mark.parametrize("unit", ["{tbl}", "{pill}", "{tablet}", "tablet", "TAB", "{capsule}"])
def test_tablets_times_strength(unit: str) -> None:
    """2 tablets of 50 mg twice a day = 200 mg/day, whatever the EHR calls a tablet."""
    assert mg(Dosage(dose=q(2, unit), repeat=daily(2, 1, "d")), strength=TABLET_50) == 200


def test_tablets_without_strength_or_with_a_concentration() -> None:
    got = read(Dosage(dose=q(2, "{tbl}"), repeat=daily(2, 1, "d")))
    assert "tablet strength" in got.missing[0]
    got = read(Dosage(dose=q(2, "{tbl}"), repeat=daily(2, 1, "d")), strength=SUSPENSION_10)
    assert "tablet strength" in got.missing[0]


def test_millilitres_times_concentration() -> None:
    """4.5 mL of a 10 mg/mL suspension once daily = 45 mg/day; without a concentration it is not read."""
    assert mg(Dosage(dose=q(4.5, "mL"), repeat=daily(1, 1, "d")), strength=SUSPENSION_10) == pytest.approx(45)
    got = read(Dosage(dose=q(4.5, "mL"), repeat=daily(1, 1, "d")), strength=TABLET_50)
    assert "concentration" in got.missing[0]


def test_comparator_or_unknown_unit_is_missing() -> None:
    assert "exact dose" in read(Dosage(dose=q(50, comparator="<"), repeat=daily(1, 1, "d"))).missing[0]
    assert "known dose unit" in read(Dosage(dose=q(2, "{puff}"), repeat=daily(1, 1, "d"))).missing[0]
    assert "no doseQuantity" in read(Dosage(repeat=daily(1, 1, "d"))).missing[0]


def test_rates() -> None:
    """A continuous infusion: 2 mg/h = 48 mg/day; 100 mg per 12 h (rateRatio) = 200 mg/day."""
    assert mg(Dosage(rate=q(2, "mg/h"))) == pytest.approx(48)
    assert mg(Dosage(rate_ratio=Ratio(q(100), q(12, "h")))) == pytest.approx(200)
    assert "rate unit" in read(Dosage(rate=q(2, "mL/h"))).missing[0]


def test_max_dose_per_period_caps_the_amount() -> None:
    """100 mg twice daily, at most 150 mg a day: 150. A cap above the schedule changes nothing."""
    cap = Ratio(q(150), q(1, "d"))
    assert mg(Dosage(dose=q(100), repeat=daily(2, 1, "d"), max_per_period=cap)) == 150
    assert mg(Dosage(dose=q(50), repeat=daily(2, 1, "d"), max_per_period=cap)) == 100
    weekly = Ratio(q(700), q(1, "wk"))
    assert mg(Dosage(dose=q(200), repeat=daily(1, 1, "d"), max_per_period=weekly)) == pytest.approx(100)


def test_as_needed_reads_only_through_its_cap() -> None:
    got = read(Dosage(dose=q(50), as_needed=True, repeat=daily(2, 1, "d")))
    assert got.mg_per_day is None and "as needed" in got.missing[0]
    capped = Dosage(dose=q(50), as_needed=True, max_per_period=Ratio(q(100), q(1, "d")))
    assert mg(capped) == 100


def test_max_per_administration() -> None:
    assert mg(Dosage(dose=q(2, "mg/kg"), repeat=daily(1, 1, "d"), max_per_administration=q(100)), weight=70) == 100


# --- phases ---------------------------------------------------------------------------------------


def _phase(dose: float, seq: int | None, start_days_ago: float | None, end_days_ago: float | None = None,
           duration_days: float | None = None) -> Dosage:
    return Dosage(dose=q(dose), sequence=seq, repeat=Repeat(
        frequency=1, period=1, period_unit="d",
        bounds_start=NOW - timedelta(days=start_days_ago) if start_days_ago is not None else None,
        bounds_end=NOW - timedelta(days=end_days_ago) if end_days_ago is not None else None,
        bounds_duration=q(duration_days, "d") if duration_days is not None else None))


def test_concurrent_instructions_are_summed() -> None:
    """50 mg in the morning and 100 mg at night: 150 mg/day."""
    assert mg(Dosage(dose=q(50), sequence=1, repeat=daily(1, 1, "d")),
              Dosage(dose=q(100), sequence=1, repeat=daily(1, 1, "d"))) == 150
    assert mg(Dosage(dose=q(50), repeat=daily(1, 1, "d")), Dosage(dose=q(100), repeat=daily(1, 1, "d"))) == 150


def test_finished_titration_is_its_current_step() -> None:
    """50 mg for 4 weeks (ended 30 days ago), then 150 mg: today 150."""
    got = read(_phase(50, 1, 58, 30), _phase(150, 2, 30))
    assert got.mg_per_day == 150 and "current" in got.how


def test_bounds_duration_chains_from_the_order_start() -> None:
    """A taper from an order started 20 days ago: 150 mg for 14 days, then 100 mg for 14 days, then 50 mg."""
    start = NOW - timedelta(days=20)
    steps = (_phase(150, 1, None, duration_days=14), _phase(100, 2, None, duration_days=14), _phase(50, 3, None))
    assert read(*steps, start=start).mg_per_day == 100
    assert read(*steps, start=NOW - timedelta(days=13)).mg_per_day == 150
    assert read(*steps, start=NOW - timedelta(days=14)).mg_per_day == 100  # the boundary: the next step
    assert read(*steps, start=NOW - timedelta(days=28)).mg_per_day == 50


def test_sequential_phases_without_bounds_cannot_be_placed() -> None:
    got = read(Dosage(dose=q(50), sequence=1, repeat=daily(1, 1, "d")),
               Dosage(dose=q(150), sequence=2, repeat=daily(1, 1, "d")))
    assert got.mg_per_day is None and "which phase" in got.missing[0]


def test_every_phase_ended_reads_the_last_and_none_started_reads_the_first() -> None:
    assert read(_phase(50, 1, 60, 40), _phase(100, 2, 40, 10)).mg_per_day == 100
    assert read(_phase(50, 1, -5, -10), _phase(100, 2, -10)).mg_per_day == 50


def test_no_dosage_at_all() -> None:
    assert read().missing == ("dosage instructions on MedicationRequest/x",)


# --- strength ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("names", "expected"), [
    (["Azathioprine 50 mg/mL oral suspension"], Strength(50, "mL", "product name '50 mg/mL'")),
    (["Jayempi 10 mg/ml Suspension zum Einnehmen"], Strength(10, "mL", "product name '10 mg/ml'")),
    (["amoxicillin 250 mg/5 mL"], Strength(50, "mL", "product name '250 mg/5 mL'")),
    (["azathioprine 50 MG Oral Tablet"], Strength(50, "unit", "product name '50 MG'")),
    (["Imuran 25mg"], Strength(25, "unit", "product name '25mg'")),
    (["sulfamethoxazole 800 MG / trimethoprim 160 MG Oral Tablet"], None),
    (["azathioprine tablets"], None),
    (["azathioprine 50 mg", "azathioprine 75 mg"], None),
])
def test_strength_in_names(names: list[str], expected: Strength | None) -> None:
    assert strength_in_names(names) == expected


def test_strength_of_ratio() -> None:
    assert strength_of_ratio(q(75), q(1, "{tbl}"), M, "s") == Strength(75, "unit", "s")
    assert strength_of_ratio(q(75), None, M, "s") == Strength(75, "unit", "s")
    assert strength_of_ratio(q(250), q(5, "mL"), M, "s") == Strength(50, "mL", "s")
    assert strength_of_ratio(q(0.05, "g"), q(1, "mL"), M, "s") == Strength(50, "mL", "s")
    assert strength_of_ratio(q(75), q(1, "{puff}"), M, "s") is None
    assert strength_of_ratio(q(75, "[iU]"), q(1, "{tbl}"), M, "s") is None
