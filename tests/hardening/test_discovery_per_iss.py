"""One lock per iss: a launch at an EHR whose discovery hangs does not hold launches at another EHR, and
concurrent launches at one EHR share its one discovery (loopback servers, the real DiscoveryCache)."""

from __future__ import annotations

import json
import threading
import time

import httpx

from azaguard.smart.discovery import DiscoveryCache, SmartConfiguration
from tests.hardening.hostile import Reply, Request, Scripted

WAIT = 20.0  # the slow EHR answers at the latest after this: a hang is a failure, not a slow pass


def _config(origin: str) -> bytes:
    return json.dumps({"authorization_endpoint": origin + "/auth", "token_endpoint": origin + "/token",
                       "capabilities": ["launch-ehr"]}).encode()


def test_a_slow_ehr_holds_only_its_own_launches() -> None:
    release = threading.Event()

    def slow(r: Request) -> Reply:
        release.wait(WAIT)
        return Reply(200, _config("http://127.0.0.1"), {"Content-Type": "application/json"})

    def quick(r: Request) -> Reply:
        return Reply(200, _config("http://127.0.0.1"), {"Content-Type": "application/json"})

    cache = DiscoveryCache()
    found: list[SmartConfiguration] = []
    with Scripted(slow) as slow_ehr, Scripted(quick) as quick_ehr, httpx.Client() as http:
        launches = [threading.Thread(target=lambda: found.append(cache.discover(slow_ehr.origin, http)))
                    for _ in range(3)]
        launches[0].start()
        while not slow_ehr.requests:
            time.sleep(0.01)
        for t in launches[1:]:
            t.start()
        other = cache.discover(quick_ehr.origin, http)  # not behind the slow EHR's discovery
        held = [t.is_alive() for t in launches]
        release.set()
        for t in launches:
            t.join(WAIT)
    assert other.token_endpoint == "http://127.0.0.1/token"
    assert held == [True, True, True]
    assert len(found) == 3
    assert len(slow_ehr.requests) == 1  # the three launches shared one discovery
