"""An optional FHIR terminology server, for codes the local value sets do not know.

Configured per site (a base URL); the local sets in mappings/ stay the offline default. Before the record
is built, each medication or vaccine concept that the local sets cannot place is sent to the server:
`ConceptMap/$translate` to RxNorm, ATC and CVX, and `CodeSystem/$lookup` for its display. What the server
answers is added to the resource as extra codings (marked as coming from the server), so the same local
recognisers then decide, and the rules stay pure. A server that fails or knows nothing changes nothing:
the concept stays unknown, which the rules already treat as "cannot clear".
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from azaguard.errors import FhirDataError
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirError
from azaguard.fhirtypes.concept import Code, Concept, coding, concept
from azaguard.fhirtypes.reference import ref_of
from azaguard.mappings import Mappings
from azaguard.resources import ResourceSet
from azaguard.terminology.drugs import drug_ingredients
from azaguard.terminology.vaccines import vaccine_class

log = logging.getLogger(__name__)

# Where each resource type keeps the concept we recognise.
_CONCEPT_ELEMENTS = {
    "MedicationRequest": "medicationCodeableConcept",
    "MedicationStatement": "medicationCodeableConcept",
    "MedicationDispense": "medicationCodeableConcept",
    "MedicationAdministration": "medicationCodeableConcept",
    "Medication": "code",
    "Immunization": "vaccineCode",
    "ServiceRequest": "code",
}
# Marks a coding the terminology server supplied (so a reviewer sees where it came from).
SERVER_TAG = "azaguard: via terminology server"


@dataclass
class TerminologyServer:
    """$lookup and $translate against one server, answers memoised per code."""

    client: FhirClient
    mappings: Mappings
    _translations: dict[tuple[str, str], tuple[Code, ...]] = field(default_factory=dict)
    _displays: dict[tuple[str, str], str | None] = field(default_factory=dict)

    def lookup(self, system: str, code: str) -> str | None:
        """The code's display per the server, or None (unknown code, or no answer)."""
        key = (system, code)
        if key not in self._displays:
            answer = self.client.operation("CodeSystem", "lookup", (("system", system), ("code", code)))
            self._displays[key] = _parameter(answer, "display")
        return self._displays[key]

    def translate(self, system: str, code: str) -> tuple[Code, ...]:
        """Equivalent codes in the systems our value sets use (RxNorm, ATC, CVX)."""
        key = (system, code)
        if key not in self._translations:
            found: list[Code] = []
            for target in self._targets():
                answer = self.client.operation(
                    "ConceptMap", "translate", (("system", system), ("code", code), ("targetsystem", target))
                )
                found += _matches(answer)
            self._translations[key] = tuple(dict.fromkeys(found))
        return self._translations[key]

    def enrich(self, resources: ResourceSet) -> list[str]:
        """The record's unplaced concepts given this server's codings (evaluate.Enricher): see `enrich`."""
        return enrich(resources, self)

    def _targets(self) -> tuple[str, ...]:
        s = self.mappings.systems
        return (s.rxnorm[0], s.atc[0], s.cvx[0])


def enrich(resources: ResourceSet, server: TerminologyServer) -> list[str]:
    """Add the server's codings to concepts the local sets cannot place; returns warnings (never raises
    for a server failure: the record is then evaluated on the local sets alone)."""
    warnings: list[str] = []
    m = server.mappings
    for raw in resources.resources:
        element = _CONCEPT_ELEMENTS.get(str(raw.get("resourceType")))
        cc = raw.get(element) if element else None
        if not isinstance(cc, MutableMapping):
            continue
        codings = cc.get("coding")
        if not isinstance(codings, list) or not codings:
            continue
        try:
            read = concept(cc)
        except FhirDataError:
            continue  # not a valid CodeableConcept: the record builder reports it as unreadable
        if _known_locally(read, raw, m):
            continue
        try:
            extra = list(_server_codings(read, server))
        except FhirError as exc:
            warnings.append(f"terminology server: {exc}; {ref_of(raw)} was "
                            "checked with the local value sets only")
            continue
        have = {(c.get("system"), c.get("code")) for c in codings if isinstance(c, dict)}
        for c in extra:
            if (c.system, c.code) not in have:
                codings.append({"system": c.system, "code": c.code, "display": c.display or SERVER_TAG,
                                "userSelected": False})
    return warnings


def _known_locally(concept: Concept, raw: dict[str, Any], m: Mappings) -> bool:
    if drug_ingredients(concept, m).hits:
        return True
    vaccine = vaccine_class(concept, m, is_vaccine=raw.get("resourceType") == "Immunization")
    return vaccine.kind in ("live", "not-live") or (vaccine.kind == "ambiguous" and vaccine.cvx is not None)


def _server_codings(concept: Concept, server: TerminologyServer) -> Iterator[Code]:
    for c in concept.codings:
        if not c.system:
            continue
        yield from server.translate(c.system, c.code)
        if not c.display:
            display = server.lookup(c.system, c.code)
            if display:
                yield Code(c.system, c.code, display)


def _parameter(parameters: dict[str, Any], name: str) -> str | None:
    for p in parameters.get("parameter") or []:
        if isinstance(p, dict) and p.get("name") == name and isinstance(p.get("valueString"), str):
            return str(p["valueString"])
    return None


def _matches(parameters: dict[str, Any]) -> list[Code]:
    """The equivalent concepts of a $translate answer (R4: match.part concept / equivalence)."""
    if not any(p.get("name") == "result" and p.get("valueBoolean") is True
               for p in parameters.get("parameter") or [] if isinstance(p, dict)):
        return []
    out: list[Code] = []
    for p in parameters.get("parameter") or []:
        if not isinstance(p, dict) or p.get("name") != "match":
            continue
        parts = {q.get("name"): q for q in p.get("part") or [] if isinstance(q, dict)}
        equivalence = (parts.get("equivalence") or {}).get("valueCode")
        if equivalence not in (None, "equivalent", "equal", "wider", "subsumes"):
            continue  # narrower/inexact/disjoint: not the same product or ingredient
        try:
            found = coding((parts.get("concept") or {}).get("valueCoding"))
        except FhirDataError:
            continue  # the server's answer is not a Coding: nothing learnt from it
        if found is not None:
            out.append(found)
    return out
