"""The four medication resources, each one use of a medicine."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from msgspec.structs import replace as struct_replace

from azaguard import fhirshapes as fs
from azaguard.dosage import Dosage, Ratio, Repeat, strength_of_ratio
from azaguard.fhirtypes.raw import RawObject
from azaguard.fhirtypes.timeunits import days_per
from azaguard.mappings import Mappings
from azaguard.record.model import (
    Concept,
    Ingredient,
    MedicationSource,
    MedicineUse,
    StatusClass,
    VaccineEvent,
    VaccineSource,
)
from azaguard.record.reading import (
    as_datetime,
    as_latest,
    codes_of,
    concept_of,
    first_code,
    partial_date_note,
    quantity_of,
    raw_status,
    ref_of,
    type_of,
)
from azaguard.record.state import BuilderState
from azaguard.terminology.scripts import unreadable


class MedicationReading(BuilderState):
    """The four medication resources, each one use of a medicine."""

    # -- MedicationRequest, MedicationStatement, MedicationDispense, MedicationAdministration: a use of a medicine --
    def _medicine_use(self, raw: RawObject) -> None:
        """One use of a medicine, whichever of the four resources records it; an order or administration of a
        vaccine (however the vaccine is coded) is a vaccination event instead."""
        source, shape = _MEDICATION_SHAPES[type_of(raw)]
        use = self.reader.read(raw, shape)
        ref, status = ref_of(raw), raw_status(raw)
        concept, med_ref, problem, ingredients = self._medication_with_ingredients(use, raw)
        when = self._when_used(use, status)
        request = use if isinstance(use, fs.MedicationRequest) else None
        administered = isinstance(use, fs.MedicationAdministration)
        if (request is not None or administered) and concept is not None and self.is_vaccine(concept):
            given: VaccineSource = "MedicationRequest" if request is not None else "MedicationAdministration"
            self.vaccines.append(VaccineEvent(ref, given, concept, status, when.vaccinated))
            return
        reasons: tuple[Concept, ...] = ()
        note = None
        if isinstance(use, (fs.MedicationRequest, fs.MedicationStatement)):
            # why it is given; a partial stop date, read as late as it can be
            reasons, note = self._reasons(use, raw), _end_note(use)
        self._add_medication(MedicineUse(
            ref=ref, status=status, intent=request.intent if request is not None else None, medication=concept,
            medication_ref=med_ref, medication_problem=problem, authored_on=when.authored, start=when.start,
            end=when.end, doses=tuple(self.dose(d) for d in _dosages(use)), source=source,
            status_class=self._status_class(source, status), current_until=when.current_until,
            # (an administration's ingredients are not read: it carries no dose to compute with them)
            ingredients=() if administered else ingredients,
            reasons=reasons, prior=self._prior(request, raw) if request is not None else None, date_note=note,
        ))

    def _when_used(self, use: fs.MedicationResource, status: str) -> _WhenUsed:
        """When the medicine was (or is to be) used, as each resource says it."""
        therapy = self.m.policy.therapy
        if isinstance(use, fs.MedicationRequest):  # ordered: the dosage bounds or validity, else when authored
            start, end = _order_period(use)
            authored = as_datetime(use.authoredOn)
            return _WhenUsed(authored, start or authored, end, vaccinated=authored)
        if isinstance(use, fs.MedicationStatement):  # the patient takes (took, will take) it
            period = use.effectivePeriod
            start = as_datetime(use.effectiveDateTime) or (as_datetime(period.start) if period else None)
            end = as_latest(period.end) if period else None
            if end is None and status in ("completed", "stopped"):
                end = as_datetime(use.effectiveDateTime)  # a single date on a finished statement: its last use
            asserted = as_datetime(use.dateAsserted)
            return _WhenUsed(asserted, start or asserted, end)
        if isinstance(use, fs.MedicationDispense):  # handed over: current while its supply lasts
            handed = as_datetime(use.whenHandedOver) or as_datetime(use.whenPrepared)
            days = _days_supply(use.daysSupply, self.m)
            if days is None:
                days = therapy.dispense_assumed_supply_days.value
            end = handed + timedelta(days=days) if handed is not None else None
            return _WhenUsed(handed, handed, end, current_until=end)
        if not isinstance(use, fs.MedicationAdministration):
            raise TypeError(f"not a medication resource: {type(use).__name__}")
        period = use.effectivePeriod  # given: a recent administration is current therapy
        start = as_datetime(use.effectiveDateTime) or (as_datetime(period.start) if period else None)
        end = (as_datetime(period.end) if period else None) or start
        window = timedelta(days=therapy.administration_current_days.value)
        return _WhenUsed(start, start, end, current_until=end + window if end is not None else None, vaccinated=end)

    def _prior(self, mr: fs.MedicationRequest, raw: RawObject) -> str | None:
        """The order this one renews (priorPrescription), as the record names it (a urn:uuid resolved)."""
        reference = mr.priorPrescription.reference if mr.priorPrescription is not None else None
        if not reference:
            return None
        target = self._target(reference, raw)
        return ref_of(target) if target is not None else reference

    def _reasons(self, mr: fs.MedicationRequest | fs.MedicationStatement, raw: RawObject) -> tuple[Concept, ...]:
        """Why the drug is given: reasonCode, and the code (or display) of each Condition reasonReference names."""
        out = [self.concept(c) for c in (mr.reasonCode or [])]
        for r in mr.reasonReference or []:
            target = self._target(r.reference, raw) if r.reference else None
            code = target.get("code") if target is not None else None
            if isinstance(code, dict):
                text = code.get("text")
                out.append(Concept(codings=codes_of(code), text=text if isinstance(text, str) else None))
            elif r.display:
                out.append(Concept(text=r.display))
        return tuple(out)

    def _status_class(self, source: MedicationSource, status: str) -> StatusClass:
        """How a status reads for therapy: an order's by the therapy policy's own lists (a draft is an order being
        written), the other resources' by theirs."""
        policy = self.m.policy.therapy
        if source == "MedicationRequest":
            if status in policy.current_statuses:
                return "current"
            if status in policy.recent_statuses:
                return "recent"
            if status in policy.never_statuses:
                return "never"
            return "draft" if status == "draft" else "uncertain"
        classes = next((c for s, c in policy.other_resources.items() if s == source), None)
        if classes is None:
            return "uncertain"
        if status in classes.current:
            return "current"
        if status in classes.recent:
            return "recent"
        return "never" if status in classes.never else "uncertain"

    def _add_medication(self, order: MedicineUse) -> None:
        if order in self._medications_seen:
            # The same resource twice, alike (paging overlap, a search and an _include): one order, not two
            # doses. Copies that differ without version information are all read (record_meaning.py).
            return
        self._medications_seen.add(order)
        drugs = self.drugs(order.medication)
        concept = order.medication
        problem = order.medication_problem
        if problem is None and drugs.near_miss is not None:
            near = drugs.near_miss
            label = concept.label if concept is not None else order.ref
            problem = (f"{label!r} may be azathioprine: {near.word!r} is close to {near.target!r} but matches no "
                       "azathioprine name exactly")
        if problem is None and concept is not None and not drugs.hits and not concept.names:
            # Only codes we do not know (an unlisted NDC, a local code) and no name: it might be azathioprine,
            # an anti-infective or an interacting drug, so it is unidentified, never "none of ours".
            codes = ", ".join(f"{c.system or '(no system)'}|{c.code}" for c in concept.codings) or "no code"
            problem = f"medication has no name and no code azaguard knows ({codes}): it cannot be identified"
        if problem is None and concept is not None and not drugs.hits:
            problem = unreadable(concept.names, self.m)  # a name in a script the tables cannot read: may be ours
        self.orders.append(struct_replace(order, drugs=drugs, medication_problem=problem))

    def _medication_with_ingredients(
        self, mr: fs.MedicationResource, raw: RawObject
    ) -> tuple[Concept | None, str | None, str | None, tuple[Ingredient, ...]]:
        """The medication's concept (a referenced Medication's code, ingredients and form folded in), its
        reference, why it cannot be read, and its ingredients with their strengths."""
        if mr.medicationCodeableConcept is not None:
            return self.concept(mr.medicationCodeableConcept), None, None, ()
        reference = mr.medicationReference.reference if mr.medicationReference else None
        display = mr.medicationReference.display if mr.medicationReference else None
        if not reference:
            return (Concept(text=display) if display else None), None, "medication reference has no target", ()
        target = self._target(reference, raw)
        if target is None or target.get("resourceType") != "Medication":
            fallback = Concept(text=display) if display else None
            return fallback, reference, f"Medication {reference} not found in the record", ()
        # A Medication contained in the order names its siblings with "#id"; a standalone one, its own.
        container = raw if reference.startswith("#") else target
        concept, ingredients, unresolved = self._medication_concept(target, container, display, depth=0)
        problem = None
        if unresolved:
            problem = (f"Medication {reference} names ingredient(s) azaguard cannot find in the record "
                       f"({', '.join(unresolved)}): what it contains cannot be identified")
        return concept, reference, problem, ingredients

    def _medication_concept(
        self, target: RawObject, container: RawObject, display: str | None, *, depth: int
    ) -> tuple[Concept, tuple[Ingredient, ...], list[str]]:
        """A Medication's code with each ingredient's codes and names (an itemCodeableConcept, or the
        Substance or Medication an itemReference points at: contained or elsewhere in the record)."""
        med = self.reader.read(target, fs.Medication)
        concept = self.concept(med.code) if med.code else Concept()
        codings = list(concept.codings)
        names: list[str] = []
        ingredients: list[Ingredient] = []
        unresolved: list[str] = []
        for item in med.ingredient or []:
            part: Concept | None = None
            if item.itemCodeableConcept is not None:
                part = self.concept(item.itemCodeableConcept)
            elif item.itemReference is not None and item.itemReference.reference:
                ref = item.itemReference.reference
                found = self._target(ref, container)
                if found is not None and found.get("resourceType") == "Substance":
                    sub = self.reader.read(found, fs.Substance)
                    part = self.concept(sub.code) if sub.code is not None else None
                elif found is not None and found.get("resourceType") == "Medication" and depth < 2:
                    part, _, more = self._medication_concept(found, container, None, depth=depth + 1)
                    unresolved += more
                if part is None or not (part.codings or part.names):
                    unresolved.append(ref)
                    part = None
            elif item.itemReference is not None and item.itemReference.display:
                part = Concept(text=item.itemReference.display)
            if part is None:
                continue
            codings += part.codings
            names += part.names
            strength = None
            if item.strength is not None:
                ratio = item.strength
                strength = strength_of_ratio(quantity_of(ratio.numerator), quantity_of(ratio.denominator),
                                             self.m, "Medication.ingredient.strength")
            ingredients.append(Ingredient(part, strength))
        if med.form is not None:
            names += self.concept(med.form).names  # the dose form: "ophthalmic solution" says not systemic
        if len(codings) > len(concept.codings) or names or display:
            extra: dict[str, None] = dict.fromkeys(n for n in names if n != (concept.text or display))  # in order, once
            concept = Concept(codings=tuple(codings), text=concept.text or display, extra_names=tuple(extra))
        return concept, tuple(ingredients), unresolved

    def dose(self, d: fs.Dosage) -> Dosage:
        found = self._doses.get(d)
        if found is None:
            found = self._doses[d] = _dose(d)
        return found


# The four resources that record a use of a medicine, and the shape each is read as.
_MEDICATION_SHAPES: dict[str, tuple[MedicationSource, type[fs.MedicationResource]]] = {
    "MedicationRequest": ("MedicationRequest", fs.MedicationRequest),
    "MedicationStatement": ("MedicationStatement", fs.MedicationStatement),
    "MedicationDispense": ("MedicationDispense", fs.MedicationDispense),
    "MedicationAdministration": ("MedicationAdministration", fs.MedicationAdministration),
}


class _WhenUsed(NamedTuple):
    authored: datetime | None
    start: datetime | None
    end: datetime | None
    current_until: datetime | None = None  # a dispense's supply or a recent administration: current until then
    vaccinated: datetime | None = None  # an order's or administration's date, when it is of a vaccine


def _dosages(use: fs.MedicationResource) -> tuple[fs.Dosage, ...]:
    if isinstance(use, fs.MedicationRequest | fs.MedicationDispense):
        return use.dosageInstruction or ()
    return (use.dosage or ()) if isinstance(use, fs.MedicationStatement) else ()


def _order_period(mr: fs.MedicationRequest) -> tuple[datetime | None, datetime | None]:
    start = end = None
    for d in mr.dosageInstruction or []:
        bounds = d.timing.repeat.boundsPeriod if d.timing and d.timing.repeat else None
        if bounds is not None:
            start = start or as_datetime(bounds.start)
            end = end or as_latest(bounds.end)
    validity = mr.dispenseRequest.validityPeriod if mr.dispenseRequest else None
    if validity is not None:
        start = start or as_datetime(validity.start)
        end = end or as_latest(validity.end)
    return start, end


def _end_note(use: fs.MedicationRequest | fs.MedicationStatement) -> str | None:
    """How a partial stop date of a medication resource was read (the latest it can mean: the drug's effect
    is taken to last as long as the record allows): a statement's period end; an order's validity end, then
    its dosages' bounds."""
    ends: list[str | None] = []
    if isinstance(use, fs.MedicationStatement):
        ends.append(use.effectivePeriod.end if use.effectivePeriod else None)
    else:
        validity = use.dispenseRequest.validityPeriod if use.dispenseRequest else None
        ends.append(validity.end if validity else None)
        for d in use.dosageInstruction or ():
            bounds = d.timing.repeat.boundsPeriod if d.timing and d.timing.repeat else None
            ends.append(bounds.end if bounds else None)
    return next((n for n in (partial_date_note(e, "latest") for e in ends) if n), None)


def _ratio(r: fs.Ratio | None) -> Ratio | None:
    return None if r is None else Ratio(quantity_of(r.numerator), quantity_of(r.denominator))


def _float(v: object) -> float | None:
    return float(v) if isinstance(v, (Decimal, int, float)) else None


def _dose(d: fs.Dosage) -> Dosage:
    """A Dosage element reduced to what the dosage module reads (dosage.py says how it is read)."""
    timing = d.timing
    rep = timing.repeat if timing is not None else None
    repeat = None
    if rep is not None:
        bounds, brange = rep.boundsPeriod, rep.boundsRange
        repeat = Repeat(
            frequency=rep.frequency, frequency_max=rep.frequencyMax, period=_float(rep.period),
            period_max=_float(rep.periodMax), period_unit=rep.periodUnit,
            day_of_week=tuple(str(x) for x in rep.dayOfWeek or ()), when=tuple(str(x) for x in rep.when or ()),
            time_of_day=tuple(str(x) for x in rep.timeOfDay or ()), count=rep.count, count_max=rep.countMax,
            bounds_start=as_datetime(bounds.start) if bounds is not None else None,
            bounds_end=as_datetime(bounds.end) if bounds is not None else None,
            bounds_duration=quantity_of(rep.boundsDuration) or (
                quantity_of(brange.high) if brange is not None else None),
        )
    code = timing.code if timing is not None else None
    dose = rate = None
    rate_ratio = None
    from_range = False
    rows = list(d.doseAndRate or [])
    # An "ordered" row before a "calculated" one: the prescriber's amount is the one given.
    rows.sort(key=lambda r: 0 if r.type is not None and first_code(r.type) == "ordered" else 1)
    for row in rows:
        if dose is None:
            if row.doseQuantity is not None:
                dose = quantity_of(row.doseQuantity)
            elif row.doseRange is not None:
                dose, from_range = quantity_of(row.doseRange.high), True
        if rate is None and rate_ratio is None:
            if row.rateQuantity is not None:
                rate = quantity_of(row.rateQuantity)
            elif row.rateRange is not None:
                rate = quantity_of(row.rateRange.high)
            elif row.rateRatio is not None:
                rate_ratio = _ratio(row.rateRatio)
    route = concept_of(d.route).names + tuple(c.code for c in concept_of(d.route).codings) if d.route else ()
    return Dosage(
        text=d.text, sequence=d.sequence, as_needed=bool(d.asNeededBoolean) or d.asNeededCodeableConcept is not None,
        repeat=repeat,
        timing_codes=tuple((c.system, c.code) for c in (code.coding or []) if c.code) if code is not None else (),
        timing_text=code.text if code is not None else None,
        dose=dose, dose_from_range=from_range, rate=rate, rate_ratio=rate_ratio,
        max_per_period=_ratio(d.maxDosePerPeriod), max_per_administration=quantity_of(d.maxDosePerAdministration),
        route=route,
    )


def _days_supply(q: fs.Quantity | None, m: Mappings) -> float | None:
    """daysSupply in days (a UCUM unit of time or its word, mappings/units.json; none given: days); None when
    absent or unreadable."""
    if q is None or q.value is None:
        return None
    factor = days_per(q.code or q.unit or "d", m)
    if factor is None or float(q.value) < 0:
        return None
    return float(q.value) * factor

MEDICATION_TYPES = frozenset(_MEDICATION_SHAPES)
