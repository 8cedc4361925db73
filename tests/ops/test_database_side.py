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


def test_sessions_in_the_database_are_shared_between_replicas(database_url: str) -> None:
    """Two processes' session stores over one database: a launch begun on one is completed on the other,
    its state is single-use across both, and the launch is then visible to both."""
    from azaguard.ops.sessions import SharedSessionStore
    from azaguard.smart.discovery import SmartConfiguration
    from azaguard.smart.launch import TokenSet
    from azaguard.smart.session import LaunchContext, PendingAuthorization

    one, two = SharedSessionStore(DatabaseStore(database_url)), SharedSessionStore(DatabaseStore(database_url))
    smart = SmartConfiguration(iss="https://ehr/fhir", authorization_endpoint="https://ehr/auth",
                               token_endpoint="https://ehr/token", capabilities=frozenset({"launch-ehr"}),
                               code_challenge_methods=("S256",), jwks_uri=None, issuer=None, source="well-known")
    now = datetime.now(UTC)
    session = one.create(now, "10.0.0.1")
    one.add_pending(session, PendingAuthorization(state="st-1", iss=smart.iss, smart=smart, code_verifier="v" * 43,
                                                  redirect_uri="https://app/cb", scope="launch", launch="L",
                                                  created=now))
    seen = two.get(session.id, now)
    assert seen is not None and list(seen.pending) == ["st-1"]
    stale_copy = one.get(session.id, now)
    pending = two.take_pending(seen, "st-1", now)
    assert pending is not None and pending.code_verifier == "v" * 43
    assert stale_copy is not None and one.take_pending(stale_copy, "st-1", now) is None  # claimed once
    tokens = TokenSet(access_token="at", scope="launch patient/*.rs", patient="p1", need_patient_banner=False,
                      expires_at=now + timedelta(hours=1), refresh_token="rt")
    two.add_launch(seen, LaunchContext(id="ctx-1", iss=smart.iss, smart=smart, tokens=tokens,
                                       requested_scope="launch", identity=None, created=now))
    two.rotate(seen, now)
    assert one.get(session.id, now) is None  # the pre-login id is worthless on every replica
    again = one.get(seen.id, now)
    assert again is not None and one.launch(again, "ctx-1") is not None
    assert one.launch(again, "ctx-1").tokens == tokens  # type: ignore[union-attr]
    assert len(one) == len(two) == 1


def test_sessions_encrypted_in_the_shared_store_and_keys_rotate(tmp_path: object) -> None:
    from cryptography.fernet import Fernet

    from azaguard.ops.sessions import SharedSessionStore
    from azaguard.ops.store import MemoryStore

    shared = MemoryStore()
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = SharedSessionStore(shared, keys=[old])
    now = datetime.now(UTC)
    session = before.create(now, "10.0.0.1")
    raw = shared.get("session:" + session.id)
    assert raw is not None and session.csrf_token.encode() not in raw  # not in clear
    rotated = SharedSessionStore(shared, keys=[new, old])  # new encrypts, old still opens
    assert rotated.get(session.id, now) is not None
    assert SharedSessionStore(shared, keys=[new]).get(session.id, now) is None  # unknown key: no session
    assert SharedSessionStore(shared).get(session.id, now) is None  # encrypted, read without a key: none
