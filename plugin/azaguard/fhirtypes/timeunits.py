"""Units of time in days: UCUM's (s, min, h, d, wk, mo, a) and the English words records also write.

The table lives in mappings/units.json (`time_units`), validated on load; this module only reads it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from azaguard.mappings import Mappings


def days_per(unit: str | None, mappings: Mappings) -> float | None:
    """Days in one `unit` (a UCUM code, or a word such as 'weeks'); None when the unit is not one of time."""
    if not unit:
        return None
    table = mappings.units.time
    key = unit.strip()
    found = table.days.get(key) or table.days.get(key.lower())
    if found is None:
        code = table.words.get(key.lower())
        found = table.days.get(code) if code is not None else None
    return found
