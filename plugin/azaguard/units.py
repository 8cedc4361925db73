"""UCUM normalisation from an explicit, reviewable table (mappings/units.json).

Why a table and not a UCUM library: azaguard needs a dozen units in eight
dimensions, each conversion must be visible to a clinical reviewer, and an
unknown unit must stop the rule (cannot-evaluate) rather than be guessed.
"""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

from azaguard.display import unit_text
from azaguard.errors import InputError
from azaguard.mappings import Mappings


class UnitError(InputError):
    """The unit is missing, unknown, or belongs to another dimension."""


class Quantity(Struct, frozen=True):
    value: float | None
    comparator: str | None
    code: str | None
    system: str | None
    unit: str | None  # free text

    def as_recorded(self) -> str:
        v = "?" if self.value is None else f"{self.value:g}"
        return f"{self.comparator or ''}{v} {self.code or self.unit or '(no unit)'}".strip()


class Normalised(Struct, frozen=True):
    value: float
    unit: str  # the dimension's canonical UCUM unit
    # Where the unit came from: the UCUM code, an explicit alias, or the free-text unit.
    unit_source: Literal["code", "alias", "text"]


def normalise(
    value: float,
    *,
    code: str | None,
    system: str | None,
    text: str | None,
    dimension: str,
    mappings: Mappings,
) -> Normalised:
    """Convert `value` to the canonical unit of `dimension`, or raise UnitError."""
    dim = mappings.units.dimensions.get(dimension)
    if dim is None:
        raise UnitError(f"unknown dimension {dimension!r}")
    unit, source = _resolve_unit(code, system, text, mappings)
    if unit is None:
        raise UnitError(f"unknown unit {_describe(code, text)} for {dimension}")
    conversion = dim.units.get(unit)
    if conversion is None:
        expected = unit_text(dim.canonical, mappings)
        raise UnitError(f"unit {_describe(code, text)} is not a {dimension} unit (expected e.g. {expected})")
    return Normalised((value + conversion.offset) * conversion.factor, dim.canonical, source)


def unit_dimension(code: str | None, system: str | None, text: str | None, mappings: Mappings) -> str | None:
    """The one dimension a unit belongs to (e.g. 'temperature' for [degF] or '°F'), None when unknown or shared."""
    unit, _ = _resolve_unit(code, system, text, mappings)
    found = [name for name, d in mappings.units.dimensions.items() if unit is not None and unit in d.units]
    return found[0] if len(found) == 1 else None


def _resolve_unit(
    code: str | None, system: str | None, text: str | None, mappings: Mappings
) -> tuple[str | None, Literal["code", "alias", "text"]]:
    known = _known_units(mappings)
    aliases = mappings.units.aliases
    ucum_system = system is None or system in mappings.systems.ucum
    if code:
        if ucum_system and code in known:
            return code, "code"
        if code in aliases:
            return aliases[code], "alias"
        return None, "code"
    # No code at all: the free text is accepted only when it is itself a UCUM code or an explicit alias.
    if text:
        stripped = text.strip()
        if stripped in known:
            return stripped, "text"
        if stripped in aliases:
            return aliases[stripped], "alias"
    return None, "text"


def _describe(code: str | None, text: str | None) -> str:
    if code:
        return repr(code)
    if text:
        return f"{text!r} (text only)"
    return "(none)"


def _known_units(mappings: Mappings) -> frozenset[str]:
    """Every unit of every dimension, collected once per mappings (a record resolves hundreds of units)."""
    return mappings.derived(_all_units)


def _all_units(m: Mappings) -> frozenset[str]:
    return frozenset(u for d in m.units.dimensions.values() for u in d.units)
