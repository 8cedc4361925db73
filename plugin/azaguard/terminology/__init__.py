"""Terminology: the one place that answers "which of our concepts is this CodeableConcept or text?".

Drugs to ingredients, vaccines to live / not live / ambiguous, conditions to infection classes, backed by
the value sets in `mappings/` (and optionally a FHIR terminology server). Rules ask this package; they never
compare codes or names themselves. Recognition is memoised per concept, so asking again is cheap.
"""

from azaguard.terminology._common import coded, fold, names_match, ndc_product, system_names
from azaguard.terminology.conditions import InfectionMatch, infection_class
from azaguard.terminology.drugs import (
    AZATHIOPRINE,
    NO_DRUG,
    DrugHit,
    DrugMatch,
    MatchKind,
    azathioprine_strength_mg,
    drug_ingredients,
    may_be_prophylaxis,
    non_systemic_names,
    prophylaxis_reason,
)
from azaguard.terminology.vaccines import (
    VaccineClass,
    VaccineKind,
    cvx_key,
    is_vaccine_concept,
    vaccine_class,
)

__all__ = [
    "AZATHIOPRINE",
    "NO_DRUG",
    "DrugHit",
    "DrugMatch",
    "InfectionMatch",
    "MatchKind",
    "VaccineClass",
    "VaccineKind",
    "azathioprine_strength_mg",
    "coded",
    "cvx_key",
    "drug_ingredients",
    "fold",
    "infection_class",
    "is_vaccine_concept",
    "may_be_prophylaxis",
    "names_match",
    "ndc_product",
    "non_systemic_names",
    "prophylaxis_reason",
    "system_names",
    "vaccine_class",
]
