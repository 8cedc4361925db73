"""Pure parts of the simulator: scope parsing and granting, compartment checks, URL rewriting."""

from __future__ import annotations

import pytest

from azaguard.sandbox.ehr.compartment import (
    FhirPath,
    check_resource,
    check_search,
    check_write,
    parse_path,
    returned_resources,
)
from azaguard.sandbox.ehr.context import LaunchStore
from azaguard.sandbox.ehr.launcher import display_name, patient_rows
from azaguard.sandbox.ehr.proxy import (
    check_request,
    check_response,
    filter_searchsets,
    rewrite_urls,
    with_oauth_uris,
)
from azaguard.sandbox.ehr.scopes import allows, grant, parse_scope, parse_scopes
from tests.sandbox_ehr.helpers import FHIR, FakeClock, ctx, ehr_client

BASES = (FHIR, "http://127.0.0.1:5555/fhir")


# --- scopes ---
@pytest.mark.parametrize(
    ("scope", "perms"),
    [
        ("patient/Observation.rs", "rs"),
        ("patient/Observation.r", "r"),
        ("patient/DetectedIssue.cruds", "cruds"),
        ("patient/Flag.cu", "cu"),
        ("patient/Observation.read", "rs"),
        ("patient/Flag.write", "cud"),
        ("user/*.*", "cruds"),
    ],
)
def test_parse_scope_permissions(scope: str, perms: str) -> None:
    parsed = parse_scope(scope)
    assert parsed is not None
    assert parsed.permissions == frozenset(perms)


@pytest.mark.parametrize(
    "scope",
    [
        "patient/Observation.sr",
        "patient/Observation.rx",
        "patient/Observation.",
        "launch",
        "openid",
        "patient/observation.rs",
        "patient/Observation.rs?category",
        "Observation.rs",
    ],
)
def test_not_resource_scopes(scope: str) -> None:
    assert parse_scope(scope) is None


def test_granular_scope_keeps_its_query_and_covers_only_matching_searches() -> None:
    scopes = parse_scopes("patient/Observation.rs?category=laboratory")
    assert scopes[0].query == (("category", "laboratory"),)
    assert allows(scopes, "Observation", "s", [("patient", "p1"), ("category", "laboratory")])
    assert not allows(scopes, "Observation", "s", [("patient", "p1")])
    assert not allows(scopes, "Observation", "r")


def test_allows_by_type_wildcard_and_permission() -> None:
    scopes = parse_scopes("patient/Observation.rs patient/Flag.c user/*.r system/*.cruds")
    assert allows(scopes, "Observation", "s")
    assert allows(scopes, "Flag", "c")
    assert not allows(scopes, "Flag", "u")
    assert allows(scopes, "Condition", "r")  # user/*.r
    assert not allows(scopes, "Condition", "s")
    assert not allows(scopes, "DetectedIssue", "c")  # system/ scopes never count in a patient launch


def test_grant_is_requested_intersect_supported_and_narrowing_never_adds() -> None:
    requested = "launch openid launch patient/Observation.rs system/*.rs patient/Bogus.rs nonsense patient/Flag.cruds"
    assert grant(requested) == "launch openid patient/Observation.rs patient/Flag.cruds"
    assert grant(requested, lambda s: "patient/Flag.cruds patient/Patient.rs") == "patient/Flag.cruds"
    assert grant(None) == ""


# --- compartment ---
@pytest.mark.parametrize(
    ("rtype", "params", "allowed"),
    [
        ("Observation", [("patient", "p1")], True),
        ("Observation", [("subject", "Patient/p1"), ("code", "x")], True),
        ("Observation", [("subject", f"{FHIR}/Patient/p1")], True),
        ("Observation", [("patient", "p2")], False),
        ("Observation", [("patient", "p1,p2")], False),
        ("Observation", [("patient", "p1"), ("subject", "p2")], False),
        ("Observation", [("code", "x")], False),
        ("Observation", [("subject", "http://elsewhere/fhir/Patient/p1")], False),
        ("Patient", [("_id", "p1")], True),
        ("Patient", [("_id", "p1,p2")], False),
        ("Patient", [("name", "smith")], False),
        ("Patient", [("patient", "p1")], False),
        ("Medication", [("code", "197388")], True),
    ],
)
def test_search_compartment(rtype: str, params: list[tuple[str, str]], allowed: bool) -> None:
    assert (check_search(rtype, params, "p1", BASES) is None) is allowed


@pytest.mark.parametrize(
    ("resource", "allowed"),
    [
        ({"resourceType": "Patient", "id": "p1"}, True),
        ({"resourceType": "Patient", "id": "p2"}, False),
        ({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p1"}}, True),
        ({"resourceType": "Observation", "id": "o", "subject": {"reference": f"{BASES[1]}/Patient/p1"}}, True),
        ({"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p2"}}, False),
        ({"resourceType": "Observation", "id": "o", "subject": {"reference": "Group/g"}}, False),
        ({"resourceType": "Observation", "id": "o", "subject": {"display": "no reference"}}, False),
        ({"resourceType": "Observation", "id": "o"}, False),
        ({"resourceType": "DetectedIssue", "id": "d", "patient": {"reference": "Patient/p1"}}, True),
        ({"resourceType": "Medication", "id": "m"}, True),
        ({"resourceType": "Device", "id": "d"}, True),
        ({"resourceType": "Device", "id": "d", "patient": {"reference": "Patient/p2"}}, False),
        ({"resourceType": "OperationOutcome"}, True),
    ],
)
def test_resource_compartment(resource: dict[str, object], allowed: bool) -> None:
    assert (check_resource(resource, "p1", BASES) is None) is allowed


def _issue(patient: str) -> dict[str, object]:
    return {"resourceType": "DetectedIssue", "status": "final", "patient": {"reference": f"Patient/{patient}"}}


@pytest.mark.parametrize(
    ("method", "path", "body", "allowed"),
    [
        ("POST", "DetectedIssue", _issue("p1"), True),
        ("POST", "DetectedIssue", _issue("p2"), False),
        ("POST", "DetectedIssue", {"resourceType": "DetectedIssue", "status": "final"}, False),
        ("POST", "DetectedIssue", {"resourceType": "Flag", "subject": {"reference": "Patient/p1"}}, False),
        ("POST", "Flag", {"resourceType": "Flag", "subject": {"reference": "Patient/p1"}}, True),
        ("POST", "Device", {"resourceType": "Device"}, False),  # a patient token never writes shared types
        # The patient's check-in: their answers and the temperature they measured (scopes decide who may).
        ("POST", "Observation", {"resourceType": "Observation", "subject": {"reference": "Patient/p1"}}, True),
        ("POST", "Observation", {"resourceType": "Observation", "subject": {"reference": "Patient/p2"}}, False),
        ("PUT", "QuestionnaireResponse/q1",
         {"resourceType": "QuestionnaireResponse", "id": "q1", "subject": {"reference": "Patient/p1"}}, True),
        ("POST", "Condition", {"resourceType": "Condition", "subject": {"reference": "Patient/p1"}}, False),
        ("PUT", "DetectedIssue/d1", {**_issue("p1"), "id": "d1"}, True),
        ("PUT", "DetectedIssue/d1", {**_issue("p1"), "id": "d2"}, False),
        ("PUT", "DetectedIssue", _issue("p1"), False),
        ("POST", "DetectedIssue/d1", _issue("p1"), False),
        ("POST", "DetectedIssue", "not json", False),
    ],
)
def test_write_compartment(method: str, path: str, body: object, allowed: bool) -> None:
    assert (check_write(method, parse_path(path), body, "p1", BASES) is None) is allowed


def test_parse_path_shapes() -> None:
    assert parse_path("Observation") == FhirPath("Observation")
    assert parse_path("Patient/p1") == FhirPath("Patient", "p1")
    assert parse_path("Patient/p1/_history/2") == FhirPath("Patient", "p1", version="2")
    assert parse_path("Observation/_search").search_post
    assert parse_path("Patient/p1/$everything").other
    assert parse_path("Patient/$match").other
    assert parse_path("metadata").other


def test_returned_resources_looks_into_nested_bundles() -> None:
    inner = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient", "id": "p2"}}]}
    outer = {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": inner}, {"response": {}}]}
    assert [r["id"] for r in returned_resources(outer)] == ["p2"]


def test_check_request_batch_checks_every_entry() -> None:
    scopes = parse_scopes("patient/Observation.rs patient/Patient.rs patient/DetectedIssue.c")

    def batch(*entries: dict[str, object]) -> dict[str, object]:
        return {"resourceType": "Bundle", "type": "batch", "entry": list(entries)}

    ok = batch(
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Observation?patient=p1&_count=50"}},
        {
            "request": {"method": "POST", "url": "DetectedIssue", "ifNoneExist": "identifier=x|y"},
            "resource": _issue("p1"),
        },
    )
    verdict = check_request("POST", "", [], ok, "p1", scopes, BASES)
    assert verdict.problem is None
    assert verdict.written_types == {"DetectedIssue"}
    bad_search = batch({"request": {"method": "GET", "url": "Observation?patient=p2"}})
    assert "entry 0" in (check_request("POST", "", [], bad_search, "p1", scopes, BASES).problem or "")
    bad_write = batch({"request": {"method": "POST", "url": "DetectedIssue"}, "resource": _issue("p2")})
    assert check_request("POST", "", [], bad_write, "p1", scopes, BASES).problem
    no_scope = batch({"request": {"method": "GET", "url": "Condition?patient=p1"}})
    assert "scopes" in (check_request("POST", "", [], no_scope, "p1", scopes, BASES).problem or "")
    deletion = batch({"request": {"method": "DELETE", "url": "DetectedIssue/1"}})
    assert check_request("POST", "", [], deletion, "p1", scopes, BASES).problem
    assert check_request("POST", "", [], {"resourceType": "Bundle", "type": "collection"}, "p1", scopes, BASES).problem


def test_check_request_single_interactions_need_scopes() -> None:
    read_only = parse_scopes("patient/DetectedIssue.rs patient/Patient.r")
    assert check_request("GET", "DetectedIssue", [("patient", "p1")], None, "p1", read_only, BASES).problem is None
    assert check_request("POST", "DetectedIssue", [], _issue("p1"), "p1", read_only, BASES).problem
    assert check_request("GET", "Patient/p1", [], None, "p1", read_only, BASES).problem is None
    assert check_request("GET", "Patient", [("_id", "p1")], None, "p1", read_only, BASES).problem  # no .s
    assert check_request("DELETE", "DetectedIssue/1", [], None, "p1", read_only, BASES).problem
    assert check_request("GET", "", [], None, "p1", read_only, BASES).problem


def test_check_response_refuses_other_patients_and_unreadable_types() -> None:
    scopes = parse_scopes("patient/Observation.rs patient/DetectedIssue.c")
    bundle = {
        "resourceType": "Bundle",
        "entry": [
            {"resource": {"resourceType": "Observation", "id": "1", "subject": {"reference": "Patient/p1"}}},
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
        ],
    }
    assert check_response(bundle, "p1", scopes, BASES, set()) is None
    bundle["entry"].append(
        {"resource": {"resourceType": "Observation", "id": "2", "subject": {"reference": "Patient/p2"}}}
    )
    assert "compartment" in (check_response(bundle, "p1", scopes, BASES, set()) or "")
    written = {"resourceType": "DetectedIssue", "id": "d", "patient": {"reference": "Patient/p1"}}
    assert check_response(written, "p1", scopes, BASES, {"DetectedIssue"}) is None
    assert check_response(written, "p1", scopes, BASES, set()) is not None


def test_search_results_outside_the_compartment_are_withheld_with_a_note() -> None:
    scopes = parse_scopes("patient/ImmunizationRecommendation.rs patient/Observation.rs")

    def rec(patient: str) -> dict[str, object]:
        return {
            "resource": {
                "resourceType": "ImmunizationRecommendation",
                "id": patient,
                "patient": {"reference": f"Patient/{patient}"},
            },
            "search": {"mode": "match"},
        }

    searchset = {"resourceType": "Bundle", "type": "searchset", "total": 3, "entry": [rec("p1"), rec("p2"), rec("p3")]}
    batch = {"resourceType": "Bundle", "type": "batch-response", "entry": [{"resource": searchset}]}
    assert filter_searchsets(batch, "p1", scopes, BASES, set()) == 2
    kept = searchset["entry"]
    assert [e["resource"]["resourceType"] for e in kept] == ["ImmunizationRecommendation", "OperationOutcome"]
    assert kept[0]["resource"]["id"] == "p1"
    assert kept[1]["search"] == {"mode": "outcome"}
    assert "total" not in searchset
    assert check_response(batch, "p1", scopes, BASES, set()) is None
    clean = {"resourceType": "Bundle", "type": "searchset", "total": 1, "entry": [rec("p1")]}
    assert filter_searchsets(clean, "p1", scopes, BASES, set()) == 0
    assert clean["total"] == 1
    read = {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/p2"}}
    assert filter_searchsets(read, "p1", scopes, BASES, set()) == 0  # not a search: check_response refuses it
    assert check_response(read, "p1", scopes, BASES, set())


def test_rewrite_urls_only_touches_the_old_base() -> None:
    old = "http://127.0.0.1:5555/fhir"
    body = {
        "link": [{"relation": "next", "url": f"{old}/Observation?patient=p1&_offset=20"}],
        "entry": [{"fullUrl": f"{old}/Observation/1", "resource": {"note": [{"text": f"see {old}/x"}]}}],
        "other": "http://127.0.0.1:5555/fhirish/x",
        "exact": old,
    }
    out = rewrite_urls(body, [old], FHIR)
    assert out["link"][0]["url"] == f"{FHIR}/Observation?patient=p1&_offset=20"
    assert out["entry"][0]["fullUrl"] == f"{FHIR}/Observation/1"
    assert out["entry"][0]["resource"]["note"][0]["text"] == f"see {old}/x"  # prose is not a URL field
    assert out["other"] == "http://127.0.0.1:5555/fhirish/x"
    assert out["exact"] == FHIR


def test_capability_statement_gets_oauth_uris() -> None:
    with ehr_client() as client:
        capability = with_oauth_uris({"resourceType": "CapabilityStatement", "rest": [{"mode": "server"}]}, ctx(client))
    ext = capability["rest"][0]["security"]["extension"][0]
    assert ext["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    uris = {e["url"]: e["valueUri"] for e in ext["extension"]}
    assert uris == {"authorize": f"{FHIR[:-5]}/auth/authorize", "token": f"{FHIR[:-5]}/auth/token"}


# --- launcher ---
def test_launch_store_single_use_expiry_and_client_binding() -> None:
    clock = FakeClock()
    store = LaunchStore(clock, lifetime=60)
    a, b, c = store.create("p1", "azaguard"), store.create("p2", "azaguard"), store.create("p3", "azaguard")
    assert store.consume(a, "other-app") is None  # and it is gone now
    assert store.consume(a, "azaguard") is None
    found = store.consume(b, "azaguard")
    assert found is not None
    assert found.patient_id == "p2"
    assert store.consume(b, "azaguard") is None
    clock.advance(61)
    assert store.consume(c, "azaguard") is None


def test_patient_rows_and_names() -> None:
    bundle = {
        "entry": [
            {
                "resource": {
                    "resourceType": "Patient",
                    "id": "b",
                    "birthDate": "1970-01-02",
                    "name": [
                        {"use": "usual", "given": ["Bob"]},
                        {"use": "official", "given": ["Robert", "J"], "family": "Zed"},
                    ],
                }
            },
            {"resource": {"resourceType": "Patient", "id": "a", "name": [{"text": "Alice Able"}]}},
            {"resource": {"resourceType": "OperationOutcome"}},
        ]
    }
    rows = patient_rows(bundle)
    assert [(r.id, r.name, r.birth_date) for r in rows] == [
        ("a", "Alice Able", "unknown"),
        ("b", "Robert J Zed", "1970-01-02"),
    ]
    assert display_name({"resourceType": "Patient"}) == "(no name)"
