"""The amount of one drug an order gives a day: the dosage module, fed with the right ingredient's strength.

Every rule that needs an amount (dose, allopurinol reduction, vaccine tier, prophylaxis regimens) reads it
here, so a tablet, a suspension or a weight-based dose is turned into mg the same way everywhere.
"""

from __future__ import annotations

from datetime import datetime

from azaguard.dosage import DoseReading, Strength, daily_mg, strength_after_name, strength_in_names
from azaguard.mappings import Mappings
from azaguard.record import MedicineUse
from azaguard.rules.common import order_name
from azaguard.terminology import AZATHIOPRINE, azathioprine_strength_mg, drug_ingredients


def strength_of(order: MedicineUse, key: str, m: Mappings) -> Strength | None:
    """The strength of ingredient `key` (e.g. 'azathioprine', 'allopurinol') in the order's product:
    Medication.ingredient.strength, else a known RxNorm product, else a single strength in its name."""
    with_strength = [i for i in order.ingredients if i.strength is not None]
    named = [i for i in with_strength if any(h.key == key for h in drug_ingredients(i.concept, m).hits)]
    if len(named) == 1 and named[0].strength is not None:
        return named[0].strength
    if len(order.ingredients) == 1 and len(with_strength) == 1 and with_strength[0].strength is not None:
        return with_strength[0].strength
    if key == AZATHIOPRINE and order.medication is not None:
        mg = azathioprine_strength_mg(order.medication, m)
        if mg is not None:
            return Strength(mg, "unit", "RxNorm product strength")
        table = m.medications.azathioprine.strength_mg_by_rxnorm
        if any(c.code.strip() in table for c in order.medication.codings):
            return None  # product codes of different strengths: which one was given cannot be told
    if order.medication is None:
        return None
    # A combination product's name holds several strengths: only the one written after the ingredient's name.
    words = _names_of(key, m)
    if len(order.ingredients) > 1:
        return strength_after_name(order.medication.names, words)
    return strength_in_names(order.medication.names, words)


def _names_of(key: str, m: Mappings) -> tuple[str, ...]:
    """The names an ingredient goes by in a product name (an anti-infective's, or an interacting member's)."""
    for ing in m.medications.anti_infectives.ingredients:
        if ing.name == key:
            return (ing.name, *ing.synonyms)
    for cls in m.medications.interactions:
        for member in cls.members:
            if member.name == key:
                return (member.name, *member.names)
    return (key,) if key == AZATHIOPRINE else ()


def order_daily_mg(
    order: MedicineUse, key: str, now: datetime, weight_kg: float | None, m: Mappings
) -> DoseReading:
    """The average mg/day of ingredient `key` the order gives today (dosage.daily_mg)."""
    return daily_mg(order.doses, ref=order_name(order), now=now, start=order.start, strength=strength_of(order, key, m),
                    weight_kg=weight_kg, m=m)
