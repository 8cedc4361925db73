"""Bounded before trusted: the served app (SMART app + CDS Hooks, as `azaguard serve` runs it, on a real
uvicorn on 127.0.0.1) authenticates a CDS call before it reads the body, refuses a declared
Content-Length over the cap at once and stops a streamed body at the cap with 413."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from azaguard.config import CdsClient, load_app_config
from azaguard.web.app import served_app
from azaguard.websecurity import MAX_BODY_BYTES
from tests.cds.conftest import EHR_ISS, Ehr

WAIT = 20.0  # seconds a socket waits for an answer: a hang is a failure, not a slow pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(params=[False, True], ids=["signed", "insecure-sandbox"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[int]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    config = load_app_config(public_base=base).model_copy(update={
        "cds_clients": (CdsClient(iss=EHR_ISS, jwks=Ehr().jwks),),
        "cds_database_url": f"sqlite:///{tmp_path / 'cds.sqlite'}",
    })
    app = served_app(config, insecure_cds=request.param)
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.02)
    yield port
    srv.should_exit = True
    thread.join(10)


def _status(port: int, head: str, chunks: list[bytes] = (), *, auth: str = "") -> int:  # type: ignore[assignment]
    """Send the request head (and body chunks, as far as the server lets them in); the answer's status."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT) as s:
        s.sendall((head + auth + "\r\n").encode())
        for chunk in chunks:
            try:
                s.sendall(chunk)
            except OSError:
                break
        answer = b""
        while b"\r\n" not in answer:
            got = s.recv(4096)
            if not got:
                break
            answer += got
    return int(answer.split(b" ", 2)[1])


def _head(path: str, extra: str) -> str:
    return f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{extra}"


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


@pytest.mark.parametrize("path", ["/cds-services/azaguard-patient-view", "/cds-services/azaguard-patient-view/feedback",
                                  "/app/alerts"])
def test_a_huge_declared_body_is_refused_before_it_is_sent(server: int, path: str) -> None:
    status = _status(server, _head(path, "Content-Length: 10000000000\r\n"))
    assert status in (401, 413)


def test_an_unauthenticated_cds_call_is_refused_before_its_body_is_read(server: int, request: pytest.FixtureRequest
                                                                        ) -> None:
    if "insecure" in request.node.callspec.id:
        pytest.skip("the insecure sandbox authenticates no one")
    # A chunked body that never ends: the answer must come without it.
    status = _status(server, _head("/cds-services/azaguard-patient-view", "Transfer-Encoding: chunked\r\n"),
                     [_chunk(b" " * 65536)])
    assert status == 401


def test_a_streamed_body_over_the_cap_is_413(server: int, request: pytest.FixtureRequest) -> None:
    chunks = [_chunk(b" " * (1 << 20)) for _ in range(MAX_BODY_BYTES // (1 << 20) + 2)] + [b"0\r\n\r\n"]
    ehr = Ehr()
    # Signed by a key the service does not know: 401 (signed) or accepted (insecure), never read whole.
    token = ehr.token(f"http://127.0.0.1:{server}/cds-services/azaguard-patient-view")
    status = _status(server, _head("/cds-services/azaguard-patient-view", "Transfer-Encoding: chunked\r\n"), chunks,
                     auth=f"Authorization: Bearer {token}\r\n")
    assert status == (413 if "insecure" in request.node.callspec.id else 401)
    status = _status(server, _head("/app/alerts", "Transfer-Encoding: chunked\r\n"), chunks)
    assert status in (403, 413)  # refused before the form is read (no session), or cut off at the cap
