from __future__ import annotations

from datetime import UTC, datetime, timedelta

from azaguard.smart.discovery import SmartConfiguration
from azaguard.smart.session import PendingAuthorization, SessionStore

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SMART = SmartConfiguration(
    "https://e/fhir", "https://e/auth", "https://e/token", frozenset(), (), None, None, "well-known"
)


def _pending(state: str, at: datetime = NOW) -> PendingAuthorization:
    return PendingAuthorization(
        state=state,
        iss="https://e/fhir",
        smart=SMART,
        code_verifier="v",
        redirect_uri="https://a/cb",
        scope="launch",
        launch="L",
        created=at,
    )


def test_pending_state_is_single_use() -> None:
    store = SessionStore()
    session = store.create(NOW)
    store.add_pending(session, _pending("s1"))
    assert store.take_pending(session, "s1", NOW) is not None
    assert store.take_pending(session, "s1", NOW) is None
    assert store.take_pending(session, "other", NOW) is None


def test_pending_state_expires() -> None:
    store = SessionStore(pending_ttl=timedelta(minutes=10))
    session = store.create(NOW)
    store.add_pending(session, _pending("s1"))
    assert store.take_pending(session, "s1", NOW + timedelta(minutes=11)) is None


def test_sessions_expire_when_idle_and_ids_are_random() -> None:
    store = SessionStore(idle_timeout=timedelta(hours=1))
    a, b = store.create(NOW), store.create(NOW)
    assert a.id != b.id and a.csrf_token != b.csrf_token and len(a.id) >= 43
    assert store.get(a.id, NOW + timedelta(minutes=59)) is a
    assert store.get(a.id, NOW + timedelta(minutes=59) + timedelta(hours=1, seconds=1)) is None
    assert store.get("forged", NOW) is None
    assert store.get(None, NOW) is None
