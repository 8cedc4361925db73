"""The outbound HTTP policy as transports: retries honouring Retry-After (httpretry), bounded reads
(httpbound), both under every client httpclient makes; and no module doing either on its own.

The transport is driven through an httpx.MockTransport with an injected clock, sleep and jitter (no
waiting); pytest-httpx shows that its mock still answers under the stack (it patches HTTPTransport)."""

from __future__ import annotations

import ast
import gzip
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from azaguard.httpbound import Bound, ResponseTooLarge, within
from azaguard.httpclient import client as outbound_client
from azaguard.httpretry import RETRY, RetryPolicy, parse_retry_after

URL = "http://127.0.0.1:8999/fhir/Patient/p1"
NOW = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
POLICY = RetryPolicy(frozenset({429, 502, 503, 504}), max_retries=3, backoff=0.5, max_backoff=10.0)
PACKAGE = Path(__file__).resolve().parents[1] / "plugin" / "azaguard"


class Server:
    """Answers from a script, one per request (the last repeats); records what was sent."""

    def __init__(self, *answers: httpx.Response | type[Exception]) -> None:
        self.answers = list(answers)
        self.sent: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type):
            raise answer("scripted", request=request)  # type: ignore[call-arg]
        return answer


def busy(status: int = 503, after: str | None = None) -> httpx.Response:
    return httpx.Response(status, headers={"Retry-After": after} if after is not None else {})


OK = httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})


Jitter = Callable[[float, float], float]


def run(server: Server, *, policy: RetryPolicy | None = POLICY, method: str = "GET",
        extensions: dict[str, object] | None = None, bound: Bound | None = None,
        uniform: Jitter = lambda low, high: high) -> tuple[httpx.Response, list[float]]:  # fmt: skip
    sleeps: list[float] = []
    with outbound_client(bound=bound or Bound(), retry=policy, transport=httpx.MockTransport(server),
                         sleep=sleeps.append, clock=NOW.timestamp, jitter=uniform) as client:  # fmt: skip
        response = client.request(method, URL, extensions=extensions)
    return response, sleeps


# --- Retry-After: the one reader, at the cap and either side ----------------------------------------------------


@pytest.mark.parametrize(("header", "waited"), [
    ("10", 10.0),  # exactly the cap
    ("9", 9.0),  # one second under
    ("11", 10.0),  # one second over: capped
    ("0", 0.0),
    (format_datetime(NOW + timedelta(seconds=3), usegmt=True), 3.0),  # an HTTP-date, from the injected clock
    (format_datetime(NOW - timedelta(hours=1), usegmt=True), 0.0),  # an HTTP-date in the past: now
    ("soon", 0.5),  # garbage: as if absent (full jitter; the injected jitter answers its ceiling)
    ("-3", 0.5),
    ("1.5", 0.5),  # delta-seconds are whole numbers
    (None, 0.5),  # absent
])  # fmt: skip
def test_retry_after_is_honoured_up_to_the_cap(header: str | None, waited: float) -> None:
    server = Server(busy(503, header), OK)
    response, sleeps = run(server)
    assert response.status_code == 200 and sleeps == [waited] and len(server.sent) == 2


def test_parse_retry_after_reads_seconds_and_dates_and_nothing_else() -> None:
    now = NOW.timestamp()
    assert parse_retry_after(" 7 ", now) == 7.0
    assert parse_retry_after(format_datetime(NOW + timedelta(seconds=61), usegmt=True), now) == 61.0
    assert parse_retry_after(format_datetime(NOW - timedelta(seconds=1), usegmt=True), now) == 0.0
    assert [parse_retry_after(v, now) for v in (None, "", "  ", "soon", "-1", "1e3", "Fri, 99 Foo")] == [None] * 7


def test_without_retry_after_the_backoff_doubles_under_full_jitter_and_is_capped() -> None:
    policy = RetryPolicy(frozenset({503}), max_retries=6, backoff=0.5, max_backoff=10.0)
    _, ceilings = run(Server(busy(), busy(), busy(), busy(), busy(), busy(), OK), policy=policy)
    assert ceilings == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0]  # the injected jitter answers each ceiling
    _, floors = run(Server(busy(), OK), policy=policy, uniform=lambda low, high: low)
    assert floors == [0.0]  # full jitter: anywhere from nothing


# --- attempts: exactly at the maximum and one over ----------------------------------------------------------------


def test_the_last_allowed_attempt_may_succeed() -> None:
    server = Server(busy(), busy(), busy(), OK)  # max_retries 3: four attempts
    response, sleeps = run(server)
    assert response.status_code == 200 and len(server.sent) == 4 and len(sleeps) == 3


def test_one_failure_more_is_answered_with_the_last_answer() -> None:
    server = Server(busy(), busy(), busy(), busy(502), OK)
    response, sleeps = run(server)
    assert response.status_code == 502 and len(server.sent) == 4 and len(sleeps) == 3


def test_no_retries_means_one_attempt() -> None:
    server = Server(busy(), OK)
    response, sleeps = run(server, policy=RetryPolicy(frozenset({503}), max_retries=0))
    assert response.status_code == 503 and len(server.sent) == 1 and sleeps == []


def test_an_answer_the_policy_does_not_name_is_final() -> None:
    for status in (500, 404, 401, 409):
        server = Server(busy(status), OK)
        response, sleeps = run(server)
        assert response.status_code == status and len(server.sent) == 1 and sleeps == []


def test_connection_failures_and_timeouts_are_retried_then_raised() -> None:
    server = Server(httpx.ConnectError, httpx.ReadTimeout, OK)
    response, sleeps = run(server)
    assert response.status_code == 200 and sleeps == [0.5, 1.0]
    with pytest.raises(httpx.ConnectError):
        run(Server(httpx.ConnectError))
    with pytest.raises(httpx.ConnectError):  # not retried: a POST
        run(Server(httpx.ConnectError, OK), method="POST")


# --- which requests: idempotent ones, or what the request itself carries --------------------------------------------


def test_a_post_is_not_retried_unless_it_carries_a_policy() -> None:
    server = Server(busy(), OK)
    response, sleeps = run(server, method="POST")
    assert response.status_code == 503 and len(server.sent) == 1 and sleeps == []
    server = Server(busy(), OK)  # e.g. the FHIR client's batch of reads or conditional create
    response, sleeps = run(server, method="POST", extensions={RETRY: POLICY})
    assert response.status_code == 200 and len(server.sent) == 2


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
def test_idempotent_methods_are_retried_by_default(method: str) -> None:
    server = Server(busy(), httpx.Response(200))
    assert run(server, method=method)[0].status_code == 200 and len(server.sent) == 2


def test_a_request_may_refuse_retries_and_a_client_may_have_none() -> None:
    server = Server(busy(), OK)
    assert run(server, extensions={RETRY: None})[0].status_code == 503 and len(server.sent) == 1
    server = Server(busy(), OK)
    assert run(server, policy=None)[0].status_code == 503 and len(server.sent) == 1


def test_a_body_over_the_cap_is_never_retried() -> None:
    server = Server(httpx.Response(200, content=b"x" * 2048), OK)
    with pytest.raises(ResponseTooLarge):
        run(server, bound=Bound(max_bytes=1024))
    assert len(server.sent) == 1


# --- the shared gate (a scan's pause) ----------------------------------------------------------------------------


class Gate:
    def __init__(self) -> None:
        self.events: list[object] = []

    def wait_open(self) -> None:
        self.events.append("wait")

    def answered(self, status: int, after: float | None) -> None:
        self.events.append((status, after))


def test_the_gate_is_consulted_before_every_attempt_and_told_every_answer() -> None:
    gate = Gate()
    server = Server(busy(429, "3"), OK)
    sleeps: list[float] = []
    with outbound_client(bound=Bound(), retry=POLICY, transport=httpx.MockTransport(server), gate=gate,
                         sleep=sleeps.append, clock=NOW.timestamp) as client:  # fmt: skip
        assert client.get(URL).status_code == 200
        assert client.post(URL).status_code == 200  # not retried, still seen
    assert gate.events == ["wait", (429, 3.0), "wait", (200, None), "wait", (200, None)]
    assert sleeps == [3.0]


# --- bounded reads: the client's property --------------------------------------------------------------------------


def unsized(size: int) -> httpx.Response:
    """A body without a Content-Length (chunked), in 100-byte pieces."""
    return httpx.Response(200, content=iter([b"x" * min(100, size - i) for i in range(0, size, 100)]))


def test_the_cap_holds_at_its_size_and_not_one_byte_over() -> None:
    assert run(Server(unsized(1024)), bound=Bound(max_bytes=1024))[0].content == b"x" * 1024
    for policy in (POLICY, None):  # read inside the retrying transport, or by the caller
        with pytest.raises(ResponseTooLarge, match="larger than 1024"):
            run(Server(unsized(1025)), bound=Bound(max_bytes=1024), policy=policy)


def test_the_cap_counts_decoded_bytes_and_trusts_no_declared_length() -> None:
    bomb = gzip.compress(b"0" * 100_000)
    answer = httpx.Response(200, content=bomb, headers={"Content-Encoding": "gzip"})
    with pytest.raises(ResponseTooLarge):
        run(Server(answer), bound=Bound(max_bytes=50_000))
    declared = httpx.Response(200, headers={"Content-Length": "5000000"}, content=b"")
    with pytest.raises(ResponseTooLarge, match="declares 5000000"):
        run(Server(declared), bound=Bound(max_bytes=1024))


def test_a_request_may_narrow_the_bound_never_widen_it() -> None:
    body = httpx.Response(200, content=b"x" * 2000)
    with pytest.raises(ResponseTooLarge):
        run(Server(body), bound=Bound(max_bytes=4000), extensions=within(max_bytes=1000))
    with pytest.raises(ResponseTooLarge):
        run(Server(body), bound=Bound(max_bytes=1000), extensions=within(max_bytes=1 << 30))


def test_each_read_waits_at_most_the_deadline() -> None:
    seen: list[dict[str, float]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200)

    with outbound_client(bound=Bound(deadline=2.0), transport=httpx.MockTransport(answer), timeout=30.0) as client:
        client.get(URL)
        client.get(URL, timeout=1.0)
    assert seen == [dict.fromkeys(("connect", "read", "write", "pool"), 2.0),
                    dict.fromkeys(("connect", "read", "write", "pool"), 1.0)]  # fmt: skip


def test_a_streamed_download_client_has_no_bound_of_the_clients() -> None:
    big = httpx.Response(200, content=b"x" * 4096)
    with outbound_client(bound=None, transport=httpx.MockTransport(Server(big))) as client, \
            client.stream("GET", URL) as response:  # fmt: skip
        assert sum(len(c) for c in response.iter_bytes()) == 4096


# --- metadata and config check's jwks_url: on the same stack as everything else -----------------------------------


def test_the_capability_statement_is_read_with_the_clients_retries(httpx_mock: HTTPXMock) -> None:
    from azaguard.fhir.client import FhirClient

    base = "http://127.0.0.1:8999/fhir"
    httpx_mock.add_response(url=f"{base}/metadata", status_code=503, headers={"Retry-After": "2"})
    httpx_mock.add_response(url=f"{base}/metadata", json={"resourceType": "CapabilityStatement", "rest": []})
    sleeps: list[float] = []
    with FhirClient(base, sleep=sleeps.append) as client:
        assert client.supports_batch() is False
    assert sleeps == [2.0] and client.request_count == 2


def test_config_check_reads_a_jwks_url_under_the_clients_bound(tmp_path: Path) -> None:
    import json

    from azaguard.config import AppConfig
    from azaguard.ops.configcheck import reachability_problems
    from tests.hardening.hostile import Reply, Request, Scripted

    def answer(r: Request) -> Reply:  # a key set without end (no length declared); no SMART configuration
        if r.path == "/jwks":
            return Reply(200, (b" " * 65536 for _ in range(64)), {"Content-Type": "application/json"})
        return Reply(404, b"")

    good = json.loads((PACKAGE.parents[1] / "smart_launch.json").read_text())
    with Scripted(answer) as server:
        config = AppConfig.model_validate({
            **good, "allowed_iss": [f"{server.origin}/fhir"], "session_store": "memory",
            "cds_database_url": f"sqlite:///{tmp_path / 'db'}",
            "cds_clients": [{"iss": "ehr", "jwks_url": f"{server.origin}/jwks"}]})  # fmt: skip
        problems = reachability_problems(config)
    assert problems[1:] == [f"CDS client ehr: jwks_url {server.origin}/jwks cannot be read (ResponseTooLarge)."]
    assert problems[0].startswith(f"allowed_iss {server.origin}/fhir: SMART discovery failed")


# --- a proxy from the environment is honoured, through the same stack ---------------------------------------------


def test_a_proxy_from_the_environment_is_used_with_the_same_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.hardening.hostile import Reply, Request, Scripted

    def answer(r: Request) -> Reply:  # a forward proxy sees the absolute URL; the host exists only behind it
        assert r.path == "http://ehr.invalid/fhir/metadata"
        return Reply(503, b"", {"Retry-After": "1"}) if len(server.requests) == 1 else Reply(200, b"{}")

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy",
                 "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    sleeps: list[float] = []
    with Scripted(answer) as server:
        monkeypatch.setenv("HTTP_PROXY", server.origin)
        with outbound_client(bound=Bound(), retry=POLICY, sleep=sleeps.append) as client:
            assert client.get("http://ehr.invalid/fhir/metadata").status_code == 200
    assert len(server.requests) == 2 and sleeps == [1.0]


# --- pytest-httpx still answers under the stack ---------------------------------------------------------------------


def test_pytest_httpx_mocks_the_connection_under_the_retrying_transport(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=URL, status_code=429, headers={"Retry-After": "2"})
    httpx_mock.add_response(url=URL, json={"resourceType": "Patient"})
    sleeps: list[float] = []
    with outbound_client(bound=Bound(), retry=POLICY, sleep=sleeps.append) as client:  # a real HTTPTransport inside
        assert client.get(URL).json() == {"resourceType": "Patient"}
    assert sleeps == [2.0] and len(httpx_mock.get_requests()) == 2


# --- Bulk Data: a kick-off answered 429 started nothing, and is sent again; other refusals end the export -------------


@pytest.mark.parametrize(("answers", "sent", "waits"), [
    ([busy(429, "2"), httpx.Response(202, headers={"Content-Location": "/status/1"})], 2, [2.0]),
    ([busy(429, "3600"), httpx.Response(202, headers={"Content-Location": "/status/1"})], 2, [60.0]),  # MAX_POLL
    # no Retry-After: full jitter under a doubling ceiling; the fourth 429 ends it (three retries)
    ([busy(429)] * 4 + [httpx.Response(202, headers={"Content-Location": "/status/1"})], 4, [1.0, 2.0, 4.0]),
    ([busy(503, "1"), httpx.Response(202, headers={"Content-Location": "/status/1"})], 1, []),  # may have started
])  # fmt: skip
def test_a_bulk_kick_off_answered_429_is_sent_again_after_its_retry_after(
    answers: list[httpx.Response], sent: int, waits: list[float]
) -> None:
    from azaguard.fhir.errors import FhirUnavailable
    from azaguard.scan.bulk import BulkExport

    server, delays = Server(*answers), []  # type: Server, list[float]
    export = BulkExport("http://127.0.0.1:8999/fhir", transport=httpx.MockTransport(server), sleep=delays.append)
    try:
        if sent == len(answers):
            assert export.kick_off(None, ["Patient"]).endswith("/status/1")
        else:
            with pytest.raises(FhirUnavailable):
                export.kick_off(None, ["Patient"])
    finally:
        export.close()
    assert len(server.sent) == sent and len(delays) == len(waits)
    assert all(0.0 <= d <= w for d, w in zip(delays, waits, strict=True))
    if answers[0].headers.get("Retry-After"):
        assert delays == waits


# --- one way: nobody else retries, reads Retry-After or builds a client ---------------------------------------------


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if not rel.startswith("sandbox/"):  # the simulated EHR (a server, and the test bench's own clients)
            yield rel, ast.parse(path.read_text(encoding="utf-8"))


def _reads_retry_after(node: ast.AST) -> bool:
    def named(arg: ast.AST) -> bool:
        return isinstance(arg, ast.Constant) and isinstance(arg.value, str) and arg.value.lower() == "retry-after"

    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get":
        return bool(node.args) and named(node.args[0])
    return isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and named(node.slice)


def _sleeps_in_a_loop(node: ast.AST) -> bool:
    if not isinstance(node, ast.While | ast.For):
        return False
    return any(isinstance(n, ast.Call) and "sleep" in ast.unparse(n.func).lower() for n in ast.walk(node))


def test_only_the_transport_reads_retry_after_or_http_dates() -> None:
    readers = sorted({rel for rel, tree in _modules() for node in ast.walk(tree) if _reads_retry_after(node)})
    parsers = sorted({rel for rel, tree in _modules() for node in ast.walk(tree)
                      if isinstance(node, ast.ImportFrom) and node.module == "email.utils"
                      and any(a.name.startswith("parsedate") for a in node.names)})  # fmt: skip
    assert readers == ["httpretry.py"] and parsers == ["httpretry.py"]


def test_only_the_transport_retries_in_a_loop() -> None:
    # Bulk Data's status polling is the protocol's cadence (202: still working), not a retry.
    loops = sorted({rel for rel, tree in _modules() for node in ast.walk(tree) if _sleeps_in_a_loop(node)})
    assert loops == ["httpretry.py", "scan/bulk.py"]


# httpx's module functions (httpx.get, ...) make a client of their own for the one request.
_VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "request", "stream")
_CLIENTS = {"httpx.Client", "httpx.AsyncClient", *(f"httpx.{verb}" for verb in _VERBS)}


def test_only_httpclient_builds_an_http_client() -> None:
    built = sorted({rel for rel, tree in _modules() for node in ast.walk(tree)
                    if isinstance(node, ast.Call) and ast.unparse(node.func) in _CLIENTS})
    assert built == ["httpclient.py"]


def test_the_checks_above_can_fail() -> None:
    loop = ast.parse("while True:\n    r = c.get(u)\n    time.sleep(parse(r.headers.get('Retry-After')))")
    assert any(_sleeps_in_a_loop(n) for n in ast.walk(loop)) and any(_reads_retry_after(n) for n in ast.walk(loop))
    built = ast.parse("c = httpx.Client(transport=t)")
    assert any(isinstance(n, ast.Call) and ast.unparse(n.func) == "httpx.Client" for n in ast.walk(built))
    setting = ast.parse("response.headers['Retry-After'] = '1'\nheaders = {'Retry-After': '1'}")
    assert not any(_reads_retry_after(n) for n in ast.walk(setting))
