"""CDS trust against hostile JWK Set hosts on 127.0.0.1: a drip, a bomb, deep JSON, made-up kids.
One fetch per URL at a time, re-fetches rate-limited, unknown kids remembered, every failure a 401."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.store import CdsStore
from azaguard.cds.trust import JwksCache, KeysPending, Untrusted
from azaguard.config import CdsClient, load_app_config
from azaguard.mappings import load_mappings
from azaguard.smart import jwks
from tests.cds.conftest import BASE, Ehr
from tests.hardening.hostile import Reply, Request, Scripted

PATH = "/cds-services/azaguard-patient-view"
AUD = BASE + PATH
SLOW_ISS, QUICK_ISS = "https://slow.example.org", "https://quick.example.org"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[CdsStore]:
    s = CdsStore(f"sqlite:///{tmp_path / 'cds.sqlite'}")
    yield s
    s.close()


def _service(store: CdsStore, clients: tuple[CdsClient, ...]) -> CdsService:
    config = load_app_config(public_base=BASE).model_copy(update={"cds_clients": clients})
    return CdsService(config, mappings=load_mappings(), store=store, jwks=JwksCache())


def _auth(ehr: Ehr, iss: str, **kw: Any) -> str:
    return f"Bearer {ehr.token(AUD, iss=iss, **kw)}"


def _verify(service: CdsService, authorization: str) -> str:
    """Verify as the CDS routes do: a key set being fetched is waited for, then the token verified again."""
    for _ in range(3):
        try:
            return service.verifier.verify(authorization, AUD).iss
        except KeysPending as pending:
            pending.flight.result()
    return service.verifier.verify(authorization, AUD).iss


def test_a_dripping_jwks_host_costs_one_fetch_and_holds_no_caller(
    store: CdsStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jwks, "JWKS_DEADLINE", 2.0)
    ehr, quick = Ehr(), Ehr()
    sent: list[int] = []

    def drip() -> Iterator[bytes]:
        for _ in range(400):  # 100 s at this pace: far past any deadline
            sent.append(1)
            yield b" "

    with Scripted(lambda r: Reply(200, drip(), {"Content-Type": "application/json"}, drip=0.25)) as host:
        url = host.origin + "/jwks"
        clients = (CdsClient(iss=SLOW_ISS, jwks_url=url), CdsClient(iss=QUICK_ISS, jwks=quick.jwks))
        service = _service(store, clients)
        answers = []
        for _ in range(6):  # the first starts the fetch; none waits for it, none starts another
            with pytest.raises(KeysPending) as pending:
                service.verifier.verify(_auth(ehr, SLOW_ISS), AUD)
            answers.append(str(pending.value))
        assert service.verifier.verify(_auth(quick, QUICK_ISS), AUD).iss == QUICK_ISS
        service.verifier.jwks.wait(url)  # the fetch ends at its deadline, on its own thread
        with pytest.raises(Untrusted) as failed:
            service.verifier.verify(_auth(ehr, SLOW_ISS), AUD)
        assert len(host.requests) == 1
    assert all("being fetched" in text for text in answers)
    assert "could not be read" in str(failed.value) and "longer than" in str(failed.value)
    assert len(sent) < 400  # the drip was cut off by the deadline


def test_made_up_kids_do_not_make_the_service_fetch_again(store: CdsStore) -> None:
    ehr = Ehr()
    jwks = json.dumps(ehr.jwks).encode()
    with Scripted(lambda r: Reply(200, jwks, {"Content-Type": "application/json"})) as host:
        service = _service(store, (CdsClient(iss=SLOW_ISS, jwks_url=host.origin + "/jwks"),))
        assert _verify(service, _auth(ehr, SLOW_ISS)) == SLOW_ISS
        for i in range(10):
            stranger = ECKey.generate_key("P-384", parameters={"kid": f"made-up-{i % 2}"})
            with pytest.raises(Untrusted):
                _verify(service, _auth(ehr, SLOW_ISS, key=stranger))
        assert len(host.requests) == 1


def test_a_jwks_bomb_is_cut_at_the_cap_and_deep_json_is_a_401(store: CdsStore) -> None:
    ehr = Ehr()
    sent: list[int] = []

    def bomb() -> Iterator[bytes]:
        yield b'{"keys": ["'
        for _ in range(64):
            sent.append(1)
            yield b"A" * (1 << 20)
        yield b'"]}'

    def answer(r: Request) -> Reply:
        if r.path == "/deep":
            return Reply(200, b"[" * 100_000 + b"]" * 100_000, {"Content-Type": "application/json"})
        return Reply(200, bomb(), {"Content-Type": "application/json"})

    with Scripted(answer) as host:
        for path in ("/bomb", "/deep"):
            service = _service(store, (CdsClient(iss=SLOW_ISS, jwks_url=host.origin + path),))
            with TestClient(Starlette(routes=cds_routes(service))) as client:
                r = client.post(PATH, content=b"{}", headers={"Authorization": _auth(ehr, SLOW_ISS)})
            assert r.status_code == 401, (path, r.text)
            assert "could not be read" in r.json()["message"]
    assert len(sent) < 64
