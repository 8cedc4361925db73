"""UCUM normalisation: every unit and alias in mappings/units.json, directly and through build_record.

The expected values are written out by hand (not derived from the table) so a wrong factor in
mappings/units.json fails here; the completeness tests fail when a unit is added without a case.
"""

from __future__ import annotations

import math
import re

import pytest

from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet
from azaguard.units import UnitError, normalise

UCUM = "http://unitsofmeasure.org"
LOINC = "http://loinc.org"

# (unit code, dimension, value, expected value in the dimension's canonical unit)
UNITS: list[tuple[str, str, float, float]] = [
    ("10*9/L", "cell-count", 4.2, 4.2),
    ("10*3/uL", "cell-count", 4.2, 4.2),
    ("10*3/mm3", "cell-count", 4.2, 4.2),
    ("/uL", "cell-count", 4200, 4.2),
    ("/mm3", "cell-count", 4200, 4.2),
    ("{cells}/uL", "cell-count", 4200, 4.2),
    ("10*6/L", "cell-count", 4200, 4.2),
    ("/nL", "cell-count", 4.2, 4.2),
    ("fL", "volume-fl", 92, 92),
    ("um3", "volume-fl", 92, 92),
    ("U/L", "enzyme", 45, 45),
    ("[IU]/L", "enzyme", 45, 45),
    ("g/L", "protein-mass", 38, 38),
    ("g/dL", "protein-mass", 3.8, 38),
    ("umol/L", "creatinine", 88.4, 88.4),
    ("mg/dL", "creatinine", 1.0, 88.4),
    ("mL/min/{1.73_m2}", "egfr", 75, 75),
    ("mL/min/1.73m2", "egfr", 75, 75),
    ("Cel", "temperature", 38.0, 38.0),
    ("[degF]", "temperature", 100.4, 38.0),
    ("kg", "body-mass", 70, 70),
    ("g", "body-mass", 70000, 70),
    ("[lb_av]", "body-mass", 100, 45.359237),
    ("mg", "drug-mass", 50, 50),
    ("g", "drug-mass", 0.05, 50),
    ("ug", "drug-mass", 500, 0.5),
    ("mg/kg", "drug-mass-per-body-mass", 2, 2),
    ("g/kg", "drug-mass-per-body-mass", 0.002, 2),
    ("ug/kg", "drug-mass-per-body-mass", 2000, 2),
    ("mL", "drug-volume", 2.5, 2.5),
    ("L", "drug-volume", 0.0025, 2.5),
    ("cL", "drug-volume", 0.25, 2.5),
    ("dL", "drug-volume", 0.025, 2.5),
    ("mg/d", "drug-rate", 150, 150),
    ("mg/(24.h)", "drug-rate", 150, 150),
    ("g/d", "drug-rate", 0.15, 150),
    ("mg/h", "drug-rate", 2, 48),
    ("mg/min", "drug-rate", 0.5, 720),
    ("ug/min", "drug-rate", 500, 720),
    ("ug/h", "drug-rate", 1000, 24),
    ("pmol/{8x10^8_RBC}", "thiopurine-metabolite", 450, 450),
]

# (alias as written by labs/EHRs, dimension, value, expected canonical value)
ALIASES: list[tuple[str, str, float, float]] = [
    ("K/uL", "cell-count", 4.2, 4.2),
    ("k/uL", "cell-count", 4.2, 4.2),
    ("x10^9/L", "cell-count", 4.2, 4.2),
    ("x10E9/L", "cell-count", 4.2, 4.2),
    ("10^9/L", "cell-count", 4.2, 4.2),
    ("x10^3/uL", "cell-count", 4.2, 4.2),
    ("10^3/uL", "cell-count", 4.2, 4.2),
    ("x10E3/uL", "cell-count", 4.2, 4.2),
    ("thou/uL", "cell-count", 4.2, 4.2),
    ("cells/uL", "cell-count", 4200, 4.2),
    ("IU/L", "enzyme", 45, 45),
    ("µmol/L", "creatinine", 88.4, 88.4),
    ("°C", "temperature", 38.5, 38.5),
    ("degC", "temperature", 38.5, 38.5),
    ("°F", "temperature", 104, 40),  # plausible body temperatures (the record rejects 100 °C)
    ("degF", "temperature", 98.6, 37),
    ("lb", "body-mass", 200, 90.718474),
    ("lbs", "body-mass", 200, 90.718474),
    ("mL/min/1.73 m2", "egfr", 59, 59),
    ("mcg", "drug-mass", 500, 0.5),
    ("µg", "drug-mass", 500, 0.5),
    ("ml", "drug-volume", 5, 5),
    ("ML", "drug-volume", 5, 5),
    ("MG", "drug-mass", 50, 50),
    ("mg/kg/dose", "drug-mass-per-body-mass", 2, 2),
    ("mg/kg/{dose}", "drug-mass-per-body-mass", 2, 2),
    ("mg/day", "drug-rate", 150, 150),
    ("mg/hr", "drug-rate", 2, 48),
    ("pmol/8x10^8 RBC", "thiopurine-metabolite", 450, 450),
    ("pmol/8x10E8 RBC", "thiopurine-metabolite", 450, 450),
    ("pmol/8 x 10^8 RBC", "thiopurine-metabolite", 450, 450),
    ("pmol/8x10*8 RBC", "thiopurine-metabolite", 450, 450),
    ("pmol/8x10^8 RBCs", "thiopurine-metabolite", 5700, 5700),
]

# One LOINC code per analyte dimension, to go through build_record.
LOINC_BY_DIMENSION = {
    "cell-count": "6690-2",  # WBC
    "volume-fl": "787-2",  # MCV
    "enzyme": "1742-6",  # ALT
    "protein-mass": "1751-7",  # albumin
    "creatinine": "2160-0",
    "egfr": "33914-3",
    "temperature": "8310-5",
    "body-mass": "29463-7",
    "thiopurine-metabolite": "6-TGN",  # no LOINC code listed: a lab-local code, recognised by its name
}


def test_every_unit_in_the_mappings_has_a_case() -> None:
    units = load_mappings().units
    in_table = {(code, dim) for dim, d in units.dimensions.items() for code in d.units}
    assert {(code, dim) for code, dim, _, _ in UNITS} == in_table


def test_every_alias_in_the_mappings_has_a_case() -> None:
    assert {alias for alias, _, _, _ in ALIASES} == set(load_mappings().units.aliases)


def test_every_analyte_dimension_goes_through_build_record() -> None:
    dims = {a.dimension for a in load_mappings().analytes.analytes.values()}
    assert dims == set(LOINC_BY_DIMENSION)


@pytest.mark.parametrize(
    ("code", "dimension", "value", "expected"), UNITS, ids=[f"{u[1]}:{u[0]}" for u in UNITS]
)
def test_ucum_code_normalises(code: str, dimension: str, value: float, expected: float) -> None:
    m = load_mappings()
    n = normalise(value, code=code, system=UCUM, text=None, dimension=dimension, mappings=m)
    assert math.isclose(n.value, expected, rel_tol=1e-9)
    assert n.unit == m.units.dimensions[dimension].canonical
    assert n.unit_source == "code"


@pytest.mark.parametrize(
    ("code", "dimension", "value", "expected"), UNITS, ids=[f"{u[1]}:{u[0]}" for u in UNITS]
)
def test_ucum_code_written_only_as_text_is_accepted(
    code: str, dimension: str, value: float, expected: float
) -> None:
    n = normalise(
        value, code=None, system=None, text=f" {code} ", dimension=dimension, mappings=load_mappings()
    )
    assert math.isclose(n.value, expected, rel_tol=1e-9)
    assert n.unit_source == "text"


@pytest.mark.parametrize(("alias", "dimension", "value", "expected"), ALIASES, ids=[a[0] for a in ALIASES])
def test_alias_as_code_normalises(alias: str, dimension: str, value: float, expected: float) -> None:
    n = normalise(value, code=alias, system=UCUM, text=None, dimension=dimension, mappings=load_mappings())
    assert math.isclose(n.value, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert n.unit_source == "alias"


@pytest.mark.parametrize(("alias", "dimension", "value", "expected"), ALIASES, ids=[a[0] for a in ALIASES])
def test_alias_as_text_only_normalises(alias: str, dimension: str, value: float, expected: float) -> None:
    n = normalise(value, code=None, system=None, text=alias, dimension=dimension, mappings=load_mappings())
    assert math.isclose(n.value, expected, rel_tol=1e-9, abs_tol=1e-9)
    assert n.unit_source == "alias"


@pytest.mark.parametrize(
    ("code", "system", "text", "dimension", "why"),
    [
        ("giga/L", UCUM, None, "cell-count", "unknown unit"),
        ("10*9/L", UCUM, None, "body-mass", "not a body-mass unit"),
        ("mg", UCUM, None, "body-mass", "not a body-mass unit"),
        ("kg", "http://example.org/units", None, "body-mass", "unknown unit"),  # a known code, foreign system
        (None, None, "thousand per microlitre", "cell-count", "text only"),
        (None, None, None, "cell-count", "(none)"),
        ("kg", UCUM, None, "no-such-dimension", "unknown dimension"),
    ],
)
def test_unusable_units_raise(
    code: str | None, system: str | None, text: str | None, dimension: str, why: str
) -> None:
    with pytest.raises(UnitError, match=re.escape(why)):
        normalise(1.0, code=code, system=system, text=text, dimension=dimension, mappings=load_mappings())


def test_code_wins_over_a_misleading_text_unit() -> None:
    # The free text says pounds, the UCUM code says kg: normalise on the code.
    n = normalise(70, code="kg", system=UCUM, text="lb", dimension="body-mass", mappings=load_mappings())
    assert n.value == 70


# --- through build_record ------------------------------------------------------------------


def _observation(loinc: str, value: float, *, code: str | None, text: str | None) -> dict[str, object]:
    quantity: dict[str, object] = {"value": value}
    if code is not None:
        quantity |= {"system": UCUM, "code": code}
    if text is not None:
        quantity["unit"] = text
    return {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": loinc}]} if loinc.replace("-", "").isdigit() else {
            "coding": [{"system": "http://lab.example.org", "code": "L1", "display": loinc}]},
        "effectiveDateTime": "2026-10-30T08:00:00+00:00",
        "valueQuantity": quantity,
    }


def _measure(
    loinc: str, value: float, *, code: str | None = None, text: str | None = None
) -> tuple[object, ...]:
    record = build_record(
        ResourceSet.from_resources([_observation(loinc, value, code=code, text=text)]), load_mappings()
    )
    assert not record.problems
    (m,) = record.measurements
    return m.result.value, m.result.unit, m.result.problem, m.result.unit_from_text


RECORD_UNITS = [u for u in UNITS if u[1] in LOINC_BY_DIMENSION]
RECORD_ALIASES = [a for a in ALIASES if a[1] in LOINC_BY_DIMENSION]


@pytest.mark.parametrize(
    ("code", "dimension", "value", "expected"), RECORD_UNITS, ids=[f"{u[1]}:{u[0]}" for u in RECORD_UNITS]
)
def test_build_record_normalises_ucum_codes(code: str, dimension: str, value: float, expected: float) -> None:
    got, unit, problem, from_text = _measure(LOINC_BY_DIMENSION[dimension], value, code=code, text="whatever")
    assert problem is None
    assert isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-9)
    assert unit == load_mappings().units.dimensions[dimension].canonical
    assert from_text is False


@pytest.mark.parametrize(
    ("alias", "dimension", "value", "expected"), RECORD_ALIASES, ids=[a[0] for a in RECORD_ALIASES]
)
def test_build_record_accepts_aliases_in_code_and_in_text(
    alias: str, dimension: str, value: float, expected: float
) -> None:
    loinc = LOINC_BY_DIMENSION[dimension]
    for kw in ({"code": alias}, {"text": alias}):
        got, _, problem, from_text = _measure(loinc, value, **kw)
        assert problem is None, kw
        assert isinstance(got, float) and math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-9), kw
        assert from_text is True  # flagged so the evidence says the unit came from an alias


@pytest.mark.parametrize(
    ("loinc", "code", "text", "problem"),
    [
        ("6690-2", "giga/L", None, "unknown unit"),
        ("6690-2", None, "thousand/uL", "text only"),
        ("29463-7", "10*9/L", None, "not a body-mass unit"),
        ("8310-5", None, None, "(none)"),
    ],
)
def test_build_record_keeps_unit_problems(
    loinc: str, code: str | None, text: str | None, problem: str
) -> None:
    value, unit, why, _ = _measure(loinc, 5.0, code=code, text=text)
    assert value is None and unit is None
    assert isinstance(why, str) and problem in why
