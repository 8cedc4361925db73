"""`azaguard scan` against hostile servers on 127.0.0.1: a Bulk Data server with bombs, drips, odd manifests
and escape sequences; an authorization server with drips, bombs, deep JSON, odd token lifetimes and scopes.
Every failure is one sentence and exit 3, never a traceback or exit 0."""

from __future__ import annotations

import functools
import gzip
import io
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from joserfc.jwk import ECKey

from azaguard.cli import build_parser
from azaguard.mappings import load_mappings
from azaguard.scan import bulk
from azaguard.scan.command import EXIT_OK, EXIT_SERVER, run
from azaguard.scan.progress import make_progress
from azaguard.smart.backend import BackendServicesAuth, load_private_key
from tests.hardening.hostile import Reply, Request, Scripted

MAPPINGS = load_mappings()
NOW = "2026-11-01T12:00:00Z"
NDJSON = {"Content-Type": "application/fhir+ndjson"}


def _scan(base: str, out: Path, *extra: str) -> tuple[int, str]:
    args = build_parser().parse_args(["scan", "--fhir-url", base, "--out", str(out), "--now", NOW, *extra])
    err = io.StringIO()
    try:
        code = run(args, MAPPINGS, stderr=err)
    except Exception as exc:  # what the test forbids: shown as a failure with its text
        pytest.fail(f"traceback: {type(exc).__name__}: {exc}")
    return code, err.getvalue()


def _bulk_server(outputs: Callable[[str], list[dict[str, Any]]], files: dict[str, Reply],
                 status: Callable[[int], Reply] | None = None) -> Scripted:
    polls: list[int] = []

    def answer(r: Request) -> Reply:
        path = r.path.split("?", 1)[0]
        if path.endswith("/$export"):
            return Reply(202, b"", {"Content-Location": "/status"})
        if path == "/status":
            polls.append(1)
            if status is not None and (reply := status(len(polls))) is not None:
                return reply
            manifest = {"transactionTime": "2026-11-01T00:00:00Z", "requiresAccessToken": False,
                        "output": outputs(server.origin), "error": []}
            return Reply(200, json.dumps(manifest).encode(), {"Content-Type": "application/json"})
        if path in files:
            return files[path]
        return Reply(404, b"")

    server = Scripted(answer)
    return server


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6)


@functools.cache
def _bomb_file() -> bytes:
    return _gzip(b'{"resourceType":"Patient","id":"p"}\n' * 200_000)  # 7 MB unpacked, 30 kB packed


def _drip() -> Iterator[bytes]:
    for _ in range(500):
        yield b"{"


@pytest.mark.parametrize("case", ["file-url", "closed-port", "odd-type", "bomb-file", "bomb-encoding", "drip",
                                  "cut-gzip"])
def test_a_hostile_export_is_one_sentence_and_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      case: str) -> None:
    monkeypatch.setattr(bulk, "MAX_FILE_BYTES", 1 << 20)
    monkeypatch.setattr(bulk, "DOWNLOAD_DEADLINE", 2.0)
    bomb = _bomb_file()
    files = {
        "/bomb-file": Reply(200, bomb, NDJSON),
        "/bomb-encoding": Reply(200, bomb, {**NDJSON, "Content-Encoding": "gzip"}),
        "/drip": Reply(200, _drip(), NDJSON, drip=0.1),
        "/cut-gzip": Reply(200, _gzip(b'{"resourceType":"Patient","id":"p"}\n' * 1000)[:-30], NDJSON),
    }

    def outputs(origin: str) -> list[dict[str, Any]]:
        if case == "file-url":
            return [{"type": "Patient", "url": "file:///etc/passwd"}]
        if case == "closed-port":
            return [{"type": "Patient", "url": "http://127.0.0.1:1/Patient.ndjson"}]
        if case == "odd-type":
            return [{"type": "../../etc/cron.d/x", "url": origin + "/drip"}]
        return [{"type": "Patient", "url": origin + "/" + case}]

    with _bulk_server(outputs, files) as server:
        code, err = _scan(server.origin + "/fhir", tmp_path / "out", "--bulk")
    assert code == EXIT_SERVER, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("azaguard scan: FHIR server error: ") and "Traceback" not in err
    expected = {"file-url": "not an http(s) URL", "closed-port": "failed (ConnectError)",
                "odd-type": "not a resource type", "bomb-file": "larger than the cap per file",
                "bomb-encoding": "larger than the cap per file", "drip": "took longer than 2 s",
                "cut-gzip": "cut short"}
    assert expected[case] in last, last


def test_error_pages_and_the_closing_delete_are_read_bounded(tmp_path: Path) -> None:
    """A download answered 500 with a 64 MB page, and the DELETE that ends an export answered with one: each
    read only as far as an error page goes (ERROR_BYTES), never whole."""
    sent = {"download": 0, "delete": 0}

    def page(which: str) -> Iterator[bytes]:
        for _ in range(64):
            sent[which] += 1
            yield b"<html>" + b"x" * (1 << 20)

    patient = json.dumps({"resourceType": "Patient", "id": "p1"}).encode() + b"\n"

    def outputs(origin: str) -> list[dict[str, Any]]:
        return [{"type": "Patient", "url": origin + "/Patient.ndjson"}]

    with _bulk_server(outputs, {"/Patient.ndjson": Reply(500, page("download"), {"Content-Type": "text/html"})}) \
            as failing:
        code, err = _scan(failing.origin + "/fhir", tmp_path / "out1", "--bulk")
    assert code == EXIT_SERVER and "500" in err.strip().splitlines()[-1], err
    deleting: list[str] = []
    with _bulk_server(outputs, {"/Patient.ndjson": Reply(200, patient, NDJSON)}) as server:
        original = server.answer

        def answer(r: Request) -> Reply:
            if r.method == "DELETE":
                deleting.append(r.path)
                return Reply(202, page("delete"), {"Content-Type": "text/html"})
            return original(r)

        server.answer = answer
        code, err = _scan(server.origin + "/fhir", tmp_path / "out2", "--bulk")
    assert code == EXIT_OK, err
    assert deleting == ["/status"]
    assert sent["download"] < 64 and sent["delete"] < 64, sent


def test_polling_honours_retry_after_with_a_floor_and_backs_off_on_zero(tmp_path: Path) -> None:
    def status(poll: int) -> Reply | None:
        if poll <= 4:  # "ready now" four times, then a header with control characters, then 0.01 s
            return Reply(202, b"", {"Retry-After": "0", "X-Progress": "step\x1b[2J\x1b]0;owned\x07 " + str(poll)})
        if poll == 5:
            return Reply(429, b"", {"Retry-After": "0"})
        return None

    with _bulk_server(lambda origin: [], {}, status) as server:
        delays: list[float] = []
        exporter = bulk.BulkExport(server.origin + "/fhir", sleep=delays.append)
        err = io.StringIO()
        try:
            exporter.run(tmp_path / "export", group=None, progress=make_progress(err))
        finally:
            exporter.close()
    assert len(delays) == 5
    assert all(d >= bulk.MIN_POLL for d in delays)
    assert delays == sorted(delays) and delays[-1] > delays[0]  # backing off, never a loop
    assert "\x1b" not in err.getvalue() and "\x07" not in err.getvalue() and "step" in err.getvalue()


# --- SMART Backend Services: the authorization server ---------------------------------------------------------


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key.pem"
    path.write_bytes(ECKey.generate_key("P-384", parameters={"kid": "k1"}).as_pem(private=True))
    path.chmod(0o600)
    return path


def _auth_server(token: Callable[[Request], Reply], config: Callable[[str], Reply] | None = None) -> Scripted:
    def answer(r: Request) -> Reply:
        if r.path.endswith("/.well-known/smart-configuration"):
            if config is not None:
                return config(server.origin)
            body = {"token_endpoint": server.origin + "/token", "grant_types_supported": ["client_credentials"],
                    "capabilities": ["permission-v2"]}
            return Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})
        if r.path == "/token":
            return token(r)
        return Reply(400, b"")  # the FHIR side is not under test: a refusal ends the scan at once

    server = Scripted(answer)
    return server


def _token(body: dict[str, Any]) -> Callable[[Request], Reply]:
    return lambda r: Reply(200, json.dumps(body).encode(), {"Content-Type": "application/json"})


def _bomb() -> Iterator[bytes]:
    yield b'{"access_token": "'
    for _ in range(64):
        _bomb.sent += 1  # type: ignore[attr-defined]
        yield b"A" * (1 << 20)
    yield b'"}'


@pytest.mark.parametrize("case", ["deep-discovery", "bomb-token", "drip-token"])
def test_a_hostile_authorization_server_is_one_sentence_and_exit_3(tmp_path: Path, key_file: Path, case: str) -> None:
    _bomb.sent = 0  # type: ignore[attr-defined]
    config = (lambda origin: Reply(200, b"[" * 100_000, {"Content-Type": "application/json"})) \
        if case == "deep-discovery" else None
    token = {"bomb-token": lambda r: Reply(200, _bomb(), {"Content-Type": "application/json"}),
             "drip-token": lambda r: Reply(200, _drip(), {"Content-Type": "application/json"}, drip=0.1),
             "deep-discovery": _token({})}[case]
    with _auth_server(token, config) as server:
        code, err = _scan(server.origin + "/fhir", tmp_path / "out", "--client-id", "c1", "--private-key",
                          str(key_file), "--kid", "k1")
    assert code == EXIT_SERVER
    last = err.strip().splitlines()[-1]
    assert last.startswith("azaguard scan: authorization failed: ") and "Traceback" not in err
    if case == "bomb-token":
        assert _bomb.sent < 64 and "larger than" in last  # type: ignore[attr-defined]
    if case == "drip-token":
        assert "took longer than" in last


@pytest.mark.parametrize("expires_in", [1, 0, "NaN", -5])
def test_token_lifetime_has_a_floor_and_nan_is_not_forever(key_file: Path, expires_in: Any) -> None:
    text = json.dumps({"access_token": "t", "token_type": "bearer", "expires_in": 0}).replace(
        '"expires_in": 0', f'"expires_in": {expires_in}')
    now = [1_000_000.0]
    with _auth_server(lambda r: Reply(200, text.encode(), {"Content-Type": "application/json"})) as server:
        key = load_private_key(key_file, "k1")
        auth = BackendServicesAuth(server.origin + "/fhir", "c1", key, clock=lambda: now[0])
        auth.token()
        auth.token()
        assert auth.tokens_issued == 1  # not one token per request
        now[0] += 3600
        auth.token()
        assert auth.tokens_issued == 2  # and renewed in time, whatever it said
        auth.close()


def test_warnings_for_a_readable_key_and_scopes_broader_or_narrower_than_needed(
    tmp_path: Path, key_file: Path
) -> None:
    key_file.chmod(0o644)
    broad = _token({"access_token": "t", "expires_in": 300, "scope": "system/*.cruds"})
    with _auth_server(broad) as server:
        _, err = _scan(server.origin + "/fhir", tmp_path / "a", "--client-id", "c1", "--private-key", str(key_file),
                       "--kid", "k1")
    assert "can be read by others than its owner" in err and "chmod 600" in err
    assert "granted more than was asked: system/*.cruds" in err
    key_file.chmod(0o600)
    narrow = _token({"access_token": "t", "expires_in": 300, "scope": "system/*.rs"})
    with _auth_server(narrow) as server:
        _, err = _scan(server.origin + "/fhir", tmp_path / "b", "--client-id", "c1", "--private-key", str(key_file),
                       "--kid", "k1", "--write")
    assert "does not allow writing DetectedIssue, Flag, Device" in err and "can be read by others" not in err
    assert os.stat(key_file).st_mode & 0o077 == 0
