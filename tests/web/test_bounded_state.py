"""Nothing the app keeps per user grows without bound in the process: a flood of launches from many addresses,
and pages with writes, leave every container at or under its cap; per-launch memory (the signed-in user's name,
the outcome of a write) lives in the session, not in the app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from azaguard.config import load_app_config
from azaguard.ops.store import MemoryStore
from azaguard.smart import session as session_module
from azaguard.smart.session import SessionStore
from azaguard.web.launchflow import LaunchFlow, Redirect
from azaguard.websecurity import RateLimiter
from tests.clinical.builders import NOW
from tests.web.fake_ehr import ISS, FakeEhr
from tests.web.test_app import REPO_CONFIG, Harness

CONFIG = load_app_config(Path(__file__).resolve().parents[2] / "smart_launch.json")
FLOOD = 600


@pytest.fixture
def small_caps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(session_module, "MAX_ANONYMOUS", 40)
    monkeypatch.setattr(session_module, "MAX_ANONYMOUS_PER_ADDRESS", 3)
    monkeypatch.setattr(session_module, "MAX_SESSIONS", 30)
    yield


def test_a_flood_of_launches_from_many_addresses_stays_within_every_cap(small_caps: None) -> None:
    ehr = FakeEhr()
    sessions = SessionStore()
    limiter = RateLimiter(rate=1, burst=1, max_keys=50)
    flow = LaunchFlow(CONFIG, sessions, http=httpx.Client(transport=ehr.transport), limiter=limiter, now=lambda: NOW)
    completed = 0
    for i in range(FLOOD):
        address = f"10.{i // 250}.{i % 250}.1"
        started = flow.launch({"iss": ISS, "launch": f"L{i}"}, None, address)
        assert isinstance(started, Redirect)
        flow.launch({"iss": ISS, "launch": "again"}, None, address)  # refused by the rate limit: still counted
        flow.launch({"iss": f"https://evil{i}.example/fhir", "launch": "x"}, None, f"10.9.{i % 250}.{i // 250}")
        if i % 3 == 0:  # a third complete their launch: sessions with a launch
            state = next(iter(started.session.pending))
            done = flow.callback({"code": ehr.authorize(started.url), "state": state}, started.session.id, address)
            assert isinstance(done, Redirect)
            completed += 1
    assert completed == FLOOD // 3
    assert len(limiter._buckets) <= 50
    assert len(sessions._anonymous) <= 40
    assert len(sessions._sessions) <= 30
    assert len(sessions._owners) <= 40 * session_module.MAX_PENDING
    assert len(flow.discovery._entries) == 1


def test_the_app_keeps_no_per_user_container_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """After launches, pages, a write and its page, the app's own objects hold no dict, list or set: what a user's
    next request needs is in their session."""
    ehr = FakeEhr()
    harness = Harness(ehr, load_app_config(REPO_CONFIG), monkeypatch)
    ehr.grant = None
    for _ in range(3):
        url = harness.complete(harness.launch())
        assert harness.browser.get(url).status_code == 200
    ctx = parse_qs(urlsplit(url).query)["ctx"][0]
    session = next(s for s in harness.app.state.web.sessions.all() if ctx in s.launches)
    written = harness.browser.post("/app/alerts", data={"csrf_token": session.csrf_token, "ctx": ctx})
    assert written.status_code == 303
    assert session.launches[ctx].written is not None  # in the session until its page shows it
    assert "DetectedIssue/9" in harness.browser.get(written.headers["location"]).text
    assert session.launches[ctx].written is None  # shown once
    web = harness.app.state.web
    for owner in (web, web.flow, web.tokens, web.pages):
        for name, value in vars(owner).items():
            assert not isinstance(value, dict | list | set), f"{type(owner).__name__}.{name} is a {type(value)}"


def test_the_memory_store_drops_its_oldest_entries_beyond_its_cap() -> None:
    clock = {"t": 0.0}
    store = MemoryStore(clock=lambda: clock["t"], max_entries=100)
    for i in range(1_000):
        store.put(f"k{i}", b"v", ttl=3600)
        store.count(f"c{i}", ttl=3600)
    assert len(store._data) <= 100 and len(store._counts) <= 100
    assert store.get("k999") == b"v" and store.get("k0") is None

