"""The audit trail, also sent to the EHR as FHIR AuditEvents (`audit_fhir: true`), in the shape of IHE
Basic Audit Log Patterns (BALP) for R4: a patient-identifiable query (views, hook and scan evaluations:
IHE.BasicAudit.PatientQuery) or create/update (alert writes: IHE.BasicAudit.PatientCreate/PatientUpdate).

Client = azaguard (DICOM 110153 Source Role ID), server = the FHIR server (110152 Destination Role ID),
the user (fhirUser / the hook's userId) as the requestor, the patient as entity (type 1 Person, role 1
Patient). Written in batches (a FHIR batch Bundle per server and token) by one background thread; `submit`
never waits and never raises: a full queue drops the event (counted), a refused batch is logged.
"""

from __future__ import annotations

import base64
import logging
import queue
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirError
from azaguard.ops.audit import Actor, AuditRecord

log = logging.getLogger("azaguard.audit")

BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit."
DCM = "http://dicom.nema.org/resources/ontology/DCM"
EVENT_TYPE = "http://terminology.hl7.org/CodeSystem/audit-event-type"
INTERACTION = "http://hl7.org/fhir/restful-interaction"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
ENTITY_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
BATCH_SIZE = 50
BATCH_WAIT = 2.0  # seconds an event waits for others to share its batch


def _outcome(outcome: str) -> str:
    """BALP/FHIR outcome: 0 success, 4 minor failure (refused), 8 serious failure."""
    if outcome in ("evaluated", "created", "exists", "updated", "closed"):
        return "0"
    return "4" if outcome.startswith("refused") else "8"


def balp_resource(rec: AuditRecord, actor: Actor) -> dict[str, Any]:
    write = rec.action == "alert.write"
    kind = ("PatientCreate" if rec.outcome == "created" else "PatientUpdate") if write else "PatientQuery"
    interaction = ("create" if rec.outcome == "created" else "update") if write else "search"
    agents: list[dict[str, Any]] = [
        {"type": {"coding": [{"system": DCM, "code": "110153", "display": "Source Role ID"}]},
         "who": {"display": "azaguard"}, "requestor": False,
         **({"network": {"address": rec.source, "type": "2"}} if rec.source else {})},
        {"type": {"coding": [{"system": DCM, "code": "110152", "display": "Destination Role ID"}]},
         "who": {"identifier": {"system": "urn:ietf:rfc:3986", "value": actor.fhir_base or ""}},
         "requestor": False, "network": {"address": actor.fhir_base or "", "type": "5"}},
    ]
    user = rec.user or (rec.who if "/" in rec.who and not rec.who.startswith("http") else None)
    if user:
        agents.append({"type": {"coding": [{"system": PARTICIPATION, "code": "IRCP",
                                             "display": "information recipient"}]},
                       "who": {"reference": user} if _is_reference(user) else {"display": user}, "requestor": True})
    entities: list[dict[str, Any]] = [{
        "what": {"reference": f"Patient/{rec.patient}"},
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": ENTITY_ROLE, "code": "1", "display": "Patient"},
    }]  # fmt: skip
    if not write:
        entities.append({
            "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
            "role": {"system": ENTITY_ROLE, "code": "24", "display": "Query"},
            "query": base64.b64encode(f"azaguard {rec.action}: the record of Patient/{rec.patient}".encode()).decode(),
        })  # fmt: skip
    else:
        entities.append({"type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
                         "role": {"system": ENTITY_ROLE, "code": "4", "display": "Domain Resource"},
                         "description": rec.detail or ""})
    return {
        "resourceType": "AuditEvent",
        "id": str(uuid.uuid4()),
        "meta": {"profile": [BALP + kind]},
        "type": {"system": EVENT_TYPE, "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": INTERACTION, "code": interaction}],
        "action": ("C" if interaction == "create" else "U") if write else "E",
        "recorded": rec.at.isoformat().replace("+00:00", "Z"),
        "outcome": _outcome(rec.outcome),
        "outcomeDesc": f"{rec.action}: {rec.outcome}",
        "agent": agents,
        "source": {"observer": {"display": "azaguard"},
                   "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}]},
        "entity": entities,
    }


def _is_reference(text: str) -> bool:
    return text.count("/") >= 1 and not text.startswith("unauthenticated") and " " not in text


Item = tuple[str, Callable[[], str | None] | None, dict[str, Any]]


class AuditEventWriter:
    """One per process: a queue and a daemon thread posting batch Bundles of AuditEvents."""

    _process: AuditEventWriter | None = None

    def __init__(self, *, max_queue: int = 10_000, client_factory: Callable[..., Any] | None = None) -> None:
        self.queue: queue.Queue[Item] = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self._client_factory = client_factory
        self._idle = threading.Event()
        self._idle.set()
        self._thread = threading.Thread(target=self._run, name="azaguard-auditevents", daemon=True)
        self._thread.start()

    @classmethod
    def for_process(cls) -> AuditEventWriter:
        if cls._process is None:
            cls._process = cls()
        return cls._process

    def submit(self, rec: AuditRecord, actor: Actor | None) -> None:
        if actor is None or not actor.fhir_base or not rec.patient:
            return  # no EHR to write to (a Bundle file, an unauthenticated call)
        try:
            self._idle.clear()
            self.queue.put_nowait((actor.fhir_base, actor.token, balp_resource(rec, actor)))
        except queue.Full:
            self.dropped += 1
            log.warning("AuditEvent dropped", extra={"reason": "queue full"})

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until everything submitted was sent (tests, shutdown)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.queue.empty() and self._idle.wait(0.05):
                return True
        return False

    def _run(self) -> None:
        while True:
            first = self.queue.get()
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT
            while len(batch) < BATCH_SIZE:
                try:
                    batch.append(self.queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            groups: dict[tuple[str, int], list[Item]] = {}
            for item in batch:
                groups.setdefault((item[0], id(item[1])), []).append(item)
            for (base, _), items in groups.items():
                self._send(base, items[-1][1], [i[2] for i in items])
            if self.queue.empty():
                self._idle.set()

    def _send(self, base: str, token: Callable[[], str | None] | None, resources: list[dict[str, Any]]) -> None:
        entries = [{"resource": r, "request": {"method": "POST", "url": "AuditEvent"}} for r in resources]
        try:
            factory = self._client_factory or FhirClient
            with factory(base, token=token, max_retries=2) as client:
                results = client.batch(entries)
            ok = sum(1 for r in results if r.ok)
            self.written += ok
            self.failed += len(results) - ok
            if ok < len(results):
                log.warning("AuditEvents refused", extra={"refused": len(results) - ok, "host": base})
        except (FhirError, ValueError) as exc:
            self.failed += len(resources)
            log.warning("AuditEvents not written", extra={"reason": type(exc).__name__, "count": len(resources)})
        except Exception:
            self.failed += len(resources)
            log.exception("AuditEvents not written")
