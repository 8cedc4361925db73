"""The launch flow without a web server: launch → authorize URL; callback → token exchange → a launch in a new
session. Driven with plain dicts for the query and an in-memory EHR behind httpx.MockTransport."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from azaguard.config import load_app_config
from azaguard.smart.session import SessionStore
from azaguard.web.launchflow import (
    STATE_MISMATCH,
    LaunchFlow,
    Redirect,
    Refusal,
    authorization,
    callback_refusal,
    exchange_request,
    iss_refusal,
)
from azaguard.websecurity import RateLimiter
from tests.clinical.builders import NOW
from tests.web.fake_ehr import AUTHORIZE, ISS, TOKEN, FakeEhr

CONFIG = load_app_config(Path(__file__).resolve().parents[2] / "smart_launch.json")


def _flow(ehr: FakeEhr, *, rate: int = 30) -> tuple[LaunchFlow, SessionStore]:
    sessions = SessionStore()
    flow = LaunchFlow(CONFIG, sessions, http=httpx.Client(transport=ehr.transport),
                      limiter=RateLimiter(rate=rate, burst=rate), now=lambda: NOW)
    return flow, sessions


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_a_launch_becomes_an_authorize_url_bound_to_a_state_in_a_new_session() -> None:
    ehr = FakeEhr()
    flow, sessions = _flow(ehr)
    outcome = flow.launch({"iss": ISS, "launch": "L1"}, None, "10.0.0.1")
    assert isinstance(outcome, Redirect) and outcome.status == 302
    assert outcome.url.startswith(AUTHORIZE + "?")
    q = _query(outcome.url)
    assert (q["launch"], q["aud"], q["code_challenge_method"]) == ("L1", ISS, "S256")
    assert list(outcome.session.pending) == [q["state"]]
    assert sessions.all() == [outcome.session]


def test_the_callback_exchanges_the_code_with_the_verifier_and_rotates_the_session() -> None:
    ehr = FakeEhr()
    flow, sessions = _flow(ehr)
    started = flow.launch({"iss": ISS, "launch": "L1"}, None, "10.0.0.1")
    assert isinstance(started, Redirect)
    pending = next(iter(started.session.pending.values()))
    before = started.session.id
    code = ehr.authorize(started.url)
    done = flow.callback({"code": code, "state": pending.state}, before, "10.0.0.1")
    assert isinstance(done, Redirect) and done.status == 303
    ctx = next(iter(done.session.launches.values()))
    assert done.url == f"/?ctx={ctx.id}"
    assert done.session.id != before and sessions.get(before, NOW) is None  # no fixation
    assert ctx.patient_id == "p1" and ctx.iss == ISS
    token_calls = [r for r in ehr.requests if str(r.url) == TOKEN]
    form = parse_qs(token_calls[0].content.decode())
    assert form["code_verifier"] == [pending.code_verifier] and form["code"] == [code]
    # Single use: the same callback again is a state mismatch.
    assert flow.callback({"code": code, "state": pending.state}, done.session.id, "10.0.0.1") == STATE_MISMATCH


def test_pure_steps_need_no_session_store_and_no_http() -> None:
    assert iss_refusal(CONFIG, "") is not None
    refused = iss_refusal(CONFIG, "https://elsewhere.example/fhir")
    assert isinstance(refused, Refusal) and refused.status == 400
    assert iss_refusal(CONFIG, CONFIG.allowed_iss[0]) is None
    assert callback_refusal({"error": "access_denied"}) is not None
    assert callback_refusal({"state": "s"}) == Refusal(400, "Launch refused",
                                                       "The authorization response carried no code.")
    assert callback_refusal({"code": "c"}) is None
    from azaguard.smart.discovery import SmartConfiguration

    smart = SmartConfiguration(iss=ISS, authorization_endpoint=AUTHORIZE, token_endpoint=TOKEN,
                               capabilities=frozenset({"launch-ehr", "permission-v2"}),
                               code_challenge_methods=("S256",), jwks_uri=None, issuer=None, source="well-known")
    pending, url = authorization(CONFIG, smart, iss=ISS, launch="L9", scopes=None, now=NOW)
    assert _query(url)["state"] == pending.state and pending.launch == "L9" and pending.created == NOW
    exchange = exchange_request(pending, "the-code")
    assert (exchange.code, exchange.code_verifier, exchange.redirect_uri) == (
        "the-code", pending.code_verifier, CONFIG.redirect_uri)


def test_launches_beyond_the_rate_are_refused_with_retry_after_and_no_session() -> None:
    ehr = FakeEhr()
    flow, sessions = _flow(ehr, rate=2)
    outcomes = [flow.launch({"iss": ISS, "launch": f"L{i}"}, None, "10.0.0.9") for i in range(3)]
    assert [isinstance(o, Redirect) for o in outcomes] == [True, True, False]
    refused = outcomes[2]
    assert isinstance(refused, Refusal) and refused.status == 429 and refused.retry_after
    assert len(sessions) == 2


def test_a_stale_state_is_refused() -> None:
    ehr = FakeEhr()
    sessions = SessionStore()
    clock = {"now": NOW}
    flow = LaunchFlow(CONFIG, sessions, http=httpx.Client(transport=ehr.transport), limiter=RateLimiter(),
                      now=lambda: clock["now"])
    started = flow.launch({"iss": ISS, "launch": "L1"}, None, "10.0.0.1")
    assert isinstance(started, Redirect)
    state = next(iter(started.session.pending))
    clock["now"] = NOW + sessions.pending_ttl + timedelta(seconds=1)
    code = ehr.authorize(started.url)
    assert flow.callback({"code": code, "state": state}, started.session.id, "10.0.0.1") == STATE_MISMATCH
