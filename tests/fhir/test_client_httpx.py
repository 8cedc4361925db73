"""FhirClient against a mocked transport (pytest-httpx): retries, errors, paging, batch, writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest
from pytest_httpx import HTTPXMock

from azaguard.fhir import (
    AuthDenied,
    AuthExpired,
    FhirClient,
    FhirConflict,
    FhirError,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    FhirUnavailable,
)
from azaguard.fhir.client import searchset_warnings

BASE = "http://127.0.0.1:8999/fhir"
PATIENT = {"resourceType": "Patient", "id": "p1"}
TOKEN = "secret-token-abc123"


def outcome(text: str, severity: str = "error") -> dict[str, object]:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": "processing", "diagnostics": text}],
    }


def searchset(
    resources: list[dict[str, object]], next_url: str | None = None, self_url: str | None = None
) -> dict[str, object]:
    links = [{"relation": "self", "url": self_url or f"{BASE}/Observation?page=self"}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r, "search": {"mode": "match"}} for r in resources],
    }


class Sleeps:
    """Records backoff delays instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def client(sleeps: Sleeps) -> Iterator[FhirClient]:
    with FhirClient(BASE, sleep=sleeps, backoff=0.5, max_backoff=10.0, max_retries=3) as c:
        yield c


# --- headers and tokens --------------------------------------------------------------


def test_read_sends_fhir_accept_and_no_authorization_without_token(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1") == PATIENT
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Accept"] == "application/fhir+json"
    assert "Authorization" not in request.headers
    assert client.request_count == 1


def test_static_token_is_sent_as_bearer(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    with FhirClient(BASE, token=TOKEN) as c:
        c.read("Patient", "p1")
    request = httpx_mock.get_request()
    assert request is not None
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_callable_token_is_read_again_for_every_request(httpx_mock: HTTPXMock) -> None:
    tokens = iter(["first", "refreshed"])
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT, is_reusable=True)
    with FhirClient(BASE, token=lambda: next(tokens)) as c:
        c.read("Patient", "p1")
        c.read("Patient", "p1")
    sent = [r.headers["Authorization"] for r in httpx_mock.get_requests()]
    assert sent == ["Bearer first", "Bearer refreshed"]


def test_error_messages_never_contain_the_token(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=401, json=outcome("token expired"))
    with FhirClient(BASE, token=TOKEN) as c, pytest.raises(AuthExpired) as info:
        c.read("Patient", "p1")
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value.args)


def test_ids_that_would_change_the_path_are_refused_before_sending(client: FhirClient) -> None:
    with pytest.raises(ValueError, match="not a FHIR resource id"):
        client.read("Patient", "../metadata")
    assert client.request_count == 0


# --- retries ---------------------------------------------------------------------------


def test_429_with_retry_after_seconds_waits_that_long(
    httpx_mock: HTTPXMock, client: FhirClient, sleeps: Sleeps
) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=429, headers={"Retry-After": "2"})
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1") == PATIENT
    assert sleeps.delays == [2.0]
    assert client.request_count == 2


def test_429_with_retry_after_http_date_waits_until_then(httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    then = datetime(2030, 1, 1, 12, 0, 7, tzinfo=UTC)
    httpx_mock.add_response(
        url=f"{BASE}/Patient/p1", status_code=429, headers={"Retry-After": format_datetime(then, usegmt=True)}
    )
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    now = datetime(2030, 1, 1, 12, 0, 4, tzinfo=UTC).timestamp()
    with FhirClient(BASE, sleep=sleeps, clock=lambda: now) as c:
        c.read("Patient", "p1")
    assert sleeps.delays == [3.0]


def test_retry_after_is_capped_at_max_backoff(httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=503, headers={"Retry-After": "3600"})
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    with FhirClient(BASE, sleep=sleeps, max_backoff=4.0) as c:
        c.read("Patient", "p1")
    assert sleeps.delays == [4.0]


def test_503_then_success_backs_off_within_the_first_step(
    httpx_mock: HTTPXMock, client: FhirClient, sleeps: Sleeps
) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=503)
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1") == PATIENT
    assert len(sleeps.delays) == 1
    assert 0.0 <= sleeps.delays[0] <= 0.5


def test_timeouts_then_success(httpx_mock: HTTPXMock, client: FhirClient, sleeps: Sleeps) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=f"{BASE}/Patient/p1")
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/Patient/p1")
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json=PATIENT)
    assert client.read("Patient", "p1") == PATIENT
    assert client.request_count == 3
    assert len(sleeps.delays) == 2


def test_timeouts_exhausted_raise_unavailable_with_exponential_caps(
    httpx_mock: HTTPXMock, client: FhirClient, sleeps: Sleeps
) -> None:
    for _ in range(4):
        httpx_mock.add_exception(httpx.ReadTimeout("slow"), url=f"{BASE}/Patient/p1")
    with pytest.raises(FhirUnavailable, match="did not answer GET Patient/p1"):
        client.read("Patient", "p1")
    assert client.request_count == 4  # 1 + max_retries
    assert len(sleeps.delays) == 3
    for attempt, delay in enumerate(sleeps.delays):
        assert 0.0 <= delay <= min(10.0, 0.5 * 2**attempt)


def test_503_exhausted_raises_unavailable_with_status(httpx_mock: HTTPXMock, sleeps: Sleeps) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=503, is_reusable=True)
    with FhirClient(BASE, sleep=sleeps, max_retries=2) as c, pytest.raises(FhirUnavailable) as info:
        c.read("Patient", "p1")
    assert info.value.status == 503
    assert c.request_count == 3


def test_500_is_a_server_fault_and_is_not_retried(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=500, json=outcome("database down"))
    with pytest.raises(FhirError) as info:
        client.read("Patient", "p1")
    assert not isinstance(info.value, FhirUnavailable | FhirRejected)
    assert info.value.outcome == "database down"
    assert client.request_count == 1


def test_plain_post_create_is_never_retried(httpx_mock: HTTPXMock, client: FhirClient, sleeps: Sleeps) -> None:
    httpx_mock.add_response(method="POST", url=f"{BASE}/Flag", status_code=503)
    with pytest.raises(FhirUnavailable):
        client.create({"resourceType": "Flag", "status": "active"})
    assert client.request_count == 1
    assert sleeps.delays == []


def test_plain_post_create_timeout_is_not_retried(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_exception(httpx.ReadTimeout("slow"), method="POST", url=f"{BASE}/Flag")
    with pytest.raises(FhirUnavailable):
        client.create({"resourceType": "Flag", "status": "active"})
    assert client.request_count == 1


def test_conditional_create_is_retried_and_sends_its_headers(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    flag = {"resourceType": "Flag", "id": "f1", "status": "active"}
    httpx_mock.add_response(method="POST", url=f"{BASE}/Flag", status_code=503)
    httpx_mock.add_response(
        method="POST",
        url=f"{BASE}/Flag",
        status_code=201,
        json=flag,
        headers={"Location": f"{BASE}/Flag/f1/_history/1", "ETag": 'W/"1"'},
    )
    result = client.create({"resourceType": "Flag", "status": "active"}, if_none_exist="identifier=urn:x|1")
    assert result.created is True
    assert result.status == 201
    assert result.location == f"{BASE}/Flag/f1/_history/1"
    assert result.etag == 'W/"1"'
    assert result.resource == flag
    assert client.request_count == 2
    last = httpx_mock.get_requests()[-1]
    assert last.headers["If-None-Exist"] == "identifier=urn:x|1"
    assert last.headers["Content-Type"] == "application/fhir+json"
    assert last.headers["Prefer"] == "return=representation"
    assert json.loads(last.content) == {"resourceType": "Flag", "status": "active"}


def test_conditional_create_that_finds_the_resource_is_not_created(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(
        method="POST", url=f"{BASE}/Flag", status_code=200, json={"resourceType": "Flag", "id": "f1"}
    )
    result = client.create({"resourceType": "Flag"}, if_none_exist="identifier=urn:x|1")
    assert result.created is False
    assert result.resource is not None and result.resource["id"] == "f1"


def test_conditional_create_with_several_matches_is_a_conflict(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(method="POST", url=f"{BASE}/Flag", status_code=412, json=outcome("2 matches"))
    with pytest.raises(FhirConflict) as info:
        client.create({"resourceType": "Flag"}, if_none_exist="identifier=urn:x|1")
    assert info.value.outcome == "2 matches"
    assert client.request_count == 1  # 412 is an answer, not a temporary failure


def test_update_sends_if_match_and_returns_the_new_etag(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(
        method="PUT",
        url=f"{BASE}/Flag/f1",
        json={"resourceType": "Flag", "id": "f1"},
        headers={"ETag": 'W/"3"'},
    )
    result = client.update({"resourceType": "Flag", "id": "f1", "status": "inactive"}, if_match='W/"2"')
    assert result.etag == 'W/"3"'
    assert result.created is False
    request = httpx_mock.get_request()
    assert request is not None and request.headers["If-Match"] == 'W/"2"'


# --- errors -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, FhirRejected),
        (404, FhirNotFound),
        (410, FhirNotFound),
        (409, FhirConflict),
        (412, FhirConflict),
        (422, FhirRejected),
        (401, AuthExpired),
        (403, AuthDenied),
    ],
)
def test_error_statuses_map_to_what_the_caller_should_do(
    httpx_mock: HTTPXMock, client: FhirClient, status: int, error: type[FhirError]
) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=status, json=outcome(f"because {status}"))
    with pytest.raises(error) as info:
        client.read("Patient", "p1")
    assert type(info.value) is error
    assert info.value.status == status
    assert info.value.outcome == f"because {status}"
    assert f"because {status}" in str(info.value)
    assert "GET Patient/p1" in str(info.value)
    assert client.request_count == 1


def test_outcome_details_text_is_used_when_there_are_no_diagnostics(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "details": {"text": "bad date"}}],
    }
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=400, json=body)
    with pytest.raises(FhirRejected) as info:
        client.read("Patient", "p1")
    assert info.value.outcome == "bad date"


def test_html_error_page_still_gives_a_typed_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", status_code=404, text="<html>nginx</html>")
    with pytest.raises(FhirNotFound) as info:
        client.read("Patient", "p1")
    assert info.value.outcome is None


def test_malformed_json_is_a_protocol_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", text='{"resourceType": "Patient", ')
    with pytest.raises(FhirProtocolError, match="not valid JSON"):
        client.read("Patient", "p1")


def test_wrong_resource_type_is_a_protocol_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Patient/p1", json={"resourceType": "Observation", "id": "p1"})
    with pytest.raises(FhirProtocolError, match="instead of a Patient"):
        client.read("Patient", "p1")


def test_search_that_is_not_a_bundle_is_a_protocol_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Observation?code=x", json=PATIENT)
    with pytest.raises(FhirProtocolError, match="instead of a Bundle"):
        client.search("Observation", {"code": "x"})


# --- search and paging -----------------------------------------------------------------------


def obs(i: int) -> dict[str, object]:
    return {"resourceType": "Observation", "id": f"o{i}"}


def test_search_follows_next_links_and_skips_outcomes(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    page1 = searchset([obs(1), obs(2)], next_url=f"{BASE}/Observation?page=2")
    page1["entry"].append({"resource": outcome("parameter foo ignored", "warning"), "search": {"mode": "outcome"}})  # type: ignore[attr-defined]
    httpx_mock.add_response(url=f"{BASE}/Observation?subject=Patient/p1&code=http://loinc.org|6690-2", json=page1)
    httpx_mock.add_response(
        url=f"{BASE}/Observation?page=2", json=searchset([obs(3)], self_url=f"{BASE}/Observation?page=2")
    )
    found = client.search("Observation", {"subject": "Patient/p1", "code": "http://loinc.org|6690-2"})
    assert [r["id"] for r in found] == ["o1", "o2", "o3"]
    assert searchset_warnings(page1) == ["parameter foo ignored"]
    assert all(r.headers["Prefer"] == "handling=strict" for r in httpx_mock.get_requests())
    assert client.request_count == 2


def test_strict_search_can_be_turned_off(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{BASE}/Observation?code=x", json=searchset([]))
    with FhirClient(BASE, strict_search=False) as c:
        c.search("Observation", {"code": "x"})
    request = httpx_mock.get_request()
    assert request is not None and "Prefer" not in request.headers


def test_next_link_loop_is_detected(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    a, b = f"{BASE}/Observation?page=a", f"{BASE}/Observation?page=b"
    httpx_mock.add_response(
        url=f"{BASE}/Observation?code=x",
        json=searchset([obs(1)], next_url=a, self_url=f"{BASE}/Observation?code=x"),
    )
    httpx_mock.add_response(url=a, json=searchset([obs(2)], next_url=b, self_url=a))
    httpx_mock.add_response(url=b, json=searchset([obs(3)], next_url=a, self_url=b))
    with pytest.raises(FhirProtocolError, match="paging loops"):
        client.search("Observation", {"code": "x"})
    assert client.request_count == 3


def test_runaway_paging_stops_at_max_pages(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(
        url=f"{BASE}/Observation?code=x", json=searchset([obs(0)], next_url=f"{BASE}/Observation?page=1")
    )
    for i in range(1, 3):
        url = f"{BASE}/Observation?page={i}"
        httpx_mock.add_response(
            url=url, json=searchset([obs(i)], next_url=f"{BASE}/Observation?page={i + 1}", self_url=url)
        )
    with FhirClient(BASE, max_pages=3) as c, pytest.raises(FhirProtocolError, match="more than 3 pages"):
        c.search("Observation", {"code": "x"})
    assert c.request_count == 3


def test_next_link_to_another_host_is_not_followed(httpx_mock: HTTPXMock) -> None:
    page = searchset([obs(1)], next_url="https://elsewhere.example/fhir/Observation?page=2")
    httpx_mock.add_response(url=f"{BASE}/Observation?code=x", json=page)
    with (
        FhirClient(BASE, token=TOKEN) as c,
        pytest.raises(FhirProtocolError, match="another address") as info,
    ):
        c.search("Observation", {"code": "x"})
    assert c.request_count == 1
    assert TOKEN not in str(info.value)


def test_relative_next_link_is_resolved_against_the_base(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/Observation?code=x", json=searchset([obs(1)], next_url="Observation?page=2"))
    httpx_mock.add_response(
        url=f"{BASE}/Observation?page=2", json=searchset([obs(2)], self_url=f"{BASE}/Observation?page=2")
    )
    assert [r["id"] for r in client.search("Observation", {"code": "x"})] == ["o1", "o2"]


# --- batch and capabilities ------------------------------------------------------------------


def test_batch_with_one_failed_entry_keeps_the_others(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    response = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [
            {"resource": PATIENT, "response": {"status": "200 OK"}},
            {"response": {"status": "404 Not Found", "outcome": outcome("Patient/zz not found")}},
            {"resource": searchset([obs(1)]), "response": {"status": "200"}},
            {"response": {"status": "201 Created", "location": "Flag/f9/_history/1"}},
        ],
    }
    httpx_mock.add_response(method="POST", url=BASE, json=response)
    entries = [
        {"request": {"method": "GET", "url": "Patient/p1"}},
        {"request": {"method": "GET", "url": "Patient/zz"}},
        {"request": {"method": "GET", "url": "Observation?code=x"}},
        {"request": {"method": "POST", "url": "Flag"}, "resource": {"resourceType": "Flag"}},
    ]
    results = client.batch(entries)
    assert [r.status for r in results] == [200, 404, 200, 201]
    assert [r.ok for r in results] == [True, False, True, True]
    assert results[0].resource == PATIENT
    assert results[1].resource is None and results[1].outcome == "Patient/zz not found"
    assert results[3].location == "Flag/f9/_history/1"
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent == {"resourceType": "Bundle", "type": "batch", "entry": entries}


def test_batch_of_reads_is_retried_but_a_batch_with_a_write_is_not(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    ok = {
        "resourceType": "Bundle",
        "type": "batch-response",
        "entry": [{"resource": PATIENT, "response": {"status": "200 OK"}}],
    }
    httpx_mock.add_response(method="POST", url=BASE, status_code=503)
    httpx_mock.add_response(method="POST", url=BASE, json=ok)
    httpx_mock.add_response(method="POST", url=BASE, status_code=503)
    assert client.batch([{"request": {"method": "GET", "url": "Patient/p1"}}])[0].status == 200
    assert client.request_count == 2
    with pytest.raises(FhirUnavailable):
        client.batch([{"request": {"method": "POST", "url": "Flag"}, "resource": {"resourceType": "Flag"}}])
    assert client.request_count == 3


def test_batch_response_with_missing_entries_is_a_protocol_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(
        method="POST", url=BASE, json={"resourceType": "Bundle", "type": "batch-response", "entry": []}
    )
    with pytest.raises(FhirProtocolError, match="batch of 1 entries"):
        client.batch([{"request": {"method": "GET", "url": "Patient/p1"}}])


def test_batch_entry_with_unreadable_status_is_a_protocol_error(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    body = {"resourceType": "Bundle", "type": "batch-response", "entry": [{"response": {"status": "fine"}}]}
    httpx_mock.add_response(method="POST", url=BASE, json=body)
    with pytest.raises(FhirProtocolError, match="unreadable status"):
        client.batch([{"request": {"method": "GET", "url": "Patient/p1"}}])


def capability(*codes: str) -> dict[str, object]:
    return {
        "resourceType": "CapabilityStatement",
        "rest": [{"mode": "server", "interaction": [{"code": c} for c in codes]}],
    }


def test_capabilities_are_fetched_once_and_tell_batch_support(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/metadata", json=capability("transaction", "batch"))
    assert client.supports_batch() is True
    assert client.supports_batch() is True
    assert client.request_count == 1


def test_server_without_batch_interaction(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    httpx_mock.add_response(url=f"{BASE}/metadata", json=capability("transaction", "history-system"))
    assert client.supports_batch() is False


def test_transaction_accepts_a_bundle_and_retries_only_puts(httpx_mock: HTTPXMock, client: FhirClient) -> None:
    put = {"resource": PATIENT, "request": {"method": "PUT", "url": "Patient/p1"}}
    post = {"resource": {"resourceType": "Flag"}, "request": {"method": "POST", "url": "Flag"}}
    answer = {"resourceType": "Bundle", "type": "transaction-response", "entry": [{"response": {"status": "200 OK"}}]}
    httpx_mock.add_response(method="POST", url=BASE, status_code=503)
    httpx_mock.add_response(method="POST", url=BASE, json=answer)
    httpx_mock.add_response(method="POST", url=BASE, status_code=503)
    results = client.transaction({"resourceType": "Bundle", "type": "transaction", "entry": [put]})
    assert [r.status for r in results] == [200]
    assert json.loads(httpx_mock.get_requests()[0].content)["type"] == "transaction"
    assert client.request_count == 2
    with pytest.raises(FhirUnavailable):
        client.transaction([post])
    assert client.request_count == 3
