"""One catalogue of what azaguard reads and writes: the launch scopes, the backend scopes, the CDS prefetch and
the CDS usageRequirements all name the types the gatherer searches (fhir/gather.plan_searches)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from azaguard.cds.discovery import discovery_document, prefetch_templates
from azaguard.fhir.catalogue import (
    CHECKIN_WRITES,
    WRITES,
    launch_scopes,
    patient_launch_scopes,
    reads,
    record_reads,
    scopes,
)
from azaguard.fhir.gather import plan_searches
from azaguard.mappings import load_mappings
from azaguard.smart.backend import requested_scopes

M = load_mappings()
REPO = Path(__file__).resolve().parents[2]
TYPES_SEARCHED = {s.resource_type for s in plan_searches("p1", M, datetime(2026, 11, 20, tzinfo=UTC))}


def _resource_scopes(text: str) -> set[str]:
    return {s for s in text.split() if "/" in s}


def test_the_catalogue_holds_every_searched_type_its_includes_and_the_patient() -> None:
    assert set(record_reads(M)) == TYPES_SEARCHED | {"Patient", "Medication", "Questionnaire"}
    assert {"MedicationStatement", "MedicationDispense", "MedicationAdministration"} <= set(record_reads(M))
    assert set(reads(M)) == set(record_reads(M)) | {"DetectedIssue", "Flag", "Device"}


def test_the_repository_registration_asks_for_exactly_the_catalogue() -> None:
    registered = json.loads((REPO / "smart_launch.json").read_text(encoding="utf-8"))["scopes"]
    for version in ("v1", "v2"):
        assert _resource_scopes(registered[version]) == set(scopes(version, context="patient", write=True)), version
        assert _resource_scopes(launch_scopes(version)) == set(scopes(version, context="patient", write=True))


def test_the_patients_own_launch_asks_for_the_record_and_the_check_in_writes() -> None:
    """patient_scopes (the patient view) come from the catalogue too: each type the rules read, read-only, and
    the check-in's writes; the app accepts the grant as able to save a check-in."""
    from azaguard.patient.checkin import Answers, transaction
    from azaguard.patient.content import load_questionnaire
    from azaguard.web.patient import can_write_checkin

    registered = json.loads((REPO / "smart_launch.json").read_text(encoding="utf-8"))["patient_scopes"]
    assert registered == {"v2": patient_launch_scopes("v2"), "v1": patient_launch_scopes("v1")}
    v2 = registered["v2"].split()
    assert v2[:3] == ["launch/patient", "openid", "fhirUser"]
    assert set(v2[3:]) == {f"patient/{t}.{'crus' if t in CHECKIN_WRITES else 'rs'}" for t in record_reads(M)}
    v1 = set(registered["v1"].split()[3:])
    assert v1 == {f"patient/{t}.read" for t in record_reads(M)} | {f"patient/{t}.write" for t in CHECKIN_WRITES}
    assert not {"patient/DetectedIssue.rs", "patient/Flag.rs", "patient/Device.rs"} & set(v2)  # the clinician's
    assert can_write_checkin(registered["v2"]) and can_write_checkin(registered["v1"])
    answers = Answers(checkin_id="0" * 32, temperature=38.5, unit="Cel", celsius=38.5, signs=())
    written = transaction(answers, "p1", datetime(2026, 11, 20, tzinfo=UTC), load_questionnaire(), M)
    assert {e["resource"]["resourceType"] for e in written} == set(CHECKIN_WRITES)


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
