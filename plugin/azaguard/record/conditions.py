"""Conditions: the problem list."""

from __future__ import annotations

from azaguard import fhirshapes as fs
from azaguard.fhirtypes.raw import RawObject
from azaguard.record.model import Concept, ConditionEntry
from azaguard.record.reading import as_latest, first_code, onset_lasting, partial_date_note, ref_of
from azaguard.record.state import BuilderState


class ConditionReading(BuilderState):
    """Conditions: the problem list."""

    # -- Condition --
    def _condition(self, raw: RawObject) -> None:
        c = self.reader.read(raw, fs.Condition)
        onset_raw = c.onsetDateTime or (c.onsetPeriod.start if c.onsetPeriod else None)
        # A month-only date is read as late as it can be: a symptom or infection "in October" may be recent.
        self.conditions.append(
            ConditionEntry(
                ref=ref_of(raw),
                concept=self.concept(c.code) if c.code else Concept(),
                clinical_status=first_code(c.clinicalStatus),
                verification_status=first_code(c.verificationStatus),
                onset=as_latest(onset_raw),
                recorded=as_latest(c.recordedDate),
                date_note=partial_date_note(c.recordedDate, "latest") or partial_date_note(onset_raw, "latest"),
                lasting=onset_lasting(onset_raw, c.onsetPeriod.end if c.onsetPeriod else None),
                abated=c.abated,
            )
        )
