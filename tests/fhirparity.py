"""The record's reader (fhirshapes: typed Structs of what the rules read) against fhir.resources, which validates
every element: on valid records both accept every resource; on invalid values the rules read, both refuse."""

from __future__ import annotations

import importlib
from collections.abc import Iterable

from pydantic import ValidationError

from azaguard import fhirshapes
from azaguard.resources import Resource


def shape(resource_type: str) -> type[fhirshapes.Shape] | None:
    found = getattr(fhirshapes, resource_type, None)
    return found if isinstance(found, type) and issubclass(found, fhirshapes.Shape) else None


def accepted_by_fhir_resources(resource: Resource) -> bool:
    rtype = resource["resourceType"]
    model = getattr(importlib.import_module(f"fhir.resources.R4B.{rtype.lower()}"), rtype)
    try:
        model.model_validate(resource)
    except ValidationError:
        return False
    return True


def accepted_by_the_reader(resource: Resource) -> bool:
    kind = shape(resource["resourceType"])
    assert kind is not None
    try:
        fhirshapes.read(resource, kind)
    except fhirshapes.FhirDataError:
        return False
    return True


def disagreements(resources: Iterable[Resource]) -> list[str]:
    """Resources (of the types the reader reads) that one of the two accepts and the other refuses."""
    out = []
    for r in resources:
        if shape(r["resourceType"]) is None:
            continue
        ours, theirs = accepted_by_the_reader(r), accepted_by_fhir_resources(r)
        if ours != theirs:
            out.append(f"{r['resourceType']}/{r.get('id')}: reader {ours}, fhir.resources {theirs}")
    return out
