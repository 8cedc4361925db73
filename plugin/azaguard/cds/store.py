"""The CDS service's durable state, in one SQL database (SQLite file by default, any SQLAlchemy URL,
e.g. PostgreSQL shared by several replicas): cards issued, feedback on them, JWT ids already seen.

No patient data is stored: a card is its uuid, rule, code, indicator and summary.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from azaguard.ops.database import DB_ENV, default_database_url, engine_for

if TYPE_CHECKING:
    from azaguard.ops.store import SharedStore

__all__ = ["DB_ENV", "CdsStore", "FeedbackEntry", "FeedbackRow", "default_database_url"]

metadata = MetaData()
cards = Table(
    "cds_card", metadata,
    Column("uuid", String(64), primary_key=True),
    Column("service", String(64), nullable=False),
    Column("rule", String(64), nullable=False),
    Column("code", String(128), nullable=False),
    Column("indicator", String(16), nullable=False),
    Column("summary", String(200), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip
feedback = Table(
    "cds_feedback", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("service", String(64), nullable=False),
    Column("card", String(64), nullable=False, index=True),
    Column("outcome", String(16), nullable=False),
    Column("reason_system", String(200)),
    Column("reason_code", String(128)),
    Column("reason_display", String(200)),
    Column("user_comment", Text),
    Column("accepted_suggestions", Text),  # JSON array of suggestion uuids
    Column("outcome_at", DateTime(timezone=True), nullable=False, index=True),
    Column("received_at", DateTime(timezone=True), nullable=False),
)  # fmt: skip
seen_jti = Table(
    "cds_seen_jti", metadata,
    Column("iss", String(500), primary_key=True),
    Column("jti", String(200), primary_key=True),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)  # fmt: skip


@dataclass(frozen=True)
class FeedbackRow:
    outcome_at: datetime
    service: str
    card: str
    outcome: str
    rule: str | None
    code: str | None
    summary: str | None
    reason_code: str | None
    reason_display: str | None
    user_comment: str | None
    accepted_suggestions: tuple[str, ...]


@dataclass(frozen=True)
class FeedbackEntry:
    card: str
    outcome: str  # accepted | overridden
    outcome_at: datetime
    reason: dict[str, Any] | None = None
    user_comment: str | None = None
    accepted_suggestions: tuple[str, ...] = ()


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


class CdsStore:
    """Opened on first use: building an app that could serve CDS Hooks touches no database."""

    def __init__(self, url: str | None = None, *, replay: SharedStore | None = None) -> None:
        self._url = url
        self._replay = replay  # JWT ids in the shared store (Redis) instead of the database, when given
        self._engine: Engine | None = None
        self._open_lock = threading.Lock()
        self._purge_lock = threading.Lock()
        self._last_purge = datetime.min.replace(tzinfo=UTC)

    @property
    def engine(self) -> Engine:
        with self._open_lock:
            if self._engine is None:
                self._engine = engine_for(self._url, metadata)
            return self._engine

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()

    # -- JWT replay cache ------------------------------------------------------------------------------

    def remember_jti(self, iss: str, jti: str, expires_at: datetime, now: datetime) -> bool:
        """Record a JWT id; False if it was already seen (a replay). Shared by every replica of the DB."""
        if self._replay is not None:
            ttl = max(1.0, (_utc(expires_at) - _utc(now)).total_seconds())
            return self._replay.add_once(f"jti:{iss}:{jti}", ttl)
        self._purge(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(seen_jti).values(iss=iss, jti=jti, expires_at=_utc(expires_at)))
        except IntegrityError:
            return False
        return True

    def _purge(self, now: datetime) -> None:
        # Expired ids can no longer be replayed (the JWT itself is refused): forget them now and then.
        with self._purge_lock:
            if (now - self._last_purge).total_seconds() < 60:
                return
            self._last_purge = now
        with self.engine.begin() as conn:
            conn.execute(delete(seen_jti).where(seen_jti.c.expires_at < _utc(now)))

    # -- cards and feedback -------------------------------------------------------------------------------

    def record_cards(self, service: str, issued: Iterable[Any], now: datetime) -> None:
        rows = [
            {"uuid": c.uuid, "service": service, "rule": c.rule, "code": c.code, "indicator": c.indicator,
             "summary": c.summary[:200], "issued_at": _utc(now)}
            for c in issued
        ]
        if not rows:
            return
        with self.engine.begin() as conn:
            known = set(conn.scalars(select(cards.c.uuid).where(cards.c.uuid.in_([r["uuid"] for r in rows]))))
            fresh = [r for r in rows if r["uuid"] not in known]
            if fresh:
                conn.execute(insert(cards), fresh)

    def add_feedback(self, service: str, entries: list[FeedbackEntry], now: datetime) -> None:
        rows = []
        for e in entries:
            reason = e.reason or {}
            rows.append({
                "service": service, "card": e.card, "outcome": e.outcome,
                "reason_system": reason.get("system"), "reason_code": reason.get("code"),
                "reason_display": reason.get("display"), "user_comment": e.user_comment,
                "accepted_suggestions": json.dumps(list(e.accepted_suggestions)),
                "outcome_at": _utc(e.outcome_at), "received_at": _utc(now),
            })  # fmt: skip
        with self.engine.begin() as conn:
            conn.execute(insert(feedback), rows)

    def feedback_since(self, since: datetime) -> list[FeedbackRow]:
        query = (
            select(feedback, cards.c.rule, cards.c.code, cards.c.summary)
            .select_from(feedback.outerjoin(cards, feedback.c.card == cards.c.uuid))
            .where(feedback.c.outcome_at >= _utc(since))
            .order_by(feedback.c.outcome_at, feedback.c.id)
        )
        with self.engine.connect() as conn:
            return [
                FeedbackRow(
                    outcome_at=_utc(r.outcome_at), service=r.service, card=r.card, outcome=r.outcome,
                    rule=r.rule, code=r.code, summary=r.summary, reason_code=r.reason_code,
                    reason_display=r.reason_display, user_comment=r.user_comment,
                    accepted_suggestions=tuple(json.loads(r.accepted_suggestions or "[]")),
                )
                for r in conn.execute(query)
            ]
