"""Observations (and the results a DiagnosticReport contains): measurements and symptoms."""

from __future__ import annotations

import re
from datetime import datetime
from functools import partial

from msgspec import Struct
from msgspec.structs import replace as struct_replace

from azaguard import fhirshapes as fs
from azaguard.errors import FhirDataError
from azaguard.fhirtypes.concept import raw_codings
from azaguard.fhirtypes.raw import RawObject, RawValue
from azaguard.record.model import (
    CodedResult,
    Concept,
    ConditionEntry,
    Lasting,
    Measurement,
    NoResult,
    QuantityResult,
    Result,
    SignEntry,
    TextResult,
)
from azaguard.record.reading import (
    IGNORED_OBSERVATION_STATUSES,
    as_datetime,
    as_latest,
    concept_of,
    number_of,
    onset_lasting,
    partial_date_note,
    raw_category_codes,
    raw_status,
    recorded_quantity,
    ref_of,
)
from azaguard.record.state import BuilderState
from azaguard.terminology.labtests import (
    LIPASE,
    activity_of,
    analyte_by_name,
    is_lipase,
    pathogen_of,
)
from azaguard.terminology.scripts import fold
from azaguard.terminology.signs import (
    answer_presence,
    length_in_days,
    sign_of,
)
from azaguard.units import Quantity, UnitError, normalise, unit_dimension


class ObservationReading(BuilderState):
    """Observations (and the results a DiagnosticReport contains): measurements and symptoms."""

    # -- Observation --
    def _observation_wanted(self, raw: RawObject) -> bool:
        """Whether an Observation may be one the rules read (a mapped code, or codes that cannot be read).
        Runs on every Observation of the record (hundreds in a Synthea file): plain dict reads only."""
        code = raw.get("code")
        codes = raw_codings(code)
        if not codes:
            return True  # unreadable code: parse it so a failure is recorded, not skipped
        wanted = self.loinc_to_analyte
        for system, c in codes:
            if c in wanted or c in self.other_codes or system in self.diagnosis_systems:
                return True
        if self._named(code):
            return True  # a lab-local or text-only code naming a sign, pathogen or analyte
        components = raw.get("component")
        parts: list[RawValue] = [raw]
        if isinstance(components, list):
            for comp in components:
                if isinstance(comp, dict):
                    for _, c in raw_codings(comp.get("code")):
                        if c in wanted:
                            return True
            parts += components
        if not self.by_unit:
            return False
        categories = raw_category_codes(raw)
        if categories.isdisjoint(self.by_unit_categories):
            return False  # most Observations: decided without resolving a unit
        return any(self._by_unit(raw, part, categories) for part in parts)

    def _named(self, cc: RawValue) -> bool:
        """Whether a raw CodeableConcept's text or displays name something the rules read (one regex)."""
        if not isinstance(cc, dict):
            return False
        codings = cc.get("coding")
        names = [cc.get("text")] + [c.get("display") for c in (codings if isinstance(codings, list) else ())
                                    if isinstance(c, dict)]
        return any(isinstance(n, str) and self.named.search(fold(n)) for n in names)

    def _by_unit(self, raw: RawObject, holder: RawValue, categories: set[str] | None = None) -> str | None:
        """The analyte an Observation (or component) is by its category and its value's unit, if any."""
        if not self.by_unit or not isinstance(holder, dict):
            return None
        q = holder.get("valueQuantity")
        if not isinstance(q, dict):
            return None
        codes = raw_category_codes(raw) if categories is None else categories
        if codes.isdisjoint(self.by_unit_categories):
            return None
        dimension = self._dimension_of(q)
        if dimension not in self.by_unit_dimensions:
            return None  # most vital signs: a unit no analyte is recognised by
        return next((a for (cat, dim), a in self.by_unit.items() if dim == dimension and cat in codes), None)

    def _dimension_of(self, q: RawObject) -> str | None:
        """The dimension of a raw Quantity's unit. A record repeats a few units hundreds of times (a
        Synthea file's vital signs): each resolved once, remembered under the values as recorded (a
        value that is not a string counts as absent; a list or object is never remembered)."""
        code, system, text = key = (q.get("code"), q.get("system"), q.get("unit"))
        try:
            return self.unit_dimensions[key]
        except KeyError:
            remember = True
        except TypeError:  # unhashable: resolved without remembering
            remember = False
        found = unit_dimension(
            code if isinstance(code, str) else None,
            system if isinstance(system, str) else None,
            text if isinstance(text, str) else None,
            self.m,
        )
        if remember:
            self.unit_dimensions[key] = found
        return found

    def _observation(self, raw: RawObject, ref: str | None = None) -> None:
        obs = self.reader.read(raw, fs.Observation)
        status = str(obs.status)
        if status in IGNORED_OBSERVATION_STATUSES:
            return
        ref = ref or ref_of(raw)
        when_raw = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
        effective = (
            as_datetime(obs.effectiveDateTime)
            or (as_datetime(obs.effectivePeriod.start) if obs.effectivePeriod else None)
            or as_datetime(obs.effectiveInstant)
            or as_datetime(obs.issued)
        )
        lab = _LabContext.of(obs, partial_date_note(when_raw, "earliest"))
        if obs.specimen is not None and obs.specimen.reference:
            self._specimen[ref] = obs.specimen.reference
        components = raw.get("component")  # null or not a list (unchecked JSON): no components
        raw_parts: list[RawObject] = [raw]
        raw_parts += [c for c in (components if isinstance(components, list) else ()) if isinstance(c, dict)]
        parts = [(obs.code, obs)] + [(c.code, c) for c in (obs.component or [])]
        found = False
        for (code_concept, holder), raw_part in zip(parts, raw_parts, strict=False):
            concept = self.concept(code_concept)
            loinc = next((c for c in concept.codes_in(self.loinc_systems) if c in self.loinc_to_analyte), None)
            analyte = self.loinc_to_analyte.get(loinc or "")
            how = None
            if analyte is None:
                snomed = next((c for c in concept.codes_in(self.snomed_systems) if c in self.snomed_to_analyte), None)
                analyte = self.snomed_to_analyte.get(snomed or "")
                how = f"SNOMED CT {snomed}" if snomed else None
            if analyte is None:
                analyte = self._by_unit(raw, raw_part)
            if analyte is None:
                continue
            found = True
            code = loinc or next((c.code for c in concept.codings), "(no code)")
            meas = self._measurement(ref, code, status, effective, holder, self._gene(obs, concept), analyte=analyte)
            self.measurements.append(lab.onto(meas, how))
        # One read for a name its local code carries ("Whooping cough vaccination") may be none of ours after all;
        # one without any code cannot be told apart.
        no_code = not self.concept(obs.code).codings
        if not found and not self._other_reading(raw, obs, ref, status, effective, lab) and no_code:
            raise FhirDataError("Observation has no readable LOINC code")

    def _other_reading(
        self, raw: RawObject, obs: fs.Observation, ref: str, status: str, effective: datetime | None, lab: _LabContext
    ) -> bool:
        """An Observation beyond the listed analyte codes: a differential percentage, a pathogen test, an
        enzyme activity, an analyte known by name, or a symptom. False when it is none of them."""
        concept = self.concept(obs.code)
        loincs = concept.codes_in(self.loinc_systems)
        percent = next((c for c in loincs if c in self.percent_to_analyte), None)
        if percent is not None:
            meas = self._raw_measurement(ref, percent, status, effective, obs, self.percent_to_analyte[percent])
            specimen = obs.specimen.reference if obs.specimen else None
            self.percents.append((lab.onto(meas, None), specimen))
            return True
        pathogen = pathogen_of(concept, self.m)
        if pathogen is not None:
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._raw_measurement(ref, code, status, effective, obs, f"pathogen:{pathogen.key}")
            self.measurements.append(lab.onto(meas, pathogen.how))
            return True
        activity = activity_of(concept, self.m)
        if activity is not None:
            spec = self.m.analytes.activity_analytes.by_key[activity]
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            if obs.valueQuantity is not None:
                meas = self._raw_measurement(ref, code, status, effective, obs, activity)
            else:  # a phenotype in words ("TPMT activity: deficient"): read as the phenotype result it is
                meas = self._measurement(ref, code, status, effective, obs, spec.gene, analyte="pgx-phenotype")
            self.measurements.append(lab.onto(struct_replace(meas, gene=spec.gene), f"by name ({concept.label})"))
            return True
        if is_lipase(concept, self.m):  # read against the lab's own upper limit, in its own unit
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._raw_measurement(ref, code, status, effective, obs, LIPASE)
            self.measurements.append(lab.onto(meas, None if loincs else f"by name ({concept.label})"))
            return True
        named = analyte_by_name(concept, self.m)
        if named is not None:
            code = next(iter(loincs), next((c.code for c in concept.codings), "(no code)"))
            meas = self._measurement(ref, code, status, effective, obs, None, analyte=named)
            self.measurements.append(lab.onto(meas, f"by name ({concept.label})"))
            return True
        return self._symptom(raw, obs, concept, ref, status)

    def _symptom(self, raw: RawObject, obs: fs.Observation, concept: Concept, ref: str, status: str) -> bool:
        """A symptom or nursing assessment: the code names the symptom (its value says present or absent),
        or a 'symptom' code's value names it."""
        when_raw = obs.effectiveDateTime or (obs.effectivePeriod.start if obs.effectivePeriod else None)
        when = as_latest(when_raw) or as_datetime(obs.effectiveInstant) or as_datetime(obs.issued)
        note = partial_date_note(when_raw, "latest")
        value = self.concept(obs.valueCodeableConcept) if obs.valueCodeableConcept is not None else None
        period = obs.effectivePeriod
        lasting = onset_lasting(period.start, period.end) if period is not None else None
        generic = self.m.signs.observation_codes
        generic_code = concept.codes_in(self.loinc_systems) & generic.loinc or concept.codes_in(
            self.snomed_systems) & generic.snomed
        if generic_code:
            if value is not None and sign_of(value, self.m) is not None:
                self.signs.append(SignEntry(ref, "Observation", value, True, when, status, f"value {value.label}",
                                            note, lasting))
            return True  # a symptom that is not one of the leaflets' signs: read, and nothing to say
        if sign_of(concept, self.m) is None:
            return False
        present: bool | None = True  # a finding recorded without a value is recorded as present
        detail = "recorded"
        if obs.valueQuantity is not None:  # a length of time ("cough: 3 d"); anything else cannot be read
            q = obs.valueQuantity
            days = length_in_days(number_of(q.value), q.code, q.unit, self.m)
            detail = f"value {q.value:g} {q.unit or q.code or ''}".rstrip() if q.value is not None else "value"
            lasting = Lasting(detail, days=days, unreadable=days is None)
        elif obs.valueBoolean is not None:
            present, detail = bool(obs.valueBoolean), f"value {str(obs.valueBoolean).lower()}"
        elif value is not None:
            present = answer_presence([(c.system, c.code) for c in value.codings], list(value.names), self.m)
            detail = f"value {value.label}"
        elif obs.valueString is not None:
            present = answer_presence([], [obs.valueString], self.m)
            detail = f"value '{obs.valueString}'"
        if present is None:
            present, detail = True, f"{detail} (read as present: not a yes/no answer)"
        self.signs.append(SignEntry(ref, "Observation", concept, present, when, status, detail, note, lasting))
        return True

    def _raw_measurement(
        self, ref: str, code: str, status: str, effective: datetime | None, holder: fs.Valued, analyte: str
    ) -> Measurement:
        """A result read as the lab sent it (no unit conversion): a pathogen test, an enzyme activity, a
        percentage; its value is compared only with the lab's own range and flags, or made absolute later."""
        q = holder.valueQuantity
        result: Result
        if q is not None:
            quantity = recorded_quantity(q)
            result = QuantityResult(quantity, quantity.value, q.code or q.unit,
                                    None if quantity.value is not None else "no value")
        else:
            result = self._other_result(holder)
        return Measurement(ref=ref, analyte=analyte, loinc=code, status=status, effective=effective, result=result)

    def _other_result(self, holder: fs.Valued) -> Result:
        """A result that is not a quantity: coded, text, or none (with its dataAbsentReason)."""
        if holder.valueCodeableConcept is not None:
            return CodedResult(self.concept(holder.valueCodeableConcept))
        if holder.valueString is not None:
            return TextResult(holder.valueString)
        absent = holder.dataAbsentReason
        return NoResult("no value" + (f" (dataAbsentReason: {self.concept(absent).label})" if absent else ""))

    def add_differentials(self) -> None:
        """Each differential percentage with a WBC of the same time (and specimen, when both name one) becomes an
        absolute count, unless the lab reported that count at that time itself."""
        if not self.percents:
            return
        wbc_key = "wbc"
        wbcs = [m for m in self.measurements if m.analyte == wbc_key and m.result.value is not None]
        for pct, specimen in self.percents:
            share = pct.result.value
            if share is None or pct.effective is None or (pct.result.unit not in ("%", None)):
                continue
            if any(m.analyte == pct.analyte and m.effective == pct.effective for m in self.measurements):
                continue  # the lab's own absolute count decides
            wbc = next((w for w in wbcs if w.effective == pct.effective and (
                specimen is None or self._specimen.get(w.ref) in (None, specimen))), None)
            count = wbc.result.value if wbc is not None else None
            if wbc is None or count is None:
                continue
            absolute = round(share / 100 * count, 3)
            unit = self.m.units.dimensions[self.m.analytes.analytes[pct.analyte].dimension].canonical
            how = (f"{share:g} % of WBC {count:g} {wbc.result.unit} ({wbc.ref}): {absolute:g} {unit}, "
                   "computed from the differential")
            computed = Quantity(value=absolute, comparator=None, code=unit, system=None, unit=unit)
            self.measurements.append(struct_replace(pct, result=QuantityResult(computed, absolute, unit), how=how))

    def _gene(self, obs: fs.Observation, code: Concept) -> str | None:
        """The gene a pharmacogenomic result is about: fixed by its code, a gene-studied component, or text."""
        analyte = self.loinc_to_analyte.get(next(iter(code.codes_in(self.loinc_systems)), ""), "")
        coded = self.m.analytes.coded_analytes.get(analyte)
        if coded is None:
            return None
        if coded.gene:
            return coded.gene
        pgx = self.m.analytes.pharmacogenomics
        names: list[str] = []
        for comp in obs.component or []:
            comp_code = self.concept(comp.code)
            if comp_code.codes_in(self.m.systems.loinc) & set(pgx.gene_studied_loinc) and comp.valueCodeableConcept:
                value = self.concept(comp.valueCodeableConcept)
                for gene, spec in pgx.genes.items():
                    if {c.code for c in value.codings} & {spec.hgnc}:
                        return gene
                names += value.names
        names += code.names
        if obs.valueString:
            names.append(obs.valueString)
        if obs.valueCodeableConcept is not None:
            names += self.concept(obs.valueCodeableConcept).names
        found = {gene for gene, spec in pgx.genes.items() if any(
            re.search(rf"\b{re.escape(n)}\b", text, re.IGNORECASE) for n in spec.names for text in names)}
        return found.pop() if len(found) == 1 else None

    def _measurement(
        self, ref: str, loinc: str, status: str, effective: datetime | None, holder: fs.Valued, gene: str | None = None,
        *, analyte: str,
    ) -> Measurement:
        q = holder.valueQuantity
        if q is None:
            return Measurement(ref=ref, analyte=analyte, loinc=loinc, status=status, effective=effective,
                               result=self._other_result(holder), gene=gene)
        quantity = recorded_quantity(q)
        value = unit = problem = None
        from_text = False
        spec = self.m.analytes.analytes.get(analyte)
        if spec is None:
            problem = f"{analyte} is coded, not a quantity"
        elif quantity.value is None:
            problem = "no value"
        else:
            try:
                n = normalise(quantity.value, code=q.code, system=q.system, text=q.unit, dimension=spec.dimension,
                              mappings=self.m)
                value, unit, from_text = n.value, n.unit, n.unit_source != "code"
            except UnitError as exc:
                problem = str(exc)
            if value is not None and spec.plausible is not None and not (
                spec.plausible.low <= value <= spec.plausible.high
            ):
                # A Celsius value sent as [degF], a count per uL labelled 10*3/uL: not believable.
                problem = (
                    f"{quantity.as_recorded()} = {value:.4g} {unit} is outside the plausible range "
                    f"{spec.plausible.low:g}-{spec.plausible.high:g} {unit} (wrong unit or value?)"
                )
                value = None
        return Measurement(ref=ref, analyte=analyte, loinc=loinc, status=status, effective=effective,
                           result=QuantityResult(quantity, value, unit, problem, from_text), gene=gene)

    # -- DiagnosticReport: results contained in the report, and its coded conclusion --
    def _diagnostic_report(self, raw: RawObject) -> None:
        dr = self.reader.read(raw, fs.DiagnosticReport)
        if raw_status(raw) in IGNORED_OBSERVATION_STATUSES:
            return
        ref = ref_of(raw)
        when_raw = dr.effectiveDateTime or (dr.effectivePeriod.start if dr.effectivePeriod else None)
        for result in dr.result or []:
            target = result.reference or ""
            inner = self._target(target, raw) if target.startswith("#") else None
            if inner is None or inner.get("resourceType") != "Observation":
                continue  # a result on the server is read as the Observation it is
            if "effectiveDateTime" not in inner and "effectivePeriod" not in inner and when_raw is not None:
                inner = {**inner, "effectiveDateTime": str(when_raw)}  # the report's time
            if self._observation_wanted(inner):
                self.run(partial(self._observation, ref=f"{ref}{target}"), inner)
        for conclusion in dr.conclusionCode or []:
            # A coded conclusion is a diagnosis the lab made (influenza A, COVID-19): judged by its date.
            self.conditions.append(ConditionEntry(
                ref=ref, concept=self.concept(conclusion), clinical_status=None, verification_status=None, onset=None,
                recorded=as_latest(when_raw) or as_datetime(dr.issued), date_note=partial_date_note(when_raw, "latest"),
                source="DiagnosticReport",
            ))


class _LabContext(Struct, frozen=True):
    """What an Observation says beside its value: interpretation, reference range, a partial date's reading."""

    interpretation: tuple[str, ...]
    interpretation_text: tuple[str, ...]
    low: float | None
    high: float | None
    unit: str | None
    text: str | None
    date_note: str | None

    @classmethod
    def of(cls, obs: fs.Observation, date_note: str | None) -> _LabContext:
        codes: list[str] = []
        texts: list[str] = []
        for cc in obs.interpretation or []:
            concept = concept_of(cc)
            codes += [c.code for c in concept.codings]
            texts += list(concept.names)
        rr = (obs.referenceRange or [None])[0]
        low = rr.low if rr is not None else None
        high = rr.high if rr is not None else None
        unit = next((q.code or q.unit for q in (low, high) if q is not None and (q.code or q.unit)), None)
        return cls(
            tuple(codes), tuple(texts),
            float(low.value) if low is not None and low.value is not None else None,
            float(high.value) if high is not None and high.value is not None else None,
            unit, rr.text if rr is not None else None, date_note,
        )

    def onto(self, meas: Measurement, how: str | None) -> Measurement:
        return struct_replace(
            meas, interpretation=self.interpretation, interpretation_text=self.interpretation_text,
            range_low=self.low, range_high=self.high, range_unit=self.unit, range_text=self.text,
            how=how or meas.how, date_note=self.date_note,
        )
