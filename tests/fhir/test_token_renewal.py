"""A refused token (401) is renewed in one place, the FHIR client: once per request, the request sent again
with the new token; requests refused together renew once (a loopback server that knows one good token)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from joserfc.jwk import ECKey

from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import AuthExpired, FhirError
from azaguard.scan.bulk import BulkExport
from azaguard.smart.backend import BackendServicesAuth, ClientKey
from tests.hardening.hostile import Reply, Request, Scripted

PATIENT = b'{"resourceType": "Patient", "id": "p1"}'


class Tokens:
    def __init__(self) -> None:
        self.current, self.renewals, self.lock = "old", 0, threading.Lock()

    def token(self) -> str:
        return self.current

    def renew(self, refused: str | None) -> None:
        with self.lock:
            if refused == self.current:
                self.current = f"new-{self.renewals}"
                self.renewals += 1


def _server(good: set[str]) -> Scripted:
    def answer(r: Request) -> Reply:
        if r.headers.get("authorization", "").removeprefix("Bearer ") in good:
            return Reply(200, PATIENT, {"Content-Type": "application/fhir+json"})
        return Reply(401, b'{"resourceType": "OperationOutcome"}', {"Content-Type": "application/fhir+json"})

    return Scripted(answer)


def test_a_refused_token_is_renewed_once_and_the_request_sent_again() -> None:
    tokens = Tokens()
    with _server({"new-0"}) as server, FhirClient(server.origin, token=tokens.token, renew=tokens.renew,
                                                  max_retries=0) as client:
        assert client.read("Patient", "p1")["id"] == "p1"
        assert client.read("Patient", "p1")["id"] == "p1"  # the new token serves on
        assert tokens.renewals == 1 and len(server.requests) == 3


def test_a_token_refused_again_after_renewal_is_auth_expired_not_a_loop() -> None:
    tokens = Tokens()
    with _server(set()) as server, FhirClient(server.origin, token=tokens.token, renew=tokens.renew,
                                              max_retries=3) as client, pytest.raises(AuthExpired):
        client.read("Patient", "p1")
    assert tokens.renewals == 1 and len(server.requests) == 2


def test_requests_refused_together_renew_once(tmp_path: Path) -> None:
    key = ClientKey(ECKey.generate_key("P-384"), "ES384", "k1")
    auth = BackendServicesAuth("https://ehr.example.org/fhir", "c1", key)
    fetched: list[int] = []
    auth._fetch = lambda: (fetched.append(1), setattr(auth, "_token", f"t{len(fetched)}"))  # type: ignore[method-assign,func-returns-value]
    auth._token = "t0"
    threads = [threading.Thread(target=auth.renew, args=("t0",)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert fetched == [1] and auth._token == "t1"
    auth.renew()  # unconditional when no refused token is named
    assert len(fetched) == 2


def test_the_bulk_export_renews_through_the_same_auth() -> None:
    tokens = Tokens()

    def answer(r: Request) -> Reply:
        if r.headers.get("authorization") != "Bearer new-0":
            return Reply(401, b"{}", {"Content-Type": "application/json"})
        return Reply(202, b"", {"Content-Location": "/status/1"})

    with Scripted(answer) as server:
        export = BulkExport(server.origin + "/fhir", token=tokens.token, renew=tokens.renew)
        try:
            assert export.kick_off(None, ["Patient"]).endswith("/status/1")
        finally:
            export.close()
    assert tokens.renewals == 1 and len(server.requests) == 2


def test_the_refused_answer_is_read_only_so_far_before_the_request_is_sent_again() -> None:
    tokens = Tokens()
    sent: list[int] = []

    def page() -> Iterator[bytes]:
        for _ in range(64):
            sent.append(1)
            yield b"x" * (1 << 20)

    def answer(r: Request) -> Reply:
        if r.headers.get("authorization") == "Bearer new-0":
            return Reply(200, PATIENT, {"Content-Type": "application/fhir+json"})
        return Reply(401, page(), {"Content-Type": "text/html"})

    with Scripted(answer) as server, FhirClient(server.origin, token=tokens.token, renew=tokens.renew,
                                                max_retries=0) as client, pytest.raises(FhirError):
        client.read("Patient", "p1")
    assert len(sent) < 64
