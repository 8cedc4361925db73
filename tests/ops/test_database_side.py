"""The database side on SQLite and on a real PostgreSQL: CDS feedback, the JWT replay cache, the audit
trail and the database-backed shared store (sessions, single-use states, rate counters)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azaguard.cds.store import CdsStore, FeedbackEntry
from azaguard.ops.audit import Actor, AuditTrail
from azaguard.ops.store import DatabaseStore

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


class _Card:
    def __init__(self, uuid: str) -> None:
        self.uuid, self.rule, self.code, self.indicator, self.summary = uuid, "blood-counts", "wbc-low", "warning", "x"


def test_cds_feedback_and_replay_cache(database_url: str) -> None:
    store = CdsStore(database_url)
    store.record_cards("azaguard-patient-view", [_Card("c1")], NOW)
    store.add_feedback("azaguard-patient-view", [FeedbackEntry("c1", "overridden", NOW,
                                                               reason={"code": "not-relevant"})], NOW)
    rows = store.feedback_since(NOW - timedelta(days=1))
    assert [(r.card, r.outcome, r.rule, r.reason_code) for r in rows] == [("c1", "overridden", "blood-counts",
                                                                          "not-relevant")]
    assert store.feedback_since(NOW + timedelta(seconds=1)) == []
    expires = NOW + timedelta(minutes=5)
    assert store.remember_jti("https://ehr", "jti-1", expires, NOW) is True
    assert store.remember_jti("https://ehr", "jti-1", expires, NOW) is False  # replayed
    assert store.remember_jti("https://other-ehr", "jti-1", expires, NOW) is True  # per issuer


def test_audit_trail_records_and_filters(database_url: str) -> None:
    clock = iter([NOW, NOW + timedelta(minutes=1), NOW + timedelta(minutes=2)])
    trail = AuditTrail(database_url, now=lambda: next(clock))
    who = Actor(who="Practitioner/dr-a", source="10.0.0.7")
    trail.record("app.view", patient="p1", outcome="evaluated", who=who)
    trail.record("cds.azaguard-patient-view", patient="p2", outcome="evaluated",
                 who=Actor(who="https://ehr.example.org", user="Practitioner/dr-b", source="10.0.0.8"))
    trail.record("app.write-alerts", patient="p1", outcome="refused 403", who=who)
    everything = trail.since(NOW)
    assert [(r.action, r.patient, r.who, r.outcome) for r in everything] == [
        ("app.view", "p1", "Practitioner/dr-a", "evaluated"),
        ("cds.azaguard-patient-view", "p2", "https://ehr.example.org", "evaluated"),
        ("app.write-alerts", "p1", "Practitioner/dr-a", "refused 403"),
    ]
    assert everything[1].user == "Practitioner/dr-b" and everything[0].source == "10.0.0.7"
    assert [r.action for r in trail.since(NOW, patient="p1")] == ["app.view", "app.write-alerts"]
    assert [r.action for r in trail.since(NOW + timedelta(seconds=90))] == ["app.write-alerts"]


def test_shared_store_in_the_database(database_url: str) -> None:
    store = DatabaseStore(database_url)
    assert store.ping() is None
    store.put("session:a", b"one", 60)
    store.put("session:a", b"two", 60)  # replaced
    assert store.get("session:a") == b"two"
    assert store.live("session:") == 1
    assert store.take("session:a") == b"two"
    assert store.take("session:a") is None  # single use
    store.put("gone", b"x", -1)  # already expired
    assert store.get("gone") is None
    assert store.add_once("state:s1", 60) is True
    assert store.add_once("state:s1", 60) is False
    assert [store.count("rate:k", 60) for _ in range(3)] == [1, 2, 3]
    assert store.count("rate:other", 60) == 1
