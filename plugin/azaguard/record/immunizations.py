"""Vaccinations: given, recommended, ordered, or recorded as a procedure."""

from __future__ import annotations

from azaguard import fhirshapes as fs
from azaguard.fhirtypes.concept import raw_codings
from azaguard.fhirtypes.raw import RawObject
from azaguard.record.model import Concept, VaccineEvent
from azaguard.record.reading import as_datetime, raw_status, ref_of
from azaguard.record.state import BuilderState


class VaccineReading(BuilderState):
    """Vaccinations: given, recommended, ordered, or recorded as a procedure."""

    # -- vaccines --
    def _immunization(self, raw: RawObject) -> None:
        imm = self.reader.read(raw, fs.Immunization)
        when = as_datetime(imm.occurrenceDateTime) or as_datetime(imm.recorded)
        self.vaccines.append(
            VaccineEvent(ref_of(raw), "Immunization", self.concept(imm.vaccineCode), str(imm.status), when)
        )

    def _recommendation(self, raw: RawObject) -> None:
        rec = self.reader.read(raw, fs.ImmunizationRecommendation)
        ref = ref_of(raw)
        for item in rec.recommendation or []:
            codes = [self.concept(c) for c in (item.vaccineCode or [])]
            if not codes and item.targetDisease is not None:
                # Only a target disease: the product is unknown (ambiguous unless a live name shows).
                codes = [Concept(text=self.concept(item.targetDisease).label)]
            vaccine = Concept(
                codings=tuple(c for k in codes for c in k.codings),
                text=next((k.text for k in codes if k.text), None),
            )
            status = _forecast_status(item.forecastStatus)
            when = next((as_datetime(d.value) for d in (item.dateCriterion or [])), None) or as_datetime(rec.date)
            self.vaccines.append(VaccineEvent(ref, "ImmunizationRecommendation", vaccine, status, when))

    def _service_request(self, raw: RawObject) -> None:
        sr = self.reader.read(raw, fs.ServiceRequest)
        if sr.code is None:
            return
        concept = self.concept(sr.code)
        if not self.is_vaccine(concept):
            return  # a lab test, imaging, referral ...: not ours
        when = as_datetime(sr.occurrenceDateTime) or as_datetime(sr.authoredOn)
        self.vaccines.append(VaccineEvent(ref_of(raw), "ServiceRequest", concept, raw_status(raw), when))

    # -- Procedure: claims and some EHRs record a vaccination as a procedure (CPT 90707, a SNOMED procedure) --
    def _procedure(self, raw: RawObject) -> None:
        code = raw.get("code")
        if not raw_codings(code) and not (isinstance(code, dict) and isinstance(code.get("text"), str)):
            return  # no code to tell a vaccination by: not ours (most procedures of a record)
        proc = self.reader.read(raw, fs.Procedure)
        if proc.code is None:
            return
        concept = self.concept(proc.code)
        if not self.is_vaccine(concept):
            return
        period = proc.performedPeriod
        when = as_datetime(proc.performedDateTime) or (as_datetime(period.end or period.start) if period else None)
        self.vaccines.append(VaccineEvent(ref_of(raw), "Procedure", concept, raw_status(raw), when))


def _forecast_status(cc: fs.CodeableConcept | None) -> str:
    """A forecast status code; from the text when no coding has a code; 'unknown' when neither says."""
    if cc is None:
        return "unknown"
    for coding in cc.coding or []:
        if coding.code:
            return str(coding.code)
    if cc.text and cc.text.strip():
        return str(cc.text).strip().lower()
    return "unknown"
