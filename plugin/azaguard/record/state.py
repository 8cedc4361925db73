"""The record builder's state, shared by the readers of each kind of resource."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from azaguard import fhirshapes as fs
from azaguard.dosage import Dosage
from azaguard.errors import FhirDataError
from azaguard.fhirtypes.raw import RawObject
from azaguard.mappings import Mappings
from azaguard.record.model import (
    Concept,
    ConditionEntry,
    Dropped,
    Measurement,
    MedicineUse,
    ParseProblem,
    PatientInfo,
    SignEntry,
    VaccineEvent,
)
from azaguard.record.reading import concept_of, raw_codes, ref_of, type_of
from azaguard.resources import ResourceSet
from azaguard.terminology import DrugMatch, drug_ingredients, is_vaccine_concept
from azaguard.terminology.labtests import named_anything


class Indexes:
    """The mappings' codes as the builder looks them up: built once per Mappings (Mappings.derived)."""

    def __init__(self, mappings: Mappings) -> None:
        analytes = mappings.analytes
        self.loinc_to_analyte: dict[str, str] = {}
        for key, a in analytes.analytes.items():
            for code in a.loinc:
                self.loinc_to_analyte[code] = key
        for key, ca in analytes.coded_analytes.items():
            for code in ca.loinc:
                self.loinc_to_analyte[code] = key
        # Codes read beyond the listed LOINC codes: SNOMED-coded labs, differentials (% of the WBC), symptom
        # and sign codes, pathogens, enzyme activities. Anything else is read only if a name says so.
        self.snomed_to_analyte = {c: k for k, a in analytes.analytes.items() for c in a.snomed}
        self.percent_to_analyte = {c: k for k, a in analytes.analytes.items() for c in a.percent_loinc}
        signs = mappings.signs
        self.other_codes = frozenset(
            set(self.snomed_to_analyte) | set(self.percent_to_analyte) | signs.observation_codes.loinc
            | signs.observation_codes.snomed
            | {c for sign in signs.signs.values() for c in sign.codes.get("snomed", {})}
            | {c for p in mappings.lab_infections.pathogens.values() for c in p.loinc}
            | {c for a in analytes.activity_analytes.by_key.values() for c in a.loinc}
            | set(mappings.pancreatitis.lipase.loinc)
        )
        self.named = named_anything(mappings)
        self.snomed_systems = frozenset(mappings.systems.snomed)
        self.loinc_systems = frozenset(mappings.systems.loinc)
        # Diagnosis systems: a sign is matched there by its place in the hierarchy (a child code), not by a
        # listed code, so an Observation coded in one is read and the sign tables decide.
        self.diagnosis_systems = frozenset((*mappings.systems.icd10, *mappings.systems.icd10cm))
        # (category, dimension) -> analyte: recognised by its unit when its code is not one we list.
        self.by_unit: dict[tuple[str, str], str] = {
            (a.by_unit_in_category, a.dimension): key for key, a in analytes.analytes.items() if a.by_unit_in_category
        }
        self.by_unit_categories = frozenset(cat for cat, _ in self.by_unit)
        self.by_unit_dimensions = frozenset(dim for _, dim in self.by_unit)


class BuilderState:
    """One record being built: what it has read so far, and the mappings' indexes it reads with."""

    def __init__(self, resources: ResourceSet, mappings: Mappings) -> None:
        self.resources = resources
        self.reader = fs.Reader()
        self.m = mappings
        ix = mappings.derived(Indexes)  # built once per Mappings, never per patient
        self.loinc_to_analyte = ix.loinc_to_analyte
        self.snomed_to_analyte = ix.snomed_to_analyte
        self.percent_to_analyte = ix.percent_to_analyte
        self.other_codes = ix.other_codes
        self.named = ix.named
        self.snomed_systems = ix.snomed_systems
        self.loinc_systems = ix.loinc_systems
        self.diagnosis_systems = ix.diagnosis_systems
        self.by_unit = ix.by_unit
        self.by_unit_categories = ix.by_unit_categories
        self.by_unit_dimensions = ix.by_unit_dimensions
        self.signs: list[SignEntry] = []
        # Differential percentages, made absolute with the WBC of the same time once every result is read.
        self.percents: list[tuple[Measurement, str | None]] = []
        self._specimen: dict[str, str] = {}  # measurement ref -> its specimen reference
        self.patient: PatientInfo | None = None
        self.orders: list[MedicineUse] = []
        self._medications_seen: set[MedicineUse] = set()
        self.measurements: list[Measurement] = []
        self.vaccines: list[VaccineEvent] = []
        self.conditions: list[ConditionEntry] = []
        self.problems: list[ParseProblem] = []
        self.dropped: list[Dropped] = []
        # A record repeats its codes and dosages (a Synthea file: 370 codes of 59 kinds): each distinct one is
        # reduced once per record, and so shared, its drug or vaccine asked once (by drug_ingredients' memo).
        self._concepts: dict[fs.CodeableConcept, Concept] = {}
        self._doses: dict[fs.Dosage, Dosage] = {}
        # ... and, each Concept being shared so, which drug or vaccine it is is asked once per Concept object
        # (found by identity, the Concept kept beside its answer so that its id stays its own).
        self._drug_of: dict[int, tuple[Concept | None, DrugMatch]] = {}
        self._vaccine_of: dict[int, tuple[Concept, bool]] = {}
        self.unit_dimensions: dict[tuple[object, ...], str | None] = {}

    def concept(self, cc: fs.CodeableConcept) -> Concept:
        found = self._concepts.get(cc)
        if found is None:
            found = self._concepts[cc] = concept_of(cc)
        return found

    def drugs(self, concept: Concept | None) -> DrugMatch:
        found = self._drug_of.get(id(concept))
        if found is None or found[0] is not concept:
            found = self._drug_of[id(concept)] = (concept, drug_ingredients(concept, self.m))
        return found[1]

    def is_vaccine(self, concept: Concept) -> bool:
        found = self._vaccine_of.get(id(concept))
        if found is None or found[0] is not concept:
            found = self._vaccine_of[id(concept)] = (concept, is_vaccine_concept(concept, self.m))
        return found[1]

    def run(self, handler: Callable[[RawObject], None], raw: RawObject) -> None:
        """Read one resource; one whose data is not valid FHIR (the readers' FhirDataError) becomes a ParseProblem,
        so the rules that would have read it say cannot-evaluate. Any other exception is a bug and propagates."""
        try:
            handler(raw)
        except FhirDataError as exc:
            self.problems.append(ParseProblem(
                ref=ref_of(raw), resource_type=type_of(raw), error=str(exc), codes=raw_codes(raw)
            ))

    def _target(self, reference: str, container: RawObject) -> RawObject | None:
        if reference.startswith("#"):
            contained = container.get("contained")
            return next((c for c in (contained if isinstance(contained, list) else [])
                         if isinstance(c, dict) and c.get("id") == reference[1:]), None)
        found: RawObject | None = self.resources.resolve(reference)
        return found

    def of_type(self, resource_type: str) -> Iterator[RawObject]:
        """The record's resources of one type, as their raw JSON."""
        found: Iterator[RawObject] = self.resources.of_type(resource_type)
        return found
