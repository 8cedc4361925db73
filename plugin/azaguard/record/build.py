"""Building a PatientRecord from a patient's raw resources: each resource read by the reader of its kind."""

from __future__ import annotations

from collections.abc import Callable

from azaguard.fhirtypes.raw import RawObject
from azaguard.mappings import Mappings
from azaguard.record.conditions import ConditionReading
from azaguard.record.immunizations import VaccineReading
from azaguard.record.medications import MEDICATION_TYPES, MedicationReading
from azaguard.record.model import Dropped, PatientRecord, UnreadEntry
from azaguard.record.observations import ObservationReading
from azaguard.record.patient import PatientReading
from azaguard.record.questionnaires import QuestionnaireReading
from azaguard.record.reading import type_of
from azaguard.record_meaning import MEANING_TYPES, read_meaning
from azaguard.resources import ResourceSet, gc_paused


def build_record(
    resources: ResourceSet, mappings: Mappings, *, ordering_context: bool = False
) -> PatientRecord:
    """Reduce a patient's raw resources to the snapshot the rules read.

    Each resource is checked on the elements the rules read (fhirshapes)."""
    with gc_paused():
        return _build(resources, mappings, ordering_context=ordering_context)


def _build(
    resources: ResourceSet, mappings: Mappings, *, ordering_context: bool
) -> PatientRecord:
    builder = Builder(resources, mappings)
    # Whose, whether, which version, which script: decided once, for every resource type (record_meaning).
    reading = read_meaning(resources, mappings, builder.handler_for)
    builder.resources = reading.resources
    for raw, handler in reading.read:
        builder.run(handler, raw)
    builder.add_differentials()
    return PatientRecord(
        patient=builder.patient,
        medicine_uses=tuple(builder.orders),
        measurements=tuple(builder.measurements),
        vaccines=tuple(builder.vaccines),
        conditions=tuple(builder.conditions),
        problems=tuple(builder.problems),
        dropped=tuple(Dropped(ref, why) for ref, why in reading.dropped) + tuple(builder.dropped),
        ordering_context=ordering_context,
        related=tuple(reading.related),
        events=tuple(reading.events),
        signs=tuple(builder.signs),
        unread=tuple(UnreadEntry(what, rtype, error) for what, rtype, error in resources.failures),
    )


class Builder(PatientReading, MedicationReading, ObservationReading, VaccineReading, ConditionReading,
              QuestionnaireReading):
    """Reads each resource with the reader of its kind."""

    def __init__(self, resources: ResourceSet, mappings: Mappings) -> None:
        super().__init__(resources, mappings)
        self.handlers: dict[str, Callable[[RawObject], None]] = {
            "Patient": self._patient,
            **dict.fromkeys(MEDICATION_TYPES, self._medicine_use),
            "Observation": self._observation,
            "Immunization": self._immunization,
            "ImmunizationRecommendation": self._recommendation,
            "ServiceRequest": self._service_request,
            "Procedure": self._procedure,
            "Condition": self._condition,
            "DiagnosticReport": self._diagnostic_report,
            "QuestionnaireResponse": self._questionnaire_response,
        }

    def handler_for(self, raw: RawObject) -> Callable[[RawObject], None] | None:
        """How a resource is read, or None when no rule reads it (its type, or an Observation's codes)."""
        rtype = type_of(raw)
        handler = self.handlers.get(rtype)
        if handler is None or (rtype == "Observation" and not self._observation_wanted(raw)):
            return None
        return handler


_HANDLED = frozenset({
    "Patient", *MEDICATION_TYPES, "Observation", "Immunization", "ImmunizationRecommendation", "ServiceRequest",
    "Procedure", "Condition", "DiagnosticReport", "QuestionnaireResponse",
})


# The resource types a record is built from (what record_from_bytes decodes): those with a handler, and
# the Medications their orders point at (and the Substances those name as ingredients).
RECORD_TYPES: frozenset[str] = (
    _HANDLED | {"Medication", "Substance", "Questionnaire"} | MEANING_TYPES
)
