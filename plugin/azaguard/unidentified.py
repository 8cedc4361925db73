"""Entries the terminology could not identify at all, so a clinician sees "could not identify: ..." instead of
silence: medication records with no code of a drug terminology (RxNorm, ATC, SNOMED/dm+d, NDC) that match
none of our drugs, vaccines whose product nothing in the tables names, and diagnoses named only in a script the
tables cannot read (no diagnosis code either): such a diagnosis may be an infection.

It judges a record with the terminology's recognisers, so it sits above both (record/ reads terminology/)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from azaguard.mappings import Mappings
from azaguard.terminology import coded, system_names, vaccine_class
from azaguard.terminology.scripts import unreadable

if TYPE_CHECKING:
    from azaguard.record import ConditionEntry, PatientRecord

_DRUG_SYSTEMS = frozenset({"rxnorm", "atc", "sct", "ndc"})
# Code systems a diagnosis is identified by (mappings systems names): a code in one of them is read by the rules.
_DIAGNOSIS_SYSTEMS = frozenset({"icd10cm", "icd10", "snomed"})


def unreadable_diagnosis(cond: ConditionEntry, m: Mappings) -> str | None:
    """Why a diagnosis cannot be identified, or None: no code of a diagnosis terminology, and every name in a script
    the tables cannot read (a refuted or entered-in-error one is not a diagnosis)."""
    if (cond.verification_status or "").strip().lower() in m.conditions.excluded_verification_statuses:
        return None
    if any(m.systems.name_of(c.system) in _DIAGNOSIS_SYSTEMS and c.code.strip() for c in cond.concept.codings):
        return None
    return unreadable(cond.concept.names, m)


def unidentified(record: PatientRecord, m: Mappings) -> tuple[str, ...]:
    """The name of each medication or vaccine entry the terminology could not identify, in record order.
    A name close to azathioprine is not listed here: it is 'may be azathioprine' (the rules say so)."""
    systems = system_names(m)
    out: list[str] = []
    for order in record.medicine_uses:
        if order.status_class == "never" or order.drugs.hits or order.drugs.near_miss is not None:
            continue
        concept = order.medication
        if concept is not None and order.medication_problem is None and any(
                system in _DRUG_SYSTEMS for system, _ in coded(concept, systems)):
            continue  # a standard drug code: identified, and none of ours
        out.append(concept.label if concept is not None else f"a medication {order.kind} with no name")
    for event in record.vaccines:
        found = vaccine_class(event.vaccine, m, is_vaccine=True)
        if found.kind == "ambiguous" and found.cvx is None and found.by_name:
            out.append(event.vaccine.label)
    out += [f"the diagnosis {c.concept.label!r}" for c in record.conditions if unreadable_diagnosis(c, m)]
    return tuple(dict.fromkeys(out))
