"""The clinical knowledge as data: load and validate mappings/*.json once.

Every code set, threshold and window the rules use lives in mappings/; this
module gives it types. A malformed mappings file fails loudly at load time,
never at the bedside.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import re
import sys
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import msgspec
from msgspec import Struct, field
from msgspec.structs import replace

from azaguard.errors import KnowledgeError
from azaguard.findings import RuleId, Severity, Status
from azaguard.settings import current

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, TypeAdapter
    from pydantic_core import CoreSchema

    from azaguard.settings import Settings


class MappingsError(KnowledgeError):
    """The mappings folder is missing or does not validate."""


# The types are frozen msgspec Structs: defined in C (a stdlib dataclass costs ~0.5 ms to define, and there
# are ~50), rebuilt from the CLI's cache without validating again. pydantic validates the JSON into them
# (`_validated`, through `__get_pydantic_core_schema__` below) and is imported only then: a check that reads
# the validated Mappings from the cache never imports pydantic. Checks that types cannot express are each
# class's `_check`, run by that validation only (a ValueError there is a validation error).
_T = TypeVar("_T")


class _Model(Struct, frozen=True, kw_only=True):  # unknown keys: refused by the schema below
    def _check(self) -> None:
        """Cross-field checks, run when the JSON is validated."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        from pydantic_core import core_schema  # asked by pydantic only: a cache hit never imports it

        specs = msgspec.structs.fields(cls)
        by_json_name = {f.encode_name: f.name for f in specs}
        schema = core_schema.typed_dict_schema(
            {f.encode_name: core_schema.typed_dict_field(handler.generate_schema(f.type), required=f.required)
             for f in specs},
            extra_behavior="forbid",
        )

        def build(values: dict[str, Any]) -> _Model:
            built = cls(**{by_json_name[k]: v for k, v in values.items()})
            built._check()
            return built

        return core_schema.no_info_after_validator_function(build, schema)


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


UNVERIFIED = "UNVERIFIED"  # the marker that begins the source of a code that could not be confirmed


def _check_code_sources(what: str, codes: Iterable[str], sources: Mapping[str, str]) -> None:
    """Every code carries its source ("verified: ...", where it was confirmed) or the UNVERIFIED marker
    ("UNVERIFIED: what was tried"); a source for a code no longer listed is stale."""
    listed = set(codes)
    missing = sorted(c for c in listed if not (sources.get(c) or "").strip())
    _require(not missing, f"{what}: code(s) without a source or the {UNVERIFIED} marker: {', '.join(missing)}")
    stale = sorted(set(sources) - listed)
    _require(not stale, f"{what}: code_sources for code(s) not listed: {', '.join(stale)}")


def loinc_check_digit_ok(code: str) -> bool:
    """LOINC's mod-10 check digit: a mistyped code (80382-3 for 80382-5) is not a LOINC code at all."""
    base, _, digit = code.partition("-")
    if not (base.isdigit() and digit.isdigit() and len(digit) == 1):
        return False
    reversed_digits = base[::-1]
    odd, even = reversed_digits[0::2][::-1], reversed_digits[1::2][::-1]
    total = sum(int(c) for c in even + str(int(odd) * 2))
    return (10 - total % 10) % 10 == int(digit)


def _check_loinc(what: str, codes: Iterable[str]) -> None:
    bad = sorted(c for c in codes if not loinc_check_digit_ok(c))
    _require(not bad, f"{what}: not LOINC codes (wrong check digit or form): {', '.join(bad)}")


class Sourced(_Model, frozen=True, kw_only=True):
    """A number with where it comes from (and whether that source was verified)."""

    value: float
    source: str
    unverified: bool = False


# --- systems -----------------------------------------------------------------


class Systems(_Model, frozen=True, kw_only=True):
    rxnorm: tuple[str, ...]
    loinc: tuple[str, ...]
    ucum: tuple[str, ...]
    snomed: tuple[str, ...]
    cvx: tuple[str, ...]
    atc: tuple[str, ...]
    icd10cm: tuple[str, ...]
    icd10: tuple[str, ...]  # WHO ICD-10
    dmd: tuple[str, ...]
    ndc: tuple[str, ...] = ()
    cpt: tuple[str, ...] = ()
    condition_clinical: tuple[str, ...] = field(name="condition-clinical")
    condition_ver_status: tuple[str, ...] = field(name="condition-ver-status")

    def name_of(self, uri: str | None) -> str | None:
        """Short name ('rxnorm', 'loinc', ...) for a system URI, or None if unknown."""
        if uri is None:
            return None
        for name in self.__struct_fields__:
            if name not in _STATUS_SYSTEMS and uri in getattr(self, name):
                return name
        return None


_STATUS_SYSTEMS = frozenset({"condition_clinical", "condition_ver_status"})
_SYSTEM_NAMES = frozenset(Systems.__struct_fields__)


# --- medications -------------------------------------------------------------

# Codes of a value set keyed by the system names of systems.json (the coverage report reads this shape).
DrugSystem = Literal["rxnorm", "atc", "snomed", "dmd", "ndc"]
DrugCodes = dict[DrugSystem, frozenset[str]]


class ValueSetInfo(_Model, frozen=True, kw_only=True):
    """Where a value set comes from and when it was last checked against it."""

    source: str
    as_of: date


class AzathioprineSet(ValueSetInfo, frozen=True, kw_only=True):
    codes: DrugCodes
    names: tuple[str, ...]  # INN/BAN/USAN and European spellings
    brands: tuple[str, ...]
    strength_mg_by_rxnorm: dict[str, float]
    ndc_note: str = ""  # how the NDC codes are keyed and how sure they are
    names_note: str = ""  # where the spellings and brands come from
    # (minimum name length, edits allowed): a word that close to a name or brand is "may be azathioprine".
    near_miss_edits: tuple[tuple[int, int], ...] = ()
    near_miss_note: str = ""


class ProphylaxisRegimen(_Model, frozen=True, kw_only=True):
    """How the ingredient is given as prophylaxis (read through the dosage module), as against treatment."""

    max_administrations_per_day: float | None = None
    max_mg_per_day: float | None = None
    single_dose: bool = False  # a single pre-procedure dose (count 1)
    note: str


class NonInfectiveUses(_Model, frozen=True, kw_only=True):
    """Indications for which the drug is given that are not infections (dapsone for dermatitis herpetiformis):
    an order whose reason is one of them is not treatment of an infection."""

    icd10_prefixes: tuple[str, ...] = ()  # ICD-10 / ICD-10-CM code families
    words: tuple[str, ...] = ()  # whole words in the reason's name
    note: str


class AntiInfectiveIngredient(_Model, frozen=True, kw_only=True):
    name: str
    atc_class: Literal["J01", "J02", "J04", "J05"]
    codes: DrugCodes
    synonyms: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    prophylaxis_possible: bool = False
    prophylaxis_regimen: ProphylaxisRegimen | None = None
    non_infective_uses: NonInfectiveUses | None = None

    @property
    def rxnorm(self) -> str | None:
        """The first RxNorm ingredient code (None until one is recorded)."""
        codes = sorted(self.codes.get("rxnorm", frozenset()))
        return codes[0] if codes else None

    def _check(self) -> None:
        # Metronidazole also carries P01AB01; the other codes must sit in the ingredient's class.
        if not any(code.startswith(self.atc_class) for code in self.codes.get("atc", ())):
            raise ValueError(f"anti-infective {self.name!r} has no ATC code in {self.atc_class}")


class Prophylaxis(ValueSetInfo, frozen=True, kw_only=True):
    """Reasons that make an anti-infective prophylaxis (codes, code prefixes, words) and what to say."""

    codes: dict[str, frozenset[str]]  # by system name (systems.json): snomed, icd10cm, icd10
    code_prefixes: dict[str, tuple[str, ...]]  # ICD-10 families (Z22: carrier states)
    words: tuple[str, ...]
    caution: str
    decision: str

    def _check(self) -> None:
        for pattern in self.words:
            re.compile(pattern, re.IGNORECASE)


class AntiInfectives(ValueSetInfo, frozen=True, kw_only=True):
    note: str
    atc_prefixes: tuple[str, ...]
    prophylaxis_false_positive_note: str
    # A product named with one of these (cream, eye drops, ...) is not systemic: not an infection hold.
    non_systemic_form_words: tuple[str, ...]
    non_systemic_note: str = ""
    # European spellings of INN endings (French -ine, Spanish/Italian -ina, German -ol ...): each ingredient
    # name and synonym also answers to these variants. Pairs of (English ending, variant ending).
    spelling_variants: tuple[tuple[str, str], ...] = ()
    spelling_variants_source: str = ""
    ingredients: tuple[AntiInfectiveIngredient, ...]
    prophylaxis: Prophylaxis | None = None

    def _check(self) -> None:
        seen = [i.name for i in self.ingredients]
        dupes = {n for n in seen if seen.count(n) > 1}
        if dupes:
            raise ValueError(f"anti-infective ingredients listed twice: {sorted(dupes)}")


class InteractionMember(_Model, frozen=True, kw_only=True):
    """One drug of an interacting class, as records name it."""

    name: str  # the ingredient (INN), as findings name it
    codes: DrugCodes  # RxNorm ingredient and common products, ATC, SNOMED, dm+d, NDC
    names: tuple[str, ...] = ()  # INN/BAN/USAN and other languages' spellings
    brands: tuple[str, ...] = ()


class Interaction(_Model, frozen=True, kw_only=True):
    """A class of drugs that interact with azathioprine alike: one severity, one action, one source."""

    id: str
    label: str
    status: Literal["hold", "caution", "ok"]  # ok: a standard combination, said as information
    severity: Severity
    message: str
    source: str
    as_of: date
    atc_prefixes: tuple[str, ...] = ()  # class membership by ATC group (L04AF: every JAK inhibitor)
    systemic_only: bool = False  # eye/ear drops and creams of a member are not this interaction
    members: tuple[InteractionMember, ...]
    # Allopurinol: an azathioprine dose already at most this fraction of the usual dose was reduced on
    # purpose (low-dose allopurinol co-therapy): then the dose_reduced_* answer instead of the class's.
    dose_reduction_fraction_max: float | None = None
    dose_reduced_status: Literal["caution"] | None = None
    dose_reduced_severity: Severity | None = None
    dose_reduced_message: str | None = None
    dose_reduced_source: str | None = None

    def _check(self) -> None:
        _require(bool(self.members), f"interaction class {self.id!r} has no members")
        reduced = (self.dose_reduced_status, self.dose_reduced_severity, self.dose_reduced_message)
        _require((self.dose_reduction_fraction_max is None) == all(x is None for x in reduced),
                 f"interaction class {self.id!r}: dose_reduction_fraction_max and dose_reduced_* go together")


class Medications(ValueSetInfo, frozen=True, kw_only=True):
    azathioprine: AzathioprineSet
    anti_infectives: AntiInfectives
    interactions: tuple[Interaction, ...]  # classes, each with its members

    def _check(self) -> None:
        ids = [c.id for c in self.interactions]
        _require(len(ids) == len(set(ids)), "interaction class ids must be unique")


# --- vaccines ----------------------------------------------------------------


class VaccineBrands(ValueSetInfo, frozen=True, kw_only=True):
    cvx_by_brand: dict[str, str]


class VaccineNamePatterns(_Model, frozen=True, kw_only=True):
    live: tuple[str, ...]
    not_live_overrides: tuple[str, ...]
    not_live: tuple[str, ...]
    vaccine_words: tuple[str, ...]
    # Laboratory tests and immune globulins named like a vaccine ("measles IgG"): not a vaccine order.
    not_vaccine: tuple[str, ...]
    # Immune globulins, antitoxins, monoclonal antibodies: not vaccines even when recorded as an Immunization.
    passive: tuple[str, ...] = ()


class VaccineCrosswalks(ValueSetInfo, frozen=True, kw_only=True):
    """Other systems' codes to CVX: NDC (labeler-product, 5-4 digits), CPT, SNOMED, RxNorm, ATC."""

    ndc: dict[str, str]
    cpt: dict[str, str]
    snomed: dict[str, str]
    rxnorm: dict[str, str]
    atc: dict[str, str] = field(default_factory=dict)
    # An unlisted ATC code under these is a vaccine of unknown product (ambiguous); under the others, not one.
    atc_vaccine_prefixes: tuple[str, ...] = ()
    atc_not_vaccine_prefixes: tuple[str, ...] = ()
    atc_note: str = ""

    def _check(self) -> None:
        for code in self.ndc:
            if not re.fullmatch(r"\d{5}-\d{4}", code):
                raise ValueError(f"NDC {code!r} must be labeler-product in 5-4 digits")


class NotVaccines(_Model, frozen=True, kw_only=True):
    """CVX codes of immune globulins and monoclonal antibodies: listed beside vaccines, never vaccines."""

    source: str
    note: str
    codes: dict[str, str]


class Vaccines(ValueSetInfo, frozen=True, kw_only=True):
    live: dict[str, str]
    not_live: dict[str, str]
    ambiguous: dict[str, str]
    not_vaccines: NotVaccines
    unknown_code_policy: Literal["ambiguous"]
    brands: VaccineBrands
    name_patterns: VaccineNamePatterns
    name_policy: str
    name_patterns_note: str = ""
    crosswalks: VaccineCrosswalks

    def _check(self) -> None:
        lists = {"live": self.live, "not_live": self.not_live, "ambiguous": self.ambiguous,
                 "not_vaccines": self.not_vaccines.codes}
        for a, b in itertools.combinations(lists, 2):
            both = set(lists[a]) & set(lists[b])
            if both:
                raise ValueError(f"CVX codes in both {a} and {b}: {sorted(both)}")
        patterns = self.name_patterns
        all_patterns = (*patterns.live, *patterns.not_live_overrides, *patterns.not_live, *patterns.vaccine_words,
                        *patterns.not_vaccine, *patterns.passive)
        for pattern in all_patterns:
            # With the flags terminology/vaccines.py uses: the re module's cache then serves its compile.
            re.compile(pattern, re.IGNORECASE)
        known = set(self.live) | set(self.not_live) | set(self.ambiguous) | set(self.not_vaccines.codes)
        pointed = {
            *self.brands.cvx_by_brand.values(),
            *self.crosswalks.ndc.values(),
            *self.crosswalks.cpt.values(),
            *self.crosswalks.snomed.values(),
            *self.crosswalks.rxnorm.values(),
            *self.crosswalks.atc.values(),
        }
        if pointed - known:
            raise ValueError(f"brands/crosswalks point at CVX codes in no list: {sorted(pointed - known)}")


# --- conditions --------------------------------------------------------------


class Conditions(_Model, frozen=True, kw_only=True):
    source: str
    active_clinical_statuses: frozenset[str]
    # Statuses that say the condition is over; any other (or none) is judged by the condition's date.
    ended_clinical_statuses: frozenset[str]
    excluded_verification_statuses: frozenset[str]


InfectionKind = Literal["acute", "fever", "neutropenia", "context", "not_infection"]


class InfectionValueSet(_Model, frozen=True, kw_only=True):
    """One infection class: the reviewed recipe (roots, names) and the expanded codes per system name."""

    label: str
    source: str
    as_of: str
    roots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    root_notes: dict[str, str] = field(default_factory=dict)
    names: tuple[str, ...] = ()  # words that recognise the class in a name (acute)
    exact_names: tuple[str, ...] = ()  # whole names only (fever: "fever" alone, never "hay fever")
    name_words: tuple[str, ...] = ()  # words that put a name in this class before any acute word
    codes: dict[str, dict[str, str]]


class Infections(_Model, frozen=True, kw_only=True):
    source: str
    as_of: str
    generated_by: str
    precedence_note: str
    encounter_diagnosis_window_days: Sourced
    value_sets: dict[InfectionKind, InfectionValueSet]

    def _check(self) -> None:
        missing = {"acute", "fever", "neutropenia", "context", "not_infection"} - set(self.value_sets)
        if missing:
            raise ValueError(f"infection value sets missing: {sorted(missing)}")


# --- warning signs and side effects (signs.json) ----------------------------------


class SignCheck(_Model, frozen=True, kw_only=True):
    """The check a side effect calls for, and the rule that says it."""

    rule: RuleId
    text: str


class Sign(_Model, frozen=True, kw_only=True):
    label: str
    kind: Literal["warning", "side_effect"]
    source: str
    as_of: str
    roots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()  # a name holding one of these is not this sign ("anorexia nervosa")
    check: SignCheck | None = None
    codes: dict[str, dict[str, str]]
    # A sign that counts only once it has lasted longer than this ("a cough lasting more than two days").
    lasting_more_than_days: Sourced | None = None
    code_sources: dict[str, str] = field(default_factory=dict)  # SNOMED code -> its source or UNVERIFIED

    def _check(self) -> None:
        _check_code_sources(f"sign {self.label!r}", self.codes.get("snomed", {}), self.code_sources)


class CodeLists(_Model, frozen=True, kw_only=True):
    source: str
    loinc: frozenset[str] = frozenset()
    snomed: frozenset[str] = frozenset()
    code_sources: dict[str, str] = field(default_factory=dict)

    def _check(self) -> None:
        _check_loinc(self.source[:40], self.loinc)
        _check_code_sources(self.source[:40], self.loinc | self.snomed, self.code_sources)


class SignAnswers(_Model, frozen=True, kw_only=True):
    """Answers that say a symptom is present or absent (coded per system name, or as words)."""

    source: str
    present: dict[str, frozenset[str]]
    absent: dict[str, frozenset[str]]
    present_words: tuple[str, ...]
    absent_words: tuple[str, ...]


class Signs(_Model, frozen=True, kw_only=True):
    source: str
    as_of: str
    generated_by: str
    precedence_note: str
    window_days: Sourced
    leaflet_fever_cel: Sourced
    hold_with_neutrophils_below: Sourced
    observation_codes: CodeLists
    answers: SignAnswers
    # Words that name a unit of time (UCUM code -> words), for a length said in words ("3 days", "How many
    # hours?"): the codes are those of units.json's time.days.
    duration_unit_words: dict[str, tuple[str, ...]]
    signs: dict[str, Sign]


# --- infection shown by the laboratory (lab_infections.json) -------------------------


class Pathogen(_Model, frozen=True, kw_only=True):
    label: str
    kind: Literal["acute", "reactivation", "chronic"]
    source: str
    as_of: str
    loinc: tuple[str, ...]
    names: tuple[str, ...]
    culture: bool = False
    code_sources: dict[str, str] = field(default_factory=dict)  # LOINC code -> its source or UNVERIFIED
    removed_codes: dict[str, str] = field(default_factory=dict)  # codes taken out, and why (not read)

    def _check(self) -> None:
        _check_loinc(f"pathogen {self.label!r}", self.loinc)
        _check_code_sources(f"pathogen {self.label!r}", self.loinc, self.code_sources)


class ResultCodes(_Model, frozen=True, kw_only=True):
    """Coded result values by class, per system name (SNOMED Detected, LOINC answer Not detected ...)."""

    source: str
    positive: dict[str, frozenset[str]]
    negative: dict[str, frozenset[str]]
    equivocal: dict[str, frozenset[str]]


class ResultWords(_Model, frozen=True, kw_only=True):
    """Result words by class; negative words are tried first ("not detected" holds "detected")."""

    positive: tuple[str, ...]
    negative: tuple[str, ...]
    equivocal: tuple[str, ...]


class ResultFlags(_Model, frozen=True, kw_only=True):
    """Observation.interpretation codes by class (HL7 v3 ObservationInterpretation)."""

    source: str
    positive: frozenset[str]
    negative: frozenset[str]
    equivocal: frozenset[str]


class LabInfections(_Model, frozen=True, kw_only=True):
    source: str
    as_of: str
    window_days: Sourced
    hbv_reactivation_rise_log10: Sourced
    history_days: Sourced
    method_words: tuple[str, ...]
    not_proof_words: tuple[str, ...]
    pathogens: dict[str, Pathogen]
    kinds: dict[str, str]
    result_values: ResultCodes
    result_words: ResultWords
    interpretation: ResultFlags


# --- pancreatitis (pancreatitis.json) ---------------------------------------------


class NamedAnalyte(_Model, frozen=True, kw_only=True):
    """A lab analyte read as the lab sent it (its own range decides), by LOINC code or by name."""

    label: str
    loinc: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()

    def _check(self) -> None:
        _check_loinc(self.label, self.loinc)


class DiagnosisSet(_Model, frozen=True, kw_only=True):
    label: str
    source: str
    as_of: str
    roots: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: tuple[str, ...] = ()
    exclude_names: tuple[str, ...] = ()
    codes: dict[str, dict[str, str]]
    code_sources: dict[str, str] = field(default_factory=dict)  # SNOMED code -> its source or UNVERIFIED
    removed_codes: dict[str, str] = field(default_factory=dict)  # codes taken out, and why (not read)

    def _check(self) -> None:
        _check_code_sources(self.label, self.codes.get("snomed", {}), self.code_sources)


class Pancreatitis(_Model, frozen=True, kw_only=True):
    source: str
    as_of: str
    generated_by: str
    lipase_uln_multiple: Sourced
    window_days: Sourced
    lipase: NamedAnalyte
    diagnoses: DiagnosisSet


# --- units -------------------------------------------------------------------


class UnitConversion(_Model, frozen=True, kw_only=True):
    factor: float
    offset: float = 0.0


class Dimension(_Model, frozen=True, kw_only=True):
    canonical: str
    units: dict[str, UnitConversion]

    def _check(self) -> None:
        c = self.units.get(self.canonical)
        if c is None or c.factor != 1 or c.offset != 0:
            raise ValueError(f"canonical unit {self.canonical!r} must convert with factor 1, offset 0")


class CountUnits(_Model, frozen=True, kw_only=True):
    note: str
    units: frozenset[str]


class TimeUnits(_Model, frozen=True, kw_only=True):
    """Units of time in days (fhirtypes/timeunits.py reads them): UCUM codes, and English words for them."""

    source: str
    note: str
    days: dict[str, float]  # UCUM unit of time (= FHIR UnitsOfTime code) -> days
    words: dict[str, str]  # lower-case word -> its UCUM code

    def _check(self) -> None:
        _require(all(v > 0 for v in self.days.values()), "time units hold positive numbers of days")
        unknown = sorted(w for w, code in self.words.items() if code not in self.days)
        _require(not unknown, f"time unit words name codes that are not units of time: {unknown}")
        _require(all(w == w.lower() for w in self.words), "time unit words are lower case")


class DosageTables(_Model, frozen=True, kw_only=True):
    """How a FHIR Timing reads as administrations per day (the dosage module)."""

    source: str
    note: str
    timing_code_systems: tuple[str, ...]  # where Timing.code's GTSAbbreviation codes come from
    timing_codes_per_day: dict[str, float]
    event_timing_note: str
    event_timing_per_day: dict[str, float]  # EventTiming (repeat.when) -> administrations a day
    days_of_week: tuple[str, ...]

    def _check(self) -> None:
        for table in (self.timing_codes_per_day, self.event_timing_per_day):
            _require(all(v > 0 for v in table.values()), "dosage tables hold positive numbers only")
        _require(len(self.days_of_week) == 7, "days_of_week lists the seven DaysOfWeek codes")


class Units(_Model, frozen=True, kw_only=True):
    source: str
    note: str
    dimensions: dict[str, Dimension]
    aliases: dict[str, str]
    dose_count_units: CountUnits
    time: TimeUnits
    dosage: DosageTables


# --- analytes ----------------------------------------------------------------


class Threshold(_Model, frozen=True, kw_only=True):
    direction: Literal["below", "above"]
    value: float
    source: str
    status: Literal["hold", "caution"] = "hold"
    severity: Severity = Severity.HIGH
    action: str | None = None
    unverified: bool = False
    alternatives: dict[str, str] = field(default_factory=dict)


class Plausible(_Model, frozen=True, kw_only=True):
    """The physiological range (canonical unit) outside which a value cannot be believed."""

    low: float
    high: float
    source: str


class Analyte(_Model, frozen=True, kw_only=True):
    label: str
    loinc: tuple[str, ...]
    dimension: str
    rule: RuleId
    threshold: Threshold | None = None
    plausible: Plausible | None = None
    # An Observation of this category whose value is in this analyte's dimension counts as this analyte even
    # under a code we do not list (a site's own or a newer LOINC code for a body temperature).
    by_unit_in_category: str | None = None
    snomed: tuple[str, ...] = ()  # SNOMED CT lab codes (primary-care systems code labs this way)
    # LOINC codes of this count as a percentage of the WBC (a differential): made absolute with the WBC of the
    # same specimen and time.
    percent_loinc: tuple[str, ...] = ()
    # Names that recognise the analyte in a code's display or text (a lab-local code; no LOINC code listed).
    names: tuple[str, ...] = ()
    # Measured now and then (metabolites): a result older than the result age limit is listed, not chased.
    only_when_current: bool = False
    code_sources: dict[str, str] = field(default_factory=dict)  # SNOMED code -> its source or UNVERIFIED

    def _check(self) -> None:
        _check_loinc(self.label, (*self.loinc, *self.percent_loinc))
        _check_code_sources(f"analyte {self.label!r}", self.snomed, self.code_sources)


class CodedAnalyte(_Model, frozen=True, kw_only=True):
    label: str
    loinc: tuple[str, ...]
    rule: RuleId
    answers: dict[str, str] = field(default_factory=dict)
    answer_names: dict[str, str] = field(default_factory=dict)
    gene: str | None = None  # the gene the code itself names (TPMT phenotype); else read from the result


class ActivityAnalyte(_Model, frozen=True, kw_only=True):
    """An enzyme activity reported as a number (TPMT, NUDT15): read against the lab's own range and flags."""

    label: str
    gene: str
    loinc: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    code_sources: dict[str, str] = field(default_factory=dict)  # LOINC code -> its source or UNVERIFIED

    def _check(self) -> None:
        _check_loinc(self.label, self.loinc)
        _check_code_sources(self.label, self.loinc, self.code_sources)


class ActivityAnalytes(_Model, frozen=True, kw_only=True):
    source: str
    tpmt_activity: ActivityAnalyte = field(name="tpmt-activity")
    nudt15_activity: ActivityAnalyte = field(name="nudt15-activity")
    poor_interpretations: frozenset[str]
    low_interpretations: frozenset[str]
    normal_interpretations: frozenset[str]
    poor_words: tuple[str, ...]
    low_words: tuple[str, ...]
    normal_words: tuple[str, ...]

    @property
    def by_key(self) -> dict[str, ActivityAnalyte]:
        return {"tpmt-activity": self.tpmt_activity, "nudt15-activity": self.nudt15_activity}


class PgxGene(_Model, frozen=True, kw_only=True):
    hgnc: str
    names: tuple[str, ...]
    normal_function_alleles: frozenset[str]
    no_function_alleles: frozenset[str]


class Pharmacogenomics(_Model, frozen=True, kw_only=True):
    source: str
    allele_note: str
    gene_studied_loinc: tuple[str, ...]
    genes: dict[str, PgxGene]


class MonitoringGroup(_Model, frozen=True, kw_only=True):
    label: str
    analytes: tuple[str, ...]
    rule: RuleId


class RequiredAnalytes(_Model, frozen=True, kw_only=True):
    note: str
    blood_counts: tuple[tuple[str, ...], ...] = field(name="blood-counts")
    liver: tuple[tuple[str, ...], ...]
    kidney: tuple[tuple[str, ...], ...]

    def for_rule(self, rule_id: RuleId) -> tuple[tuple[str, ...], ...]:
        by_rule = {"blood-counts": self.blood_counts, "liver": self.liver, "kidney": self.kidney}
        return by_rule.get(rule_id, ())


class Analytes(_Model, frozen=True, kw_only=True):
    source: str
    analytes: dict[str, Analyte]
    coded_analytes: dict[str, CodedAnalyte]
    monitoring_groups: dict[str, MonitoringGroup]
    required_analytes: RequiredAnalytes
    pharmacogenomics: Pharmacogenomics
    activity_analytes: ActivityAnalytes


# --- policy ------------------------------------------------------------------


class StatusClasses(_Model, frozen=True, kw_only=True):
    current: frozenset[str]
    recent: frozenset[str]
    never: frozenset[str]


class TherapyPolicy(_Model, frozen=True, kw_only=True):
    # MedicationRequest statuses (clinical-rules.md section 1).
    current_statuses: frozenset[str]
    recent_statuses: frozenset[str]
    never_statuses: frozenset[str]
    draft_counts_only_in_ordering_context: bool
    recent_window_days: Sourced
    # MedicationStatement / MedicationDispense / MedicationAdministration (section 8); any status in
    # none of the lists makes therapy uncertain.
    other_resources: dict[
        Literal["MedicationStatement", "MedicationDispense", "MedicationAdministration"], StatusClasses
    ]
    dispense_assumed_supply_days: Sourced
    administration_current_days: Sourced
    renewal_max_gap_days: Sourced  # an order starting this soon after another ended renews it


class VaccinationPolicy(_Model, frozen=True, kw_only=True):
    post_stop_live_wait_days: Sourced
    live_before_start_days: Sourced
    live_avoid_within_start_days: Sourced
    inactivated_before_start_days: Sourced
    planned_forecast_statuses: frozenset[str]
    order_active_statuses: frozenset[str]
    # Vaccine orders in these statuses are not planned; any other status (unknown, misspelt) counts as planned.
    order_inactive_statuses: frozenset[str]
    # Forecasts that say "no dose needed"; any other forecast (no code, text only) counts as planned.
    settled_forecast_statuses: frozenset[str]
    low_level_max_mg_per_kg_day: Sourced


class FebrileNeutropenia(_Model, frozen=True, kw_only=True):
    """Which neutrophil count and temperature make fever 'neutropenic' (a documented choice)."""

    choice: Literal["bsr-alarm", "idsa"]
    note: str
    anc_below: dict[Literal["bsr-alarm", "idsa"], Sourced]
    temperature_cel: dict[Literal["bsr-alarm", "idsa"], Sourced]
    sustained_temperature_cel: Sourced
    sustained_minutes: Sourced


class InfectionPolicy(_Model, frozen=True, kw_only=True):
    fever_threshold_cel: Sourced
    fever_window_hours: Sourced
    neutropenia_analyte: str
    neutropenia_window_days: Sourced
    febrile_neutropenia: FebrileNeutropenia


class TrendPolicy(_Model, frozen=True, kw_only=True):
    analytes: tuple[str, ...]
    results: int
    fall_percent: Sourced

    def _check(self) -> None:
        _require(self.results >= 2, "trend results must be at least 2")


class CreatininePolicy(_Model, frozen=True, kw_only=True):
    percent: Sourced
    months_window_days: int


class CkdEpi(_Model, frozen=True, kw_only=True):
    """CKD-EPI 2021 (race-free) creatinine equation coefficients, by sex."""

    source: str
    multiplier: float
    kappa_mg_dl: dict[Literal["female", "male"], float]
    alpha: dict[Literal["female", "male"], float]
    exponent_above_kappa: float
    age_base: float
    female_factor: float
    min_age_years: int
    umol_per_mg_dl: float


class LabsPolicy(_Model, frozen=True, kw_only=True):
    result_max_age_days: Sourced
    future_skew_minutes: Sourced
    egfr_from_creatinine: CkdEpi
    trend: TrendPolicy
    creatinine_rise: CreatininePolicy


class SchedulePhase(_Model, frozen=True, kw_only=True):
    until_day: int | None
    interval_days: int

    def _check(self) -> None:
        _require(self.interval_days > 0, "interval_days must be greater than 0")


class Schedule(_Model, frozen=True, kw_only=True):
    source: str
    phases: tuple[SchedulePhase, ...]

    def _check(self) -> None:
        if not self.phases or self.phases[-1].until_day is not None:
            raise ValueError("the last phase of a schedule must have until_day null")


class MonitoringPolicy(_Model, frozen=True, kw_only=True):
    default_schedule: str
    grace_days: Sourced
    schedules: dict[str, Schedule]

    def _check(self) -> None:
        if self.default_schedule not in self.schedules:
            raise ValueError(f"default_schedule {self.default_schedule!r} is not a schedule")


class DosePolicy(_Model, frozen=True, kw_only=True):
    max_mg_per_kg_day: Sourced
    label_ra_max_mg_per_kg_day: Sourced
    weight_max_age_days: Sourced


class Recommendation(_Model, frozen=True, kw_only=True):
    status: Status
    severity: Severity
    text: str


class TpmtPolicy(_Model, frozen=True, kw_only=True):
    source: str
    recommendations: dict[Literal["normal", "intermediate", "poor"], Recommendation]
    nudt15: dict[Literal["normal", "intermediate", "poor"], Recommendation]
    both_intermediate: Recommendation
    genotype_unread: Recommendation
    no_result: Recommendation


class Policy(_Model, frozen=True, kw_only=True):
    therapy: TherapyPolicy
    vaccination: VaccinationPolicy
    infection: InfectionPolicy
    labs: LabsPolicy
    monitoring: MonitoringPolicy
    dose: DosePolicy
    tpmt: TpmtPolicy


# --- display -------------------------------------------------------------------


class DisplayUnit(_Model, frozen=True, kw_only=True):
    text: str  # what a clinician reads: "×10⁹/L", "°C"
    decimals: int  # the clinically meaningful digits

    def _check(self) -> None:
        _require(bool(self.text), "a display unit's text must not be empty")
        _require(0 <= self.decimals <= 3, "decimals must be between 0 and 3")


class Citation(_Model, frozen=True, kw_only=True):
    contains: str  # a fragment of a mappings `source`
    cite: str  # the source as a clinician cites it

    def _check(self) -> None:
        _require(bool(self.contains) and bool(self.cite), "a citation needs both contains and cite")


class SystemName(_Model, frozen=True, kw_only=True):
    system: str  # a systems.json name: "loinc"
    name: str  # as clinicians write it: "LOINC"

    def _check(self) -> None:
        _require(self.system in _SYSTEM_NAMES, f"display code system {self.system!r} is not a systems.json name")


class Display(_Model, frozen=True, kw_only=True):
    source: str
    note: str
    units: dict[str, DisplayUnit]
    # Code systems as clinicians name them ("LOINC"): a code with no words is named by its system and code.
    code_systems: tuple[SystemName, ...]
    citations: tuple[Citation, ...]

    def system_name(self, system: str | None) -> str | None:
        """'LOINC' for 'loinc' (a systems.json name)."""
        return next((s.name for s in self.code_systems if s.system == system), None)


# --- meaning: whose, whether, which script (issue 24) ------------------------------------


class NegationSet(ValueSetInfo, frozen=True, kw_only=True):
    """Values that say a finding is absent (codes by system name, plus answer words)."""

    note: str
    codes: dict[str, frozenset[str]]
    words: frozenset[str]


class ScriptNames(ValueSetInfo, frozen=True, kw_only=True):
    """Names in non-Latin scripts, each read as the English term the recognisers already know."""

    note: str
    covered_scripts: tuple[str, ...]
    terms: dict[str, tuple[str, ...]]

    def _check(self) -> None:
        for term, names in self.terms.items():
            _require(bool(names), f"script term {term!r} lists no names")
            _require(term.isascii(), f"script term {term!r} must be the English (ASCII) term")


class CodedContext(_Model, frozen=True, kw_only=True):
    """A clinical context recognised by code (per system name) or by name."""

    note: str
    codes: dict[str, frozenset[str]]
    names: tuple[str, ...]


class UnreliableWeight(_Model, frozen=True, kw_only=True):
    note: str
    method_codes: dict[str, frozenset[str]]
    words: tuple[str, ...]


class TransfusionContext(CodedContext, frozen=True, kw_only=True):
    window_days: Sourced


class DialysisContext(CodedContext, frozen=True, kw_only=True):
    # How recent a dialysis Procedure or Encounter must be to show the patient is on dialysis now.
    recent_days: Sourced


class ContextSets(ValueSetInfo, frozen=True, kw_only=True):
    autoimmune_hepatitis: CodedContext
    dialysis: DialysisContext
    unreliable_weight: UnreliableWeight
    tpmt_family_history: CodedContext
    transfusion: TransfusionContext


class Meaning(ValueSetInfo, frozen=True, kw_only=True):
    negation: NegationSet
    scripts: ScriptNames
    context: ContextSets


# --- the whole -----------------------------------------------------------------


class Manifest(_Model, frozen=True, kw_only=True):
    version: str
    title: str
    review_status: str
    files: tuple[str, ...]


class Mappings(_Model, frozen=True, kw_only=True, dict=True):
    """The validated knowledge, and (in its __dict__, never pickled) what is derived from it."""

    version: str
    systems: Systems
    medications: Medications
    vaccines: Vaccines
    conditions: Conditions
    infections: Infections
    units: Units
    analytes: Analytes
    policy: Policy
    display: Display
    signs: Signs
    lab_infections: LabInfections
    pancreatitis: Pancreatitis
    meaning: Meaning

    def derived(self, build: Callable[[Mappings], _T]) -> _T:
        """What `build` makes of these mappings (an index, compiled patterns), built on first use and kept with
        them: the one owner of every derived index, so each is built once per Mappings object, lives as long as
        it, and is never rebuilt per patient. `build` is the key: a module-level function, never a lambda."""
        store: dict[Callable[[Mappings], object], object] = self.__dict__.setdefault("_derived", {})
        try:
            return cast(_T, store[build])
        except KeyError:
            found = store[build] = build(self)  # (two threads may both build it: the same value, one kept)
            return found

    def _check(self) -> None:
        for name, analyte in self.analytes.analytes.items():
            if analyte.dimension not in self.units.dimensions:
                raise ValueError(f"analyte {name!r} names unknown dimension {analyte.dimension!r}")
        known = set(self.analytes.analytes)
        for group in self.analytes.monitoring_groups.values():
            if set(group.analytes) - known:
                raise ValueError(f"monitoring group names unknown analytes {set(group.analytes) - known}")
        required = self.analytes.required_analytes
        for rule_id in ("blood-counts", "liver", "kidney"):
            for alternatives in required.for_rule(rule_id):
                for key in alternatives:
                    if key not in known or self.analytes.analytes[key].rule != rule_id:
                        raise ValueError(f"required analyte {key!r} is not a {rule_id} analyte")
        if set(self.policy.labs.trend.analytes) - known:
            raise ValueError("trend names unknown analytes")
        if self.policy.vaccination.post_stop_live_wait_days.value > self.policy.therapy.recent_window_days.value:
            # Stopped orders older than the recent window are not seen by the rules at all.
            raise ValueError("post_stop_live_wait_days must not exceed therapy.recent_window_days")
        unknown_units = sorted(set(self.signs.duration_unit_words) - set(self.units.time.days))
        _require(not unknown_units, f"signs.json duration_unit_words names units of time not in units.json: "
                                    f"{unknown_units}")
        for where, table in self._keyed_by_system():
            unknown = sorted(set(table) - _SYSTEM_NAMES)
            _require(not unknown, f"{where} keyed by unknown system name(s) {unknown}")
        if self.policy.infection.neutropenia_analyte not in known:
            raise ValueError("neutropenia_analyte is not an analyte")
        for alias, target in self.units.aliases.items():
            if not any(target in d.units for d in self.units.dimensions.values()):
                raise ValueError(f"unit alias {alias!r} points at unknown unit {target!r}")
        for name, dimension in self.units.dimensions.items():
            shown = set(dimension.units) - set(self.display.units)
            if shown:
                raise ValueError(f"display.json has no display for {name} unit(s) {sorted(shown)}")

    def _keyed_by_system(self) -> Iterator[tuple[str, Mapping[str, object]]]:
        """Every code table keyed by the system names of systems.json (one check covers them all)."""
        for kind, vs in self.infections.value_sets.items():
            yield f"infection value set {kind!r}", vs.codes
        for sign in self.signs.signs.values():
            yield f"sign {sign.label!r}", sign.codes
        answers = self.signs.answers
        yield "sign answers (present)", answers.present
        yield "sign answers (absent)", answers.absent
        results = self.lab_infections.result_values
        for name, table in (("positive", results.positive), ("negative", results.negative),
                            ("equivocal", results.equivocal)):
            yield f"lab infection result values ({name})", table
        prophylaxis = self.medications.anti_infectives.prophylaxis
        if prophylaxis is not None:
            yield "prophylaxis codes", prophylaxis.codes
            yield "prophylaxis code prefixes", prophylaxis.code_prefixes

    def with_monitoring_schedule(self, name: str) -> Mappings:
        """A copy that uses another of the configured monitoring schedules."""
        if name not in self.policy.monitoring.schedules:
            raise MappingsError(
                f"unknown monitoring schedule {name!r}; "
                f"choose one of {sorted(self.policy.monitoring.schedules)}"
            )
        monitoring = replace(self.policy.monitoring, default_schedule=name)
        return replace(self, policy=replace(self.policy, monitoring=monitoring))


_FILE_FIELDS = {
    "systems.json": "systems",
    "medications.json": "medications",
    "vaccines.json": "vaccines",
    "conditions.json": "conditions",
    "infections.json": "infections",
    "units.json": "units",
    "analytes.json": "analytes",
    "policy.json": "policy",
    "display.json": "display",
    "signs.json": "signs",
    "lab_infections.json": "lab_infections",
    "pancreatitis.json": "pancreatitis",
    "meaning.json": "meaning",
}


def default_mappings_dir(settings: Settings | None = None) -> Path:
    """AZAGUARD_MAPPINGS, else the repository's mappings/, else the copy inside the wheel."""
    override = current(settings).mappings_dir
    if override:
        return override
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "mappings", here / "_mappings"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise MappingsError("no mappings folder found (set AZAGUARD_MAPPINGS)")


def load_mappings_from(directory: Path, *, cache_dir: Path | None = None) -> Mappings:
    """Read and validate every mappings file in `directory`.

    With `cache_dir` (the CLI: validating costs ~15 ms of every run), the validated Mappings are
    also kept there with every byte they were validated from (each file, this module's source, the
    pydantic and Python versions): any change to the content misses and is validated again; an
    unreadable copy is ignored. (A pickle: whoever can write the user's cache
    can already run code as the user.)"""
    if cache_dir is not None:
        try:
            contents = {name: (directory / name).read_bytes() for name in ("manifest.json", *_FILE_FIELDS)}
        except OSError:
            contents = None  # the plain path below says what is wrong
        if contents is not None:
            return _cached(directory, contents, cache_dir)
    return _validated(directory, lambda name: _read_json(directory / name))


def _validated(directory: Path, read: Callable[[str], object]) -> Mappings:
    try:
        manifest = _validate(Manifest, read("manifest.json"))
        if set(manifest.files) != set(_FILE_FIELDS):
            raise MappingsError(f"manifest lists {sorted(manifest.files)}, expected {sorted(_FILE_FIELDS)}")
        parts = {field: read(name) for name, field in _FILE_FIELDS.items()}
        return _validate(Mappings, {"version": manifest.version, **parts})
    except MappingsError:
        raise
    except (OSError, ValueError) as exc:  # pydantic.ValidationError is a ValueError
        raise MappingsError(f"invalid mappings in {directory}: {exc}") from exc


# The modules whose code decides what validates: this one, and the value types it reads from findings.py
# (a renamed RuleId must fail validation, not load from an old copy).
_SCHEMA_SOURCES = ("mappings.py", "findings.py")


def _cached(directory: Path, contents: dict[str, bytes], cache_dir: Path) -> Mappings:
    # What the copy was validated from, compared byte for byte when it is read: every file, the schema's
    # source, the pydantic and Python versions. (A byte comparison, not a digest: no hash library to import
    # on the CLI's path, and no collision to reason about.)
    here = Path(__file__).parent
    schema = {name: (here / name).read_bytes() for name in _SCHEMA_SOURCES}
    source = b"".join(
        f"\0{name}\0{len(data)}\0".encode() + data
        for name, data in (*schema.items(), ("validator", _validator_version()), ("python", sys.version.encode()),
                           *contents.items())
    )
    # One copy per mappings folder and installation, named by where they are (so two checkouts used in turn
    # keep a copy each instead of replacing each other's), replaced whenever the content changes.
    where = zlib.crc32(f"{directory.resolve()}\0{Path(__file__).resolve()}".encode())
    path = cache_dir / f"mappings-{where:08x}.pickle"
    found = _read_cached(path, source)
    if found is not None:
        return found
    mappings = _validated(directory, lambda name: json.loads(contents[name].decode("utf-8")))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps((source, mappings), protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:
        pass  # no cache: the next run validates again
    return mappings


def _read_cached(path: Path, source: bytes) -> Mappings | None:
    try:
        kept_source, found = pickle.loads(path.read_bytes())  # noqa: S301 - our own cache, see load_mappings_from
    except Exception:  # missing, truncated or from another version: validate again
        return None
    return found if kept_source == source and isinstance(found, Mappings) else None


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _validate(kind: type[_T], data: object) -> _T:
    """`data` validated into `kind` by pydantic (imported here only: a cache hit never needs it)."""
    from pydantic import TypeAdapter

    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return cast(_T, adapter.validate_python(data))


def _validator_version() -> bytes:
    """pydantic's version file, read without importing pydantic (a cache hit never imports it)."""
    spec = find_spec("pydantic")
    locations = spec.submodule_search_locations if spec else None
    if not locations:
        return b"no pydantic"
    try:
        return (Path(next(iter(locations))) / "version.py").read_bytes()
    except OSError:
        return b"unreadable pydantic version"


@cache
def load_mappings() -> Mappings:
    """The default mappings, loaded once per process."""
    return load_mappings_from(default_mappings_dir())


def _read_json(path: Path) -> object:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)
