"""One request per patient (the existing alerts in the same batch), the remembered refusal of batch,
and the concurrent fallback: edge cases against the in-memory server of test_gather_httpx."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from azaguard.alerts import ALERT_ID_SYSTEM, DEVICE_ID_SYSTEM, FLAG_ID_SYSTEM, SOURCE_TAG
from azaguard.fhir import AuthDenied, FhirClient, FhirUnavailable, gather
from azaguard.fhir import memory as memory_module
from azaguard.fhir.memory import ServerMemory
from azaguard.mappings import Mappings, load_mappings
from azaguard.service import check_on_server
from tests.fhir.test_gather_httpx import (
    BASE,
    BATCH,
    NOW,
    RECORD_BATCH,
    RECORD_SEARCHES,
    FakeFhir,
    Res,
    medication,
    order,
    outcome,
    patient,
    wbc,
)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> ServerMemory:
    memory = ServerMemory()
    monkeypatch.setattr(memory_module, "PROCESS_MEMORY", memory)
    return memory


@pytest.fixture
def client() -> Iterator[FhirClient]:
    with FhirClient(BASE, sleep=lambda s: None, max_retries=1) as c:
        yield c


@pytest.fixture
def serve(httpx_mock: HTTPXMock) -> Callable[[FakeFhir], FakeFhir]:
    def install(fake: FakeFhir) -> FakeFhir:
        httpx_mock.add_callback(fake, is_reusable=True)
        return fake

    return install


OURS: Res = {"meta": {"tag": [SOURCE_TAG]}, "author": {"identifier": {"system": DEVICE_ID_SYSTEM, "value": "x"}}}


def issue(iid: str, pid: str = "p1", *, ours: bool = True) -> Res:
    system = ALERT_ID_SYSTEM if ours else "urn:other:system"
    return {
        **OURS,
        "resourceType": "DetectedIssue",
        "id": iid,
        "status": "final",
        "identifier": [{"system": system, "value": iid}],
        "patient": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "urn:azaguard:rule", "code": "blood-counts"}], "text": f"issue {iid}"},
    }


def flag(fid: str, pid: str = "p1") -> Res:
    return {
        **OURS,
        "resourceType": "Flag",
        "id": fid,
        "status": "active",
        "identifier": [{"system": FLAG_ID_SYSTEM, "value": fid}],
        "subject": {"reference": f"Patient/{pid}"},
        "code": {"coding": [{"system": "urn:azaguard:finding", "code": "blood-counts/wbc-low"}], "text": "hold"},
    }


def record() -> list[Res]:
    return [patient(), medication(), order("mr1"), wbc("o1"), issue("d1"), issue("d-other", ours=False), flag("f1")]


def test_existing_alerts_come_in_the_same_batch_and_other_patients_alerts_are_dropped(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir([*record(), issue("d-p2", "p2"), flag("f-p2", "p2")]))
    fake.ignore_patient_for |= {"DetectedIssue", "Flag"}  # a server without these search parameters
    got = gather(client, "p1", mappings, NOW)
    assert fake.log == [BATCH] and got.requests == 1
    assert [r["id"] for r in got.alert_issues or []] == ["d1", "d-other"]
    assert [r["id"] for r in got.alert_flags or []] == ["f1"]
    assert got.alerts_problem is None
    assert any("existing alerts" in w and "other patients" in w for w in got.warnings)
    # The alerts are not part of the record the rules read.
    assert not any(r["resourceType"] in ("DetectedIssue", "Flag") for r in got.resources.resources)


def test_without_alerts_the_batch_holds_only_the_record(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(record()))
    got = gather(client, "p1", mappings, NOW, alerts=False)
    assert fake.log == [RECORD_BATCH]
    assert got.alert_issues is None and got.alerts_problem is None


def test_alerts_the_token_may_not_read_are_a_problem_not_a_failure(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(record()))
    fake.entry_override["DetectedIssue"] = (403, outcome("scope does not allow DetectedIssue"))
    got = gather(client, "p1", mappings, NOW)
    assert got.alert_issues is None and got.alert_flags is None
    assert got.alerts_problem is not None and "403" in got.alerts_problem
    assert "Observation/o1" in {f"{r['resourceType']}/{r['id']}" for r in got.resources.resources}


def test_a_record_search_the_token_may_not_read_fails_the_gather(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(record()))
    fake.entry_override["Condition"] = (403, outcome("no Condition scope"))
    with pytest.raises(AuthDenied, match="active conditions"):
        gather(client, "p1", mappings, NOW)


def test_fallback_alert_search_refused_is_a_problem_too(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    fake = FakeFhir(record(), batch=False)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/Flag"):
            return httpx.Response(403, json=outcome("no Flag scope"))
        return fake(request)

    httpx_mock.add_callback(handler, is_reusable=True)
    got = gather(client, "p1", mappings, NOW)
    assert got.method == "concurrent"
    assert got.alerts_problem is not None and got.alert_flags is None


def test_fallback_sends_its_searches_at_once(httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings) -> None:
    fake = FakeFhir(record(), batch=False)
    expected = 1 + RECORD_SEARCHES + 2  # the Patient read, the record and alert searches, all in flight
    all_in = threading.Condition()
    in_flight = peak = 0

    def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        if request.method == "POST":
            return fake(request)
        with all_in:
            in_flight += 1
            peak = max(peak, in_flight)
            all_in.notify_all()
            # A server that answers only once every request has arrived (or after 5 s): sequential requests
            # would never overlap, however busy the machine.
            all_in.wait_for(lambda: peak >= expected, timeout=5)
        try:
            return fake(request)
        finally:
            with all_in:
                in_flight -= 1

    httpx_mock.add_callback(handler, is_reusable=True)
    got = gather(client, "p1", mappings, NOW)
    assert got.method == "concurrent"
    assert peak == expected


def test_a_busy_server_is_not_taken_for_one_without_batch(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings, fresh_memory: ServerMemory
) -> None:
    httpx_mock.add_response(method="POST", url=BASE, status_code=503, is_reusable=True)
    with pytest.raises(FhirUnavailable):
        gather(client, "p1", mappings, NOW)
    assert not fresh_memory.batch_refused(BASE)


def test_refusal_is_kept_on_disk_for_the_next_process_and_expires(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings, tmp_path: Path
) -> None:
    fake = serve(FakeFhir(record(), batch=False))
    path = tmp_path / "cache" / "fhir-servers.json"
    clock = [1000.0]
    gather(client, "p1", mappings, NOW, memory=ServerMemory(path, ttl=60, clock=lambda: clock[0]))
    assert BASE in json.loads(path.read_text())["batch_refused"]

    fake.log.clear()
    next_process = ServerMemory(path, ttl=60, clock=lambda: clock[0] + 30)
    assert gather(client, "p1", mappings, NOW, memory=next_process).method == "concurrent"
    assert not any(line.startswith("POST") for line in fake.log)

    fake.log.clear()
    fake.batch = True  # the server gained batch; once the entry expires it is tried again
    later = ServerMemory(path, ttl=60, clock=lambda: clock[0] + 61)
    got = gather(client, "p1", mappings, NOW, memory=later)
    assert got.method == "batch" and fake.log == [BATCH]


def test_an_unreadable_cache_file_only_costs_a_try(tmp_path: Path) -> None:
    path = tmp_path / "fhir-servers.json"
    path.write_text("{not json")
    memory = ServerMemory(path)
    assert not memory.batch_refused(BASE)
    memory.remember_batch_refused(BASE)
    assert ServerMemory(path).batch_refused(BASE + "/")


def test_check_on_server_reads_record_and_existing_alerts_in_one_request(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(record()))
    result = check_on_server(client, "p1", mappings=mappings, now=NOW)
    assert fake.log == [BATCH]
    assert result.requests == 1
    # azaguard's own alerts only (d-other has another system's identifier).
    assert sorted(a.reference for a in result.existing_alerts) == ["DetectedIssue/d1", "Flag/f1"]
    assert result.existing_alerts_problem is None


def test_a_whole_batch_refused_for_the_alerts_is_sent_again_without_them(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    fake = FakeFhir(record())

    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and b"DetectedIssue" in request.content:
            fake.log.append("POST refused")
            return httpx.Response(403, json=outcome("the token may not search DetectedIssue"))
        return fake(request)

    httpx_mock.add_callback(handler, is_reusable=True)
    got = gather(client, "p1", mappings, NOW)
    assert fake.log == ["POST refused", RECORD_BATCH]
    assert got.method == "batch" and got.requests == 2
    assert got.alerts_problem is not None and got.alert_issues is None
    assert "Observation/o1" in {f"{r['resourceType']}/{r['id']}" for r in got.resources.resources}


def test_a_batch_refused_without_the_alerts_too_is_denied(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    httpx_mock.add_response(method="POST", url=BASE, status_code=403, json=outcome("no access"), is_reusable=True)
    with pytest.raises(AuthDenied):
        gather(client, "p1", mappings, NOW)
    # The whole batch, then without the alerts, then without the searches a server may not answer (issue 17).
    assert len(httpx_mock.get_requests()) == 3
