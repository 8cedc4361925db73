"""The audit trail: who accessed which patient's data, what, when, with what outcome, from where.

Recorded in the service's database (table `audit_event`, the same database as the CDS store) for:
a page view or check in the app (who: the fhirUser), a write of alerts from the app, a CDS Hooks
evaluation (who: the CDS client's iss and the user in the context), each patient of a scan (who: the
backend client), and every alert resource written (who: whoever caused it, from the context). Read
with `azaguard audit --since DATE [--patient ID]`.

Recording never raises into the caller: a database that fails is logged at ERROR and counted, and
the clinical answer goes out regardless. With `audit_fhir`, each record is also queued for the EHR
as a FHIR AuditEvent (ops.auditevent), written in batches by a background thread.
"""

from __future__ import annotations

import contextvars
import csv
import io
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, select

from azaguard import events
from azaguard.ops import logs
from azaguard.ops.database import engine_for
from azaguard.report import clean

log = logging.getLogger("azaguard.audit")

metadata = MetaData()
audit_event = Table(
    "audit_event", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("who", String(500), nullable=False),
    Column("user", String(500)),
    Column("patient", String(200), index=True),
    Column("action", String(64), nullable=False),
    Column("outcome", String(64), nullable=False),
    Column("source", String(200)),
    Column("detail", String(500)),
    Column("request_id", String(128)),
)  # fmt: skip


@dataclass(frozen=True)
class Actor:
    """Who is acting in this context: `who` the client (fhirUser, CDS client iss, backend client id),
    `user` the person when known apart from the client, `source` where the request came from,
    `fhir_base` the EHR (for AuditEvents)."""

    who: str
    source: str | None = None
    user: str | None = None
    fhir_base: str | None = None
    # The bearer token for AuditEvents sent to fhir_base (audit_fhir), read when sent; never stored.
    token: Callable[[], str | None] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    who: str
    user: str | None
    patient: str | None
    action: str
    outcome: str
    source: str | None
    detail: str | None
    request_id: str | None


actor: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("azaguard_actor", default=None)
Sink = Callable[[AuditRecord, Actor | None], None]


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class AuditTrail:
    """One per process (serve, demo, scan): `record` from any thread."""

    def __init__(self, database_url: str | None, *, now: Callable[[], datetime] | None = None) -> None:
        self.database_url = database_url
        self.now = now or (lambda: datetime.now(UTC))
        self._engine: Engine | None = None
        self._lock = threading.Lock()
        self.sinks: list[Sink] = []  # e.g. the FHIR AuditEvent writer
        self.default_actor: Actor | None = None  # who acts when the context does not say (a scan's workers)
        self.failures = 0

    @property
    def engine(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine = engine_for(self.database_url, metadata)
            return self._engine

    def record(
        self, action: str, *, patient: str | None, outcome: str, detail: str | None = None,
        who: Actor | None = None,
    ) -> None:
        """Record one access; never raises."""
        acting = who or actor.get() or self.default_actor or Actor(who="unknown")
        rec = AuditRecord(
            at=self.now(), who=acting.who[:500], user=(acting.user or None) and acting.user[:500],
            patient=(patient or None) and patient[:200], action=action[:64], outcome=outcome[:64],
            source=(acting.source or None) and acting.source[:200], detail=(detail or None) and detail[:500],
            request_id=logs.request_id.get(),
        )
        try:
            with self.engine.begin() as conn:
                conn.execute(audit_event.insert().values(**{**asdict(rec), "at": _utc(rec.at)}))
        except Exception as exc:
            self.failures += 1
            from azaguard.ops import metrics  # prometheus-client only when a record fails (`azaguard audit`)

            metrics.AUDIT_FAILURES.inc()
            log.error("audit record not stored", extra={"reason": type(exc).__name__, "action": action})
        for sink in self.sinks:
            try:
                sink(rec, acting)
            except Exception:
                log.exception("audit sink failed")

    def since(self, since: datetime, patient: str | None = None) -> list[AuditRecord]:
        query = select(audit_event).where(audit_event.c.at >= _utc(since))
        if patient:
            query = query.where(audit_event.c.patient == patient)
        query = query.order_by(audit_event.c.at, audit_event.c.id)
        with self.engine.connect() as conn:
            return [
                AuditRecord(at=_utc(r.at), who=r.who, user=r.user, patient=r.patient, action=r.action,
                            outcome=r.outcome, source=r.source, detail=r.detail, request_id=r.request_id)
                for r in conn.execute(query)
            ]

    def listen_for_alert_writes(self) -> None:
        """Every alert resource written becomes a record, attributed to the context's actor."""

        def on_write(*, patient: str, resource_type: str, outcome: str, rule: str | None = None, **_: Any) -> None:
            if outcome in ("would-write",):
                return
            self.record("alert.write", patient=patient, outcome=outcome,
                        detail=f"{resource_type} {rule or ''}".strip())

        events.listen(events.ALERT_WRITE, on_write)


def audit_scan(trail: AuditTrail, who: Actor) -> None:
    """Each patient of a scan (and each alert it writes) is recorded as accessed by `who`."""
    trail.default_actor = who
    trail.listen_for_alert_writes()

    def on_checked(*, patient: str, outcome: str, write: bool = False, **_: Any) -> None:
        trail.record("scan.write-alerts" if write else "scan.evaluate", patient=patient, outcome=outcome)

    events.listen(events.CHECKED, on_checked)


# --- reading it back ---------------------------------------------------------------------------------

COLUMNS = ("at", "who", "user", "patient", "action", "outcome", "source", "detail", "request_id")


def _row(r: AuditRecord) -> dict[str, str]:
    d = asdict(r)
    d["at"] = r.at.isoformat().replace("+00:00", "Z")
    return {k: "" if d[k] is None else str(d[k]) for k in COLUMNS}


def to_json(records: Iterable[AuditRecord]) -> str:
    return json.dumps([_row(r) for r in records], indent=1)


def to_csv(records: Iterable[AuditRecord]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records:
        writer.writerow(_row(r))
    return out.getvalue()


def to_table(records: Iterable[AuditRecord]) -> str:
    shown = ("at", "who", "patient", "action", "outcome", "source")
    rows = [[clean(_row(r)[k]) for k in shown] for r in records]
    if not rows:
        return "no audit records in that period"
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(shown)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(shown, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(line.rstrip() for line in lines)
