"""The clinical knowledge as data: load and validate mappings/*.json once.

Every code set, threshold and window the rules use lives in mappings/; this
module gives it types. A malformed mappings file fails loudly at load time,
never at the bedside.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from datetime import date
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from azaguard.findings import RuleId, Severity, Status

if TYPE_CHECKING:
    from pydantic import TypeAdapter


class MappingsError(Exception):
    """The mappings folder is missing or does not validate."""


# The types are frozen stdlib dataclasses; pydantic validates the JSON into them (`_validated`) and is
# imported only then. A check that reads the validated Mappings from the CLI's cache never imports
# pydantic at all (~80 ms of a ~200 ms process). Checks pydantic cannot express as types are in each
# class's __post_init__, which pydantic runs (a ValueError there is a validation error).
_T = TypeVar("_T")
_FORBID_EXTRA: dict[str, Any] = {"extra": "forbid"}


class _Model:
    __pydantic_config__ = _FORBID_EXTRA


def _alias(**aliases: str) -> dict[str, Any]:
    """Config for a class whose JSON spells some field names with hyphens."""
    return {**_FORBID_EXTRA, "alias_generator": lambda name: aliases.get(name, name), "validate_by_name": True}


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise ValueError(message)


@dataclass(frozen=True, kw_only=True)
class Sourced(_Model):
    """A number with where it comes from (and whether that source was verified)."""

    value: float
    source: str
    unverified: bool = False


# --- systems -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Systems(_Model):
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
    condition_clinical: tuple[str, ...]
    condition_ver_status: tuple[str, ...]

    __pydantic_config__ = _alias(condition_clinical="condition-clinical", condition_ver_status="condition-ver-status")

    def name_of(self, uri: str | None) -> str | None:
        """Short name ('rxnorm', 'loinc', ...) for a system URI, or None if unknown."""
        if uri is None:
            return None
        for name, uris in vars(self).items():
            if name not in _STATUS_SYSTEMS and uri in uris:
                return name
        return None


_STATUS_SYSTEMS = frozenset({"condition_clinical", "condition_ver_status"})
_SYSTEM_NAMES = frozenset(f.name for f in fields(Systems))


# --- medications -------------------------------------------------------------

# Codes of a value set keyed by the system names of systems.json (the coverage report reads this shape).
DrugSystem = Literal["rxnorm", "atc", "snomed", "dmd", "ndc"]
DrugCodes = dict[DrugSystem, frozenset[str]]


@dataclass(frozen=True, kw_only=True)
class ValueSetInfo(_Model):
    """Where a value set comes from and when it was last checked against it."""

    source: str
    as_of: date


@dataclass(frozen=True, kw_only=True)
class AzathioprineSet(ValueSetInfo):
    codes: DrugCodes
    names: tuple[str, ...]  # INN/BAN/USAN and European spellings
    brands: tuple[str, ...]
    strength_mg_by_rxnorm: dict[str, float]
    ndc_note: str = ""  # how the NDC codes are keyed and how sure they are


@dataclass(frozen=True, kw_only=True)
class AntiInfectiveIngredient(_Model):
    name: str
    atc_class: Literal["J01", "J02", "J04", "J05"]
    codes: DrugCodes
    synonyms: tuple[str, ...] = ()
    brands: tuple[str, ...] = ()
    prophylaxis_possible: bool = False

    @property
    def rxnorm(self) -> str | None:
        """The first RxNorm ingredient code (None until one is recorded)."""
        codes = sorted(self.codes.get("rxnorm", frozenset()))
        return codes[0] if codes else None

    def __post_init__(self) -> None:
        # Metronidazole also carries P01AB01; the other codes must sit in the ingredient's class.
        if not any(code.startswith(self.atc_class) for code in self.codes.get("atc", ())):
            raise ValueError(f"anti-infective {self.name!r} has no ATC code in {self.atc_class}")


@dataclass(frozen=True, kw_only=True)
class AntiInfectives(ValueSetInfo):
    note: str
    atc_prefixes: tuple[str, ...]
    prophylaxis_false_positive_note: str
    # A product named with one of these (cream, eye drops, ...) is not systemic: not an infection hold.
    non_systemic_form_words: tuple[str, ...]
    # European spellings of INN endings (French -ine, Spanish/Italian -ina, German -ol ...): each ingredient
    # name and synonym also answers to these variants. Pairs of (English ending, variant ending).
    spelling_variants: tuple[tuple[str, str], ...] = ()
    spelling_variants_source: str = ""
    ingredients: tuple[AntiInfectiveIngredient, ...]

    def __post_init__(self) -> None:
        seen = [i.name for i in self.ingredients]
        dupes = {n for n in seen if seen.count(n) > 1}
        if dupes:
            raise ValueError(f"anti-infective ingredients listed twice: {sorted(dupes)}")


@dataclass(frozen=True, kw_only=True)
class Interaction(_Model):
    id: str
    names: tuple[str, ...]
    brands: tuple[str, ...] = ()
    codes: DrugCodes
    atc_prefixes: tuple[str, ...] = ()
    status: Literal["hold", "caution"]
    severity: Severity
    message: str
    source: str
    as_of: date
    dose_reduction_fraction_max: float | None = None


@dataclass(frozen=True, kw_only=True)
class Medications(ValueSetInfo):
    azathioprine: AzathioprineSet
    anti_infectives: AntiInfectives
    interactions: tuple[Interaction, ...]


# --- vaccines ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class VaccineBrands(ValueSetInfo):
    cvx_by_brand: dict[str, str]


@dataclass(frozen=True, kw_only=True)
class VaccineNamePatterns(_Model):
    live: tuple[str, ...]
    not_live_overrides: tuple[str, ...]
    not_live: tuple[str, ...]
    vaccine_words: tuple[str, ...]
    # Laboratory tests and immune globulins named like a vaccine ("measles IgG"): not a vaccine order.
    not_vaccine: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class VaccineCrosswalks(ValueSetInfo):
    """Other systems' codes to CVX: NDC (labeler-product, 5-4 digits), CPT, SNOMED, RxNorm."""

    ndc: dict[str, str]
    cpt: dict[str, str]
    snomed: dict[str, str]
    rxnorm: dict[str, str]

    def __post_init__(self) -> None:
        for code in self.ndc:
            if not re.fullmatch(r"\d{5}-\d{4}", code):
                raise ValueError(f"NDC {code!r} must be labeler-product in 5-4 digits")


@dataclass(frozen=True, kw_only=True)
class Vaccines(ValueSetInfo):
    live: dict[str, str]
    not_live: dict[str, str]
    ambiguous: dict[str, str]
    unknown_code_policy: Literal["ambiguous"]
    brands: VaccineBrands
    name_patterns: VaccineNamePatterns
    name_policy: str
    crosswalks: VaccineCrosswalks

    def __post_init__(self) -> None:
        for a, b in (("live", "not_live"), ("live", "ambiguous"), ("not_live", "ambiguous")):
            both = set(getattr(self, a)) & set(getattr(self, b))
            if both:
                raise ValueError(f"CVX codes in both {a} and {b}: {sorted(both)}")
        patterns = self.name_patterns
        all_patterns = (*patterns.live, *patterns.not_live_overrides, *patterns.not_live, *patterns.vaccine_words,
                        *patterns.not_vaccine)
        for pattern in all_patterns:
            # With the flags terminology/vaccines.py uses: the re module's cache then serves its compile.
            re.compile(pattern, re.IGNORECASE)
        known = set(self.live) | set(self.not_live) | set(self.ambiguous)
        pointed = {
            *self.brands.cvx_by_brand.values(),
            *self.crosswalks.ndc.values(),
            *self.crosswalks.cpt.values(),
            *self.crosswalks.snomed.values(),
            *self.crosswalks.rxnorm.values(),
        }
        if pointed - known:
            raise ValueError(f"brands/crosswalks point at CVX codes in no list: {sorted(pointed - known)}")


# --- conditions --------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Conditions(_Model):
    source: str
    active_clinical_statuses: frozenset[str]
    # Statuses that say the condition is over; any other (or none) is judged by the condition's date.
    ended_clinical_statuses: frozenset[str]
    excluded_verification_statuses: frozenset[str]


InfectionKind = Literal["acute", "fever", "neutropenia", "context", "not_infection"]


@dataclass(frozen=True, kw_only=True)
class InfectionValueSet(_Model):
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


@dataclass(frozen=True, kw_only=True)
class Infections(_Model):
    source: str
    as_of: str
    generated_by: str
    precedence_note: str
    encounter_diagnosis_window_days: Sourced
    value_sets: dict[InfectionKind, InfectionValueSet]

    def __post_init__(self) -> None:
        missing = {"acute", "fever", "neutropenia", "context", "not_infection"} - set(self.value_sets)
        if missing:
            raise ValueError(f"infection value sets missing: {sorted(missing)}")


# --- units -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class UnitConversion(_Model):
    factor: float
    offset: float = 0.0


@dataclass(frozen=True, kw_only=True)
class Dimension(_Model):
    canonical: str
    units: dict[str, UnitConversion]

    def __post_init__(self) -> None:
        c = self.units.get(self.canonical)
        if c is None or c.factor != 1 or c.offset != 0:
            raise ValueError(f"canonical unit {self.canonical!r} must convert with factor 1, offset 0")


@dataclass(frozen=True, kw_only=True)
class CountUnits(_Model):
    note: str
    units: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class Units(_Model):
    source: str
    note: str
    dimensions: dict[str, Dimension]
    aliases: dict[str, str]
    dose_count_units: CountUnits


# --- analytes ----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Threshold(_Model):
    direction: Literal["below", "above"]
    value: float
    source: str
    status: Literal["hold", "caution"] = "hold"
    severity: Severity = Severity.HIGH
    action: str | None = None
    unverified: bool = False
    alternatives: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Plausible(_Model):
    """The physiological range (canonical unit) outside which a value cannot be believed."""

    low: float
    high: float
    source: str


@dataclass(frozen=True, kw_only=True)
class Analyte(_Model):
    label: str
    loinc: tuple[str, ...]
    dimension: str
    rule: RuleId
    threshold: Threshold | None = None
    plausible: Plausible | None = None
    # An Observation of this category whose value is in this analyte's dimension counts as this analyte even
    # under a code we do not list (a site's own or a newer LOINC code for a body temperature).
    by_unit_in_category: str | None = None


@dataclass(frozen=True, kw_only=True)
class CodedAnalyte(_Model):
    label: str
    loinc: tuple[str, ...]
    rule: RuleId
    answers: dict[str, str] = field(default_factory=dict)
    answer_names: dict[str, str] = field(default_factory=dict)
    gene: str | None = None  # the gene the code itself names (TPMT phenotype); else read from the result


@dataclass(frozen=True, kw_only=True)
class PgxGene(_Model):
    hgnc: str
    names: tuple[str, ...]
    normal_function_alleles: frozenset[str]
    no_function_alleles: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class Pharmacogenomics(_Model):
    source: str
    allele_note: str
    gene_studied_loinc: tuple[str, ...]
    genes: dict[str, PgxGene]


@dataclass(frozen=True, kw_only=True)
class MonitoringGroup(_Model):
    label: str
    analytes: tuple[str, ...]
    rule: RuleId


@dataclass(frozen=True, kw_only=True)
class RequiredAnalytes(_Model):
    note: str
    blood_counts: tuple[tuple[str, ...], ...]
    liver: tuple[tuple[str, ...], ...]
    kidney: tuple[tuple[str, ...], ...]

    __pydantic_config__ = _alias(blood_counts="blood-counts")

    def for_rule(self, rule_id: RuleId) -> tuple[tuple[str, ...], ...]:
        by_rule = {"blood-counts": self.blood_counts, "liver": self.liver, "kidney": self.kidney}
        return by_rule.get(rule_id, ())


@dataclass(frozen=True, kw_only=True)
class Analytes(_Model):
    source: str
    analytes: dict[str, Analyte]
    coded_analytes: dict[str, CodedAnalyte]
    monitoring_groups: dict[str, MonitoringGroup]
    required_analytes: RequiredAnalytes
    pharmacogenomics: Pharmacogenomics


# --- policy ------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class StatusClasses(_Model):
    current: frozenset[str]
    recent: frozenset[str]
    never: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class TherapyPolicy(_Model):
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


@dataclass(frozen=True, kw_only=True)
class VaccinationPolicy(_Model):
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


@dataclass(frozen=True, kw_only=True)
class FebrileNeutropenia(_Model):
    """Which neutrophil count and temperature make fever 'neutropenic' (a documented choice)."""

    choice: Literal["bsr-alarm", "idsa"]
    note: str
    anc_below: dict[Literal["bsr-alarm", "idsa"], Sourced]
    temperature_cel: dict[Literal["bsr-alarm", "idsa"], Sourced]
    sustained_temperature_cel: Sourced
    sustained_minutes: Sourced


@dataclass(frozen=True, kw_only=True)
class InfectionPolicy(_Model):
    fever_threshold_cel: Sourced
    fever_window_hours: Sourced
    neutropenia_analyte: str
    neutropenia_window_days: Sourced
    febrile_neutropenia: FebrileNeutropenia


@dataclass(frozen=True, kw_only=True)
class TrendPolicy(_Model):
    analytes: tuple[str, ...]
    results: int
    fall_percent: Sourced

    def __post_init__(self) -> None:
        _check(self.results >= 2, "trend results must be at least 2")


@dataclass(frozen=True, kw_only=True)
class CreatininePolicy(_Model):
    percent: Sourced
    months_window_days: int


@dataclass(frozen=True, kw_only=True)
class CkdEpi(_Model):
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


@dataclass(frozen=True, kw_only=True)
class LabsPolicy(_Model):
    result_max_age_days: Sourced
    future_skew_minutes: Sourced
    egfr_from_creatinine: CkdEpi
    trend: TrendPolicy
    creatinine_rise: CreatininePolicy


@dataclass(frozen=True, kw_only=True)
class SchedulePhase(_Model):
    until_day: int | None
    interval_days: int

    def __post_init__(self) -> None:
        _check(self.interval_days > 0, "interval_days must be greater than 0")


@dataclass(frozen=True, kw_only=True)
class Schedule(_Model):
    source: str
    phases: tuple[SchedulePhase, ...]

    def __post_init__(self) -> None:
        if not self.phases or self.phases[-1].until_day is not None:
            raise ValueError("the last phase of a schedule must have until_day null")


@dataclass(frozen=True, kw_only=True)
class MonitoringPolicy(_Model):
    default_schedule: str
    grace_days: Sourced
    schedules: dict[str, Schedule]

    def __post_init__(self) -> None:
        if self.default_schedule not in self.schedules:
            raise ValueError(f"default_schedule {self.default_schedule!r} is not a schedule")


@dataclass(frozen=True, kw_only=True)
class DosePolicy(_Model):
    max_mg_per_kg_day: Sourced
    label_ra_max_mg_per_kg_day: Sourced
    weight_max_age_days: Sourced


@dataclass(frozen=True, kw_only=True)
class Recommendation(_Model):
    status: Status
    severity: Severity
    text: str


@dataclass(frozen=True, kw_only=True)
class TpmtPolicy(_Model):
    source: str
    recommendations: dict[Literal["normal", "intermediate", "poor"], Recommendation]
    nudt15: dict[Literal["normal", "intermediate", "poor"], Recommendation]
    both_intermediate: Recommendation
    genotype_unread: Recommendation
    no_result: Recommendation


@dataclass(frozen=True, kw_only=True)
class Policy(_Model):
    therapy: TherapyPolicy
    vaccination: VaccinationPolicy
    infection: InfectionPolicy
    labs: LabsPolicy
    monitoring: MonitoringPolicy
    dose: DosePolicy
    tpmt: TpmtPolicy


# --- display -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class DisplayUnit(_Model):
    text: str  # what a clinician reads: "×10⁹/L", "°C"
    decimals: int  # the clinically meaningful digits

    def __post_init__(self) -> None:
        _check(bool(self.text), "a display unit's text must not be empty")
        _check(0 <= self.decimals <= 3, "decimals must be between 0 and 3")


@dataclass(frozen=True, kw_only=True)
class Citation(_Model):
    contains: str  # a fragment of a mappings `source`
    cite: str  # the source as a clinician cites it

    def __post_init__(self) -> None:
        _check(bool(self.contains) and bool(self.cite), "a citation needs both contains and cite")


@dataclass(frozen=True, kw_only=True)
class RuleDisplay(_Model):
    label: str
    checks: str  # object of "Cannot check …"


@dataclass(frozen=True, kw_only=True)
class Display(_Model):
    source: str
    note: str
    units: dict[str, DisplayUnit]
    citations: tuple[Citation, ...]
    rules: dict[RuleId, RuleDisplay]

    def __post_init__(self) -> None:
        from azaguard.findings import RULE_IDS

        if set(RULE_IDS) - set(self.rules):
            raise ValueError(f"display.json names no label for rule(s) {sorted(set(RULE_IDS) - set(self.rules))}")


# --- the whole -----------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Manifest(_Model):
    version: str
    title: str
    review_status: str
    files: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Mappings(_Model):
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

    def __post_init__(self) -> None:
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
        for name in (n for vs in self.infections.value_sets.values() for n in vs.codes):
            if name not in _SYSTEM_NAMES:
                raise ValueError(f"infection value set keyed by unknown system name {name!r}")
        if self.policy.infection.neutropenia_analyte not in known:
            raise ValueError("neutropenia_analyte is not an analyte")
        for alias, target in self.units.aliases.items():
            if not any(target in d.units for d in self.units.dimensions.values()):
                raise ValueError(f"unit alias {alias!r} points at unknown unit {target!r}")
        for name, dimension in self.units.dimensions.items():
            shown = set(dimension.units) - set(self.display.units)
            if shown:
                raise ValueError(f"display.json has no display for {name} unit(s) {sorted(shown)}")

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
}


def default_mappings_dir() -> Path:
    """AZAGUARD_MAPPINGS, else the repository's mappings/, else the copy inside the wheel."""
    override = os.environ.get("AZAGUARD_MAPPINGS")
    if override:
        return Path(override)
    here = Path(__file__).resolve().parent
    for candidate in (here.parent.parent / "mappings", here / "_mappings"):
        if (candidate / "manifest.json").is_file():
            return candidate
    raise MappingsError("no mappings folder found (set AZAGUARD_MAPPINGS)")


def load_mappings_from(directory: Path, *, cache_dir: Path | None = None) -> Mappings:
    """Read and validate every mappings file in `directory`.

    With `cache_dir` (the CLI: validating costs ~15 ms of every run), the validated Mappings are
    also kept there, named by a hash of every byte they were validated from (each file, this
    module's source, the pydantic and Python versions): any change to the content misses and is
    validated again; an unreadable copy is ignored. (A pickle: whoever can write the user's cache
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


def _cached(directory: Path, contents: dict[str, bytes], cache_dir: Path) -> Mappings:
    digest = hashlib.sha256(Path(__file__).read_bytes())
    digest.update(_validator_version() + sys.version.encode())
    for name, data in contents.items():
        digest.update(f"\0{name}\0{len(data)}\0".encode() + data)
    path = cache_dir / f"mappings-{digest.hexdigest()}.pickle"
    found = _read_cached(path)
    if found is not None:
        return found
    mappings = _validated(directory, lambda name: json.loads(contents[name].decode("utf-8")))
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for old in cache_dir.glob("mappings-*.pickle"):  # one copy: the content last validated
            old.unlink(missing_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(pickle.dumps(mappings, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, path)
    except OSError:
        pass  # no cache: the next run validates again
    return mappings


def _read_cached(path: Path) -> Mappings | None:
    try:
        found = pickle.loads(path.read_bytes())  # noqa: S301 - our own cache, see load_mappings_from
    except Exception:  # missing, truncated or from another version: validate again
        return None
    return found if isinstance(found, Mappings) else None


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
