"""PatientRecord: the normalised snapshot of one patient that the rules read, and how it is built.

Built from raw FHIR R4 resources: each resource the rules need is read as the typed Struct of its type
(fhirshapes.py: only the elements the rules read, each checked), then reduced to small frozen values with
quantities normalised to canonical UCUM units. Only Observations whose codes or names the mappings know are
read (a Synthea record holds hundreds that no rule reads). A resource that fails is kept as a ParseProblem so
the rules that would have read it say "cannot evaluate".

    model.py          the record and its parts (PatientRecord, MedicineUse, Measurement and its Result, ...)
    build.py          build_record: record_meaning decides whose and which; each resource goes to its reader
    state.py          what one build holds (what is read so far; the mappings' indexes, once per Mappings)
    reading.py        what every reader reads alike: references, concepts, dates, quantities, statuses
    patient.py, medications.py, observations.py, immunizations.py, conditions.py, questionnaires.py:
                      one reader per kind of resource (a mixin of the Builder)
"""

from __future__ import annotations

from azaguard.record.build import RECORD_TYPES, build_record
from azaguard.record.model import (
    Code,
    CodedResult,
    Concept,
    ConditionEntry,
    Dropped,
    Ingredient,
    Lasting,
    Measurement,
    MedicationSource,
    MedicineUse,
    NoResult,
    ParseProblem,
    PatientInfo,
    PatientRecord,
    QuantityResult,
    Result,
    SignEntry,
    SignSource,
    StatusClass,
    TextResult,
    UnreadEntry,
    VaccineEvent,
    VaccineSource,
)
from azaguard.units import Quantity

__all__ = [
    "RECORD_TYPES",
    "Code",
    "CodedResult",
    "Concept",
    "ConditionEntry",
    "Dropped",
    "Ingredient",
    "Lasting",
    "Measurement",
    "MedicationSource",
    "MedicineUse",
    "NoResult",
    "ParseProblem",
    "PatientInfo",
    "PatientRecord",
    "Quantity",
    "QuantityResult",
    "Result",
    "SignEntry",
    "SignSource",
    "StatusClass",
    "TextResult",
    "UnreadEntry",
    "VaccineEvent",
    "VaccineSource",
    "build_record",
]
