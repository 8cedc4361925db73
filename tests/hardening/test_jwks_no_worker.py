"""A slow JWKS host holds no serving worker: the CDS service on a real uvicorn with ONE worker thread, a
JWK Set host on 127.0.0.1 that answers only when the test lets it. While the set is being fetched, another
issuer's call is answered; the calls that need the set wait for it without a thread and are then verified
(200), and the host is asked once."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio.to_thread
import httpx
import pytest
import uvicorn
from starlette.applications import Starlette

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.store import CdsStore
from azaguard.cds.trust import JwksCache
from azaguard.config import CdsClient, load_app_config
from azaguard.mappings import load_mappings
from azaguard.smart import jwks
from tests.cds.conftest import Ehr
from tests.hardening.hostile import Reply, Scripted

SLOW_ISS, QUICK_ISS = "https://slow.example.org", "https://quick.example.org"
WAIT = 20.0  # seconds a client waits for an answer: a hang is a failure, not a slow pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _one_worker(app: Starlette) -> AsyncIterator[None]:
    anyio.to_thread.current_default_thread_limiter().total_tokens = 1  # every sync handler shares ONE thread
    yield


@contextlib.contextmanager
def _serving(service: CdsService, port: int) -> Iterator[None]:
    app = Starlette(routes=cds_routes(service), lifespan=_one_worker)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(10)


def test_the_call_that_needs_a_slow_jwks_holds_no_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jwks, "JWKS_DEADLINE", 60.0)  # the host answers when the test says, however loaded
    slow, quick = Ehr(), Ehr()
    release = threading.Event()

    def answer(_: object) -> Reply:
        release.wait(WAIT)
        return Reply(200, json.dumps(slow.jwks).encode(), {"Content-Type": "application/json"})

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    aud = base + "/cds-services"
    store = CdsStore(f"sqlite:///{tmp_path / 'cds.sqlite'}")
    with Scripted(answer) as host:
        config = load_app_config(public_base=base).model_copy(update={"cds_clients": (
            CdsClient(iss=SLOW_ISS, jwks_url=host.origin + "/jwks"), CdsClient(iss=QUICK_ISS, jwks=quick.jwks))})
        service = CdsService(config, mappings=load_mappings(), store=store, jwks=JwksCache())
        answers: dict[str, httpx.Response] = {}

        def discover(name: str, ehr: Ehr, iss: str) -> None:
            answers[name] = httpx.get(aud, headers={"Authorization": f"Bearer {ehr.token(aud, iss=iss)}"},
                                      timeout=WAIT)

        with _serving(service, port):
            waiting = [threading.Thread(target=discover, args=(f"slow-{i}", slow, SLOW_ISS)) for i in range(3)]
            waiting[0].start()
            while not host.requests:
                time.sleep(0.01)
            for t in waiting[1:]:
                t.start()
            discover("quick", quick, QUICK_ISS)  # the one worker is free: answered while the fetch hangs
            pending = [t.is_alive() for t in waiting]
            release.set()
            for t in waiting:
                t.join(WAIT)
    store.close()
    assert answers["quick"].status_code == 200
    assert pending == [True, True, True]  # still waiting for the key set when the other issuer was served
    for i in range(3):
        assert answers[f"slow-{i}"].status_code == 200, answers[f"slow-{i}"].text
    assert len(host.requests) == 1


def test_the_served_app_has_one_jwks_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """`azaguard serve`: the CDS clients' key sets and the EHRs' id_token keys in one cache."""
    from azaguard.web.app import served_app

    made: list[JwksCache] = []
    original = JwksCache.__init__

    def counted(self: JwksCache, *args: object, **kwargs: object) -> None:
        made.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(JwksCache, "__init__", counted)
    config = load_app_config(public_base="http://127.0.0.1:8999").model_copy(
        update={"cds_database_url": f"sqlite:///{tmp_path / 'cds.sqlite'}"})
    served_app(config)
    assert len(made) == 1
