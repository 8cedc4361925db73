"""One catalogue of what azaguard reads and writes: the launch scopes, the backend scopes, the CDS prefetch and
the CDS usageRequirements all name the types the gatherer searches (fhir/gather.plan_searches)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from azaguard.cds.discovery import discovery_document, prefetch_templates
from azaguard.fhir.catalogue import WRITES, launch_scopes, reads, record_reads, scopes
from azaguard.fhir.gather import plan_searches
from azaguard.mappings import load_mappings
from azaguard.smart.backend import requested_scopes

M = load_mappings()
REPO = Path(__file__).resolve().parents[2]
TYPES_SEARCHED = {s.resource_type for s in plan_searches("p1", M, datetime(2026, 11, 20, tzinfo=UTC))}


def _resource_scopes(text: str) -> set[str]:
    return {s for s in text.split() if "/" in s}


def test_the_catalogue_holds_every_searched_type_its_includes_and_the_patient() -> None:
    assert set(record_reads(M)) == TYPES_SEARCHED | {"Patient", "Medication"}
    assert {"MedicationStatement", "MedicationDispense", "MedicationAdministration"} <= set(record_reads(M))
    assert set(reads(M)) == set(record_reads(M)) | {"DetectedIssue", "Flag", "Device"}


def test_the_repository_registration_asks_for_exactly_the_catalogue() -> None:
    registered = json.loads((REPO / "smart_launch.json").read_text(encoding="utf-8"))["scopes"]
    for version in ("v1", "v2"):
        assert _resource_scopes(registered[version]) == set(scopes(version, context="patient", write=True)), version
        assert _resource_scopes(launch_scopes(version)) == set(scopes(version, context="patient", write=True))


def test_the_backend_service_asks_for_the_catalogue_and_the_bulk_group() -> None:
    v2 = requested_scopes(True, write=True).split()
    assert set(v2) == {f"system/{t}.{'crus' if t in WRITES else 'rs'}" for t in reads(M)} | {"system/Group.rs"}
    read_only = requested_scopes(False, write=False).split()
    assert set(read_only) == {f"system/{t}.read" for t in reads(M)} | {"system/Group.read"}


def test_prefetch_templates_fetch_every_searched_type() -> None:
    templates = prefetch_templates(M)
    fetched = {t.split("?", 1)[0].split("/", 1)[0] for t in templates.values()}
    assert fetched == TYPES_SEARCHED | {"Patient"}
    included = {v.split("_include=", 1)[1].split("&", 1)[0] for v in templates.values() if "_include=" in v}
    assert included and all(i.endswith(":medication") for i in included)  # Medication comes with its orders


def test_usage_requirements_name_every_type_the_prefetch_fetches() -> None:
    """An EHR that scopes fhirAuthorization by what is advertised must be able to fetch what the prefetch asks."""
    for service in discovery_document(M)["services"]:
        words = service["usageRequirements"].replace(",", " ").split()
        for rtype in record_reads(M):
            assert rtype in words, (service["id"], rtype)


def test_a_bulk_export_asks_for_the_catalogue_and_finds_the_patient_where_the_gatherer_does() -> None:
    from azaguard.scan.ndjson import EXPORT_TYPES, PATIENT_ELEMENT

    assert set(EXPORT_TYPES) == set(record_reads(M))
    plan = {s.resource_type: s.patient_element for s in plan_searches("p1", M, datetime(2026, 11, 20, tzinfo=UTC))}
    assert plan == PATIENT_ELEMENT
