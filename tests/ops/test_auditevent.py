"""audit_fhir: the audit trail as IHE BALP AuditEvents on the FHIR server, batched, never in the way."""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fhir.resources.R4B.auditevent import AuditEvent

from azaguard.ops.audit import Actor, AuditRecord
from azaguard.ops.auditevent import BALP, AuditEventWriter, balp_resource
from azaguard.sandbox.server import SandboxServer

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def record(action: str, outcome: str, patient: str = "p-audit-1", user: str | None = None) -> AuditRecord:
    return AuditRecord(at=NOW, who="Practitioner/dr-a", user=user, patient=patient, action=action, outcome=outcome,
                       source="10.0.0.7", detail="DetectedIssue blood-counts", request_id="r1")


def test_balp_shapes_are_valid_r4_audit_events() -> None:
    actor = Actor(who="Practitioner/dr-a", source="10.0.0.7", fhir_base="https://ehr.example.org/fhir")
    view = balp_resource(record("app.view", "evaluated"), actor)
    AuditEvent.model_validate(view)
    assert view["meta"]["profile"] == [BALP + "PatientQuery"] and view["action"] == "E" and view["outcome"] == "0"
    assert view["subtype"][0]["code"] == "search"
    roles = {a["type"]["coding"][0]["code"]: a for a in view["agent"]}
    assert roles["110153"]["network"]["address"] == "10.0.0.7"
    assert roles["110152"]["who"]["identifier"]["value"] == "https://ehr.example.org/fhir"
    assert roles["IRCP"]["who"] == {"reference": "Practitioner/dr-a"} and roles["IRCP"]["requestor"] is True
    patient = view["entity"][0]
    assert patient["what"] == {"reference": "Patient/p-audit-1"} and patient["role"]["code"] == "1"
    created = balp_resource(record("alert.write", "created"), actor)
    AuditEvent.model_validate(created)
    assert created["meta"]["profile"] == [BALP + "PatientCreate"] and created["action"] == "C"
    refused = balp_resource(record("app.view", "refused 403"), actor)
    assert refused["outcome"] == "4"


@pytest.mark.integration
def test_batched_to_the_fhir_server(fhir_server: SandboxServer) -> None:
    writer = AuditEventWriter()
    actor = Actor(who="Practitioner/dr-a", source="10.0.0.7", fhir_base=fhir_server.base_url)
    for action, outcome in (("app.view", "evaluated"), ("alert.write", "created"), ("app.view", "evaluated")):
        writer.submit(record(action, outcome, patient="p-audit-batch"), actor)
    assert writer.flush(60)
    assert (writer.written, writer.failed, writer.dropped) == (3, 0, 0)
    found = httpx.get(f"{fhir_server.base_url}/AuditEvent", params={"_count": "200"}, timeout=30).json()
    mine = [e["resource"] for e in found.get("entry", [])
            if e["resource"]["entity"][0]["what"].get("reference") == "Patient/p-audit-batch"]
    assert sorted(r["action"] for r in mine) == ["C", "E", "E"]


class _Blocked:
    """A FHIR client that waits until released: the EHR is slow or gone."""

    release = threading.Event()
    entered = threading.Event()
    sent: list[list[dict[str, Any]]] = []  # noqa: RUF012 - shared on purpose

    def __init__(self, base: str, **_: Any) -> None:
        pass

    def __enter__(self) -> _Blocked:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def batch(self, entries: list[dict[str, Any]]) -> list[Any]:
        self.entered.set()
        self.release.wait(30)
        self.sent.append(entries)
        return []


def test_submit_never_waits_and_a_full_queue_drops() -> None:
    writer = AuditEventWriter(max_queue=2, client_factory=_Blocked)
    actor = Actor(who="x", fhir_base="https://ehr.example.org/fhir")
    writer.submit(record("app.view", "evaluated"), actor)
    assert _Blocked.entered.wait(30)  # the worker is stuck sending it
    for _ in range(5):  # the server does not answer: every submit still returns at once
        writer.submit(record("app.view", "evaluated"), actor)
    assert writer.dropped == 3  # the queue holds 2
    writer.submit(record("app.view", "evaluated"), Actor(who="x"))  # no EHR: nothing to send
    _Blocked.release.set()
    assert writer.flush(30)
    assert sum(len(b) for b in _Blocked.sent) == 6 - writer.dropped
