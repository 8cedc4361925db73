"""The optional terminology server ($translate, $lookup) against a mocked transport (pytest-httpx)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from pytest_httpx import HTTPXMock

from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet
from azaguard.rules import evaluate
from azaguard.terminology.server import SERVER_TAG, TerminologyServer, enrich
from tests.clinical.builders import NOW, azathioprine, patient, recommendation

BASE = "http://127.0.0.1:8998/tx"
LOCAL = "http://hospital.example/drug-codes"
M = load_mappings()


@pytest.fixture()
def server() -> Iterator[TerminologyServer]:
    with FhirClient(BASE, max_retries=0, strict_search=False) as client:
        yield TerminologyServer(client, M)


def translated(system: str, code: str, display: str) -> dict[str, object]:
    return {
        "resourceType": "Parameters",
        "parameter": [
            {"name": "result", "valueBoolean": True},
            {"name": "match", "part": [
                {"name": "equivalence", "valueCode": "wider"},
                {"name": "concept", "valueCoding": {"system": system, "code": code, "display": display}},
            ]},
        ],
    }  # fmt: skip


NO_MATCH = {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": False}]}


def local_order(code: str = "AZA-50") -> dict[str, object]:
    order = azathioprine()
    order["medicationCodeableConcept"] = {"coding": [{"system": LOCAL, "code": code}]}
    return order


def test_a_local_code_translated_to_rxnorm_makes_the_patient_recognised(
    httpx_mock: HTTPXMock, server: TerminologyServer
) -> None:
    httpx_mock.add_response(
        url=re.compile(rf"{BASE}/ConceptMap/\$translate\?.*targetsystem=[^&]*rxnorm.*"),
        json=translated("http://www.nlm.nih.gov/research/umls/rxnorm", "1256", "azathioprine"),
    )
    httpx_mock.add_response(url=re.compile(rf"{BASE}/ConceptMap/\$translate\?.*"), json=NO_MATCH, is_reusable=True)
    httpx_mock.add_response(
        url=re.compile(rf"{BASE}/CodeSystem/\$lookup\?.*"),
        json={"resourceType": "Parameters", "parameter": [{"name": "display", "valueString": "Aza 50 (local)"}]},
    )
    rs = ResourceSet.from_resources([patient(), local_order(), recommendation("03")])
    before = evaluate(build_record(rs, M), M, NOW)
    # Without the server the nameless local code is an unidentified medication: never "not on azathioprine".
    assert next(f for f in before if f.rule == "vaccination-hold").status == "cannot-evaluate"
    assert enrich(rs, server) == []
    after = evaluate(build_record(rs, M), M, NOW)
    assert next(f for f in after if f.rule == "vaccination-hold").status == "hold"
    codings = rs.resources[1]["medicationCodeableConcept"]["coding"]
    assert {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1256", "display": "azathioprine",
            "userSelected": False} in codings


def test_codes_the_local_sets_know_are_never_sent(httpx_mock: HTTPXMock, server: TerminologyServer) -> None:
    rs = ResourceSet.from_resources([patient(), azathioprine()])
    assert enrich(rs, server) == []
    assert httpx_mock.get_requests() == []


def test_a_failing_server_changes_nothing_and_says_so(httpx_mock: HTTPXMock, server: TerminologyServer) -> None:
    httpx_mock.add_response(status_code=503, is_reusable=True)
    rs = ResourceSet.from_resources([patient(), local_order()])
    warnings = enrich(rs, server)
    assert len(warnings) == 1 and "local value sets only" in warnings[0]
    assert rs.resources[1]["medicationCodeableConcept"]["coding"] == [{"system": LOCAL, "code": "AZA-50"}]


def test_a_narrower_match_is_not_taken_as_the_same_drug(httpx_mock: HTTPXMock, server: TerminologyServer) -> None:
    narrower = translated("http://www.nlm.nih.gov/research/umls/rxnorm", "1256", "azathioprine")
    narrower["parameter"][1]["part"][0]["valueCode"] = "narrower"  # type: ignore[index]
    httpx_mock.add_response(url=re.compile(rf"{BASE}/ConceptMap/\$translate\?.*"), json=narrower, is_reusable=True)
    httpx_mock.add_response(url=re.compile(rf"{BASE}/CodeSystem/\$lookup\?.*"), json=NO_MATCH)
    rs = ResourceSet.from_resources([patient(), local_order()])
    enrich(rs, server)
    assert len(rs.resources[1]["medicationCodeableConcept"]["coding"]) == 1


def test_answers_are_memoised_per_code(httpx_mock: HTTPXMock, server: TerminologyServer) -> None:
    httpx_mock.add_response(url=re.compile(rf"{BASE}/ConceptMap/\$translate\?.*"), json=NO_MATCH, is_reusable=True)
    httpx_mock.add_response(
        url=re.compile(rf"{BASE}/CodeSystem/\$lookup\?.*"),
        json={"resourceType": "Parameters", "parameter": [{"name": "display", "valueString": "something"}]},
    )
    rs = ResourceSet.from_resources([patient(), local_order(), local_order()])
    enrich(rs, server)
    assert len(httpx_mock.get_requests()) == 4  # 3 translate targets + 1 lookup, once for both orders
    assert SERVER_TAG not in str(rs.resources[1])  # the display came from the server's lookup
