"""A Patient: who the record is about."""

from __future__ import annotations

from azaguard import fhirshapes as fs
from azaguard.fhirtypes.raw import RawObject
from azaguard.record.model import PatientInfo
from azaguard.record.reading import as_date, as_datetime, ref_of
from azaguard.record.state import BuilderState


class PatientReading(BuilderState):
    """A Patient: who the record is about."""

    # -- Patient --
    def _patient(self, raw: RawObject) -> None:
        p = self.reader.read(raw, fs.Patient)
        name = None
        if p.name:
            n = p.name[0]
            name = n.text or " ".join(part for part in [*(n.given or ()), n.family] if part) or None
        info = PatientInfo(
            ref=ref_of(raw), name=name, birth_date=as_date(p.birthDate), gender=p.gender,
            deceased=bool(p.deceasedBoolean) or p.deceasedDateTime is not None,
            deceased_on=as_datetime(p.deceasedDateTime),
        )
        if self.patient is None:
            self.patient = info
