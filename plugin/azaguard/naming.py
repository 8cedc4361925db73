"""Records named for people: what a resource records and when, never its id.

A warning about a resource (left out of the record, or a part of it the server could not give) names it
the way a clinician finds it in the chart: "the Body temperature result of 1 Nov 2026". Its words come from
the resource itself (a code's text or display), else from what the mappings know of its code (the analyte
mapping's name for a LOINC or SNOMED CT lab code), else from the code system's name and the code
("a result (LOINC 99999-9)"): the id is kept in the machine-readable part only (record.dropped, JSON).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from azaguard.display import format_day
from azaguard.mappings import Mappings

_NOUN = {
    "Observation": "result", "MedicationRequest": "medication order", "MedicationStatement": "medication entry",
    "MedicationDispense": "dispense", "MedicationAdministration": "administration", "Medication": "medication",
    "Condition": "condition", "Immunization": "vaccination record", "ImmunizationRecommendation": "vaccine forecast",
    "ServiceRequest": "order", "DiagnosticReport": "lab report", "Patient": "patient record",
}
_WHAT = ("code", "medicationCodeableConcept", "vaccineCode", "medicationReference")
_WHEN = ("effectiveDateTime", "authoredOn", "occurrenceDateTime", "issued", "recordedDate", "onsetDateTime",
         "dateAsserted", "whenHandedOver")


def noun(resource_type: str) -> str:
    """'medication order', 'result': what a resource is, in words."""
    return _NOUN.get(resource_type, "record")


def resource_name(raw: Mapping[str, Any], m: Mappings | None = None) -> str:
    """'the Body temperature result of 3 Jan 2026': any resource named for people from what it records
    and when; 'a result (LOINC 99999-9) of …' when only its code is known; 'a result' when it says neither."""
    kind = noun(str(raw.get("resourceType")))
    words = next((w for key in _WHAT if (w := _words(raw.get(key)))), None)
    codings = [c for key in _WHAT for c in _codings(raw.get(key)) if isinstance(c.get("code"), str)]
    if words is None and m is not None:
        words = next((w for c in codings if (w := known_words(c, m))), None)
    when = next((raw[key] for key in _WHEN if isinstance(raw.get(key), str)), None)
    period = raw.get("effectivePeriod")
    if when is None and isinstance(period, Mapping) and isinstance(period.get("start"), str):
        when = period["start"]
    if words:
        name = f"the {words} {kind}"
    elif codings:
        name = f"a {kind} ({_coded(codings[0], m)})"
    else:
        name = f"a {kind}"
    return name + (f" of {format_day(when)}" if when else "")


def known_words(coding: Mapping[str, Any], m: Mappings) -> str | None:
    """What the mappings call a lab code: the analyte's name for a LOINC or SNOMED CT code it lists."""
    system = m.systems.name_of(coding.get("system"))
    code = coding.get("code")
    if system not in ("loinc", "snomed") or not isinstance(code, str):
        return None
    return next((label for label, codes in _lab_codes(m) if (system, code) in codes), None)


def _lab_codes(m: Mappings) -> Iterator[tuple[str, set[tuple[str, str]]]]:
    a = m.analytes
    for analyte in a.analytes.values():
        yield analyte.label, {("loinc", c) for c in (*analyte.loinc, *analyte.percent_loinc)} | {
            ("snomed", c) for c in analyte.snomed}
    for coded in a.coded_analytes.values():
        yield coded.label, {("loinc", c) for c in coded.loinc}
    for activity in a.activity_analytes.by_key.values():
        yield activity.label, {("loinc", c) for c in activity.loinc}
    for pathogen in m.lab_infections.pathogens.values():
        yield pathogen.label, {("loinc", c) for c in pathogen.loinc}
    yield m.pancreatitis.lipase.label, {("loinc", c) for c in m.pancreatitis.lipase.loinc}


def _coded(coding: Mapping[str, Any], m: Mappings | None) -> str:
    """'LOINC 8310-5': a code named by its system as clinicians name it; 'code 8310-5' for a system unknown."""
    system = m.systems.name_of(coding.get("system")) if m is not None else None
    label = m.display.system_name(system) if m is not None else None
    return f"{label or 'code'} {coding['code']}"


def _words(cc: object) -> str | None:
    """A CodeableConcept's (or Reference's) words: its text, else a coding's display."""
    if not isinstance(cc, Mapping):
        return None
    for text in (cc.get("text"), cc.get("display")):
        if isinstance(text, str) and text.strip():
            return " ".join(text.split())
    for c in _codings(cc):
        if isinstance(c.get("display"), str) and c["display"].strip():
            return " ".join(c["display"].split())
    return None


def _codings(cc: object) -> list[Mapping[str, Any]]:
    codings = cc.get("coding") if isinstance(cc, Mapping) else None
    return [c for c in codings if isinstance(c, Mapping)] if isinstance(codings, list) else []
