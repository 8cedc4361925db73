"""Never report a write that did not happen: servers (a proxy in front of the real local FHIR server)
that answer 2xx with an error OperationOutcome, with no body, with another id; that ignore client ids
on PUT; that strip `meta` and refuse client ids; that answer 409/412 for a while."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from azaguard.cli import EXIT_OK, EXIT_WRITE_FAILED, main
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.service import check_on_server
from tests.hardening.common import NOW, chart_alerts, live_counts, load_patient
from tests.hardening.hostile import Forward, Reply, Request, TamperProxy, outcome

pytestmark = pytest.mark.integration
MAPPINGS = load_mappings()
ALERT_TYPES = ("DetectedIssue", "Flag")


def _alert_write(r: Request) -> str | None:
    """The alert type a PUT/POST writes, if it is one."""
    if r.method not in ("PUT", "POST"):
        return None
    path = r.path.split("?", 1)[0].rstrip("/")
    parts = path.split("/")
    for t in ALERT_TYPES:
        if t in parts[-2:]:
            return t
    return None


def _check(base_url: str, pid: str, capsys: pytest.CaptureFixture[str], now: Any = NOW) -> tuple[int, str, Any]:
    code = main(["check", "--fhir-url", base_url, "--patient", pid, "--write", "--now", now.isoformat(),
                 "--format", "json"])
    out, err = capsys.readouterr()
    return code, err, json.loads(out) if out.strip() else None


def _in_chart(base_url: str, pid: str) -> dict[str, dict[str, Any]]:
    issues, flags = chart_alerts(base_url, pid)
    return {f"{r['resourceType']}/{r['id']}": r for r in (*issues, *flags)}


@pytest.mark.parametrize("hostile", ["outcome-200", "empty-200", "other-id"])
def test_a_write_answered_2xx_that_did_not_happen_exits_4(
    fhir_server: Any, capsys: pytest.CaptureFixture[str], hostile: str
) -> None:
    pid = f"i18-truth-{hostile}"
    load_patient(fhir_server.base_url, pid)

    def tamper(r: Request) -> Reply | None:
        if not _alert_write(r):
            return None
        if hostile == "outcome-200":
            body = json.dumps(outcome("error", "the alert store is read-only today")).encode()
        elif hostile == "empty-200":
            body = b""
        else:  # the resource as sent, under another id, and nothing stored
            body = json.dumps({**json.loads(r.body), "id": "someone-elses"}).encode()
        return Reply(200, body, {"Content-Type": "application/fhir+json"})

    with TamperProxy(fhir_server.base_url, tamper) as proxy:
        code, err, report = _check(proxy.base_url, pid, capsys)
    assert code == EXIT_WRITE_FAILED, err
    failed = [w for w in report["written"] if w["outcome"] == "failed"]
    assert {w["resource_type"] for w in failed} == {"DetectedIssue", "Flag"}
    assert not [w for w in report["written"] if w["outcome"] in ("created", "exists") and
                w["resource_type"] in ALERT_TYPES]
    assert "will not help" not in err and "write(s) failed" in err
    if hostile == "outcome-200":
        assert "the alert store is read-only today" in err or any(
            "read-only" in (w["error"] or "") for w in failed)
    assert not _in_chart(fhir_server.base_url, pid)


def _ignore_client_ids(r: Request) -> Forward | None:
    """PUT of an alert becomes a POST: the server assigns its own id."""
    kind = _alert_write(r)
    if kind and r.method == "PUT" and "/azg-" in r.path:  # updates of ids it gave out work as usual
        body = json.loads(r.body)
        body.pop("id", None)
        return Forward("POST", r.path.rsplit("/", 1)[0], json.dumps(body).encode())
    return None


def test_a_server_ignoring_client_ids_on_put_leaves_one_alert_each(
    fhir_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pid = "i18-ignore-ids"
    load_patient(fhir_server.base_url, pid)
    results: list[Any] = []
    with TamperProxy(fhir_server.base_url, _ignore_client_ids) as proxy:
        def run() -> None:
            with FhirClient(proxy.base_url) as client:
                results.append(check_on_server(client, pid, mappings=MAPPINGS, now=NOW, write=True))

        threads = [threading.Thread(target=run) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(results) == 3
        chart = _in_chart(fhir_server.base_url, pid)
        for result in results:
            assert not result.failed_writes, result.failed_writes
            for w in result.writes:
                if w.resource_type in ALERT_TYPES and w.outcome in ("created", "exists"):
                    assert w.reference in chart, (w, sorted(chart))
        issues, flags = live_counts(fhir_server.base_url, pid)
        assert issues and set(issues.values()) == {1}
        assert flags and set(flags.values()) == {1}
        code, err, _ = _check(proxy.base_url, pid, capsys)
    assert code == EXIT_OK, err
    assert live_counts(fhir_server.base_url, pid) == (issues, flags)


def _strip_meta_and_refuse_ids(r: Request) -> Reply | Forward | None:
    kind = _alert_write(r)
    device = r.method in ("PUT", "POST") and "/Device" in r.path
    if (kind or device) and r.method == "PUT":
        return Reply(405, json.dumps(outcome("error", "client-assigned ids are not supported")).encode(),
                     {"Content-Type": "application/fhir+json"})
    if kind or device:
        body = json.loads(r.body)
        body.pop("meta", None)
        return Forward(r.method, r.path, json.dumps(body).encode())
    return None


def test_a_server_stripping_meta_and_refusing_client_ids_is_not_a_jam(
    fhir_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    pid = "i18-strip-meta"
    load_patient(fhir_server.base_url, pid)
    with TamperProxy(fhir_server.base_url, _strip_meta_and_refuse_ids) as proxy:
        first, err1, _ = _check(proxy.base_url, pid, capsys)
        assert first == EXIT_OK, err1
        counts = live_counts(fhir_server.base_url, pid)
        second, err2, report = _check(proxy.base_url, pid, capsys)
    assert second == EXIT_OK, err2
    assert {w["outcome"] for w in report["written"] if w["resource_type"] in ALERT_TYPES} == {"exists"}
    assert live_counts(fhir_server.base_url, pid) == counts
    assert set(counts[0].values()) == {1} and set(counts[1].values()) == {1}


def test_a_later_episode_on_a_server_refusing_client_ids_is_a_new_flag(
    fhir_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """Hold, cleared (the fever is past 72 h), the same hold again: the second episode's conditional create
    must not match the first, inactive episode (it carried the same identifier before)."""
    pid = "i18-episodes"
    load_patient(fhir_server.base_url, pid)

    def refuse_new_ids(r: Request) -> Reply | Forward | None:  # updates of the server's own ids still work
        if r.method == "PUT" and "/azg-" in r.path:
            return Reply(405, json.dumps(outcome("error", "client-assigned ids are not supported")).encode(),
                         {"Content-Type": "application/fhir+json"})
        return _strip_meta_and_refuse_ids(r) if r.method == "POST" else None

    with TamperProxy(fhir_server.base_url, refuse_new_ids) as proxy:
        first, err1, _ = _check(proxy.base_url, pid, capsys)
        cleared, err2, _ = _check(proxy.base_url, pid, capsys, now=NOW + timedelta(days=10))
        again, err3, report = _check(proxy.base_url, pid, capsys)
    assert (first, cleared) == (EXIT_OK, EXIT_OK), (err1, err2)
    assert again == EXIT_OK, err3
    assert {w["outcome"] for w in report["written"] if w["resource_type"] == "Flag"} == {"created"}
    _, flags = chart_alerts(fhir_server.base_url, pid)
    statuses = sorted(f["status"] for f in flags)
    assert statuses == ["active", "inactive"], statuses
    active = next(f for f in flags if f["status"] == "active")
    inactive = next(f for f in flags if f["status"] == "inactive")
    assert active["identifier"] != inactive["identifier"]


class _Conflicts:
    """The first `n` PUTs of each alert (or only those with If-Match) answer 409/412."""

    def __init__(self, n: int, *, if_match_only: bool = False, status: int = 409) -> None:
        self.n, self.if_match_only, self.status = n, if_match_only, status
        self.seen: dict[str, int] = {}
        self.lock = threading.Lock()

    def __call__(self, r: Request) -> Reply | None:
        if not _alert_write(r) or r.method != "PUT":
            return None
        if self.if_match_only and "if-match" not in r.headers:
            return None
        with self.lock:
            self.seen[r.path] = self.seen.get(r.path, 0) + 1
            if self.seen[r.path] > self.n:
                return None
        return Reply(self.status, json.dumps(outcome("error", "version conflict")).encode(),
                     {"Content-Type": "application/fhir+json"})


def test_409_on_put_is_retried_and_never_called_hopeless(fhir_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pid = "i18-conflict"
    load_patient(fhir_server.base_url, pid)
    with TamperProxy(fhir_server.base_url, _Conflicts(2)) as proxy:
        code, err, _ = _check(proxy.base_url, pid, capsys)
    assert code == EXIT_OK, err
    issues, flags = live_counts(fhir_server.base_url, pid)
    assert issues and flags
    pid = "i18-conflict-always"
    load_patient(fhir_server.base_url, pid)
    with TamperProxy(fhir_server.base_url, _Conflicts(1000)) as proxy:
        code, err, _ = _check(proxy.base_url, pid, capsys)
    assert code == EXIT_WRITE_FAILED
    assert "will not help" not in err and "re-run" in err


def test_412_on_the_if_match_close_is_retried(fhir_server: Any, capsys: pytest.CaptureFixture[str]) -> None:
    pid = "i18-close-412"
    load_patient(fhir_server.base_url, pid)
    code, err, _ = _check(fhir_server.base_url, pid, capsys)
    assert code == EXIT_OK, err
    later = NOW + timedelta(days=30)  # the fever is long past: the hold clears and its Flag is closed
    with TamperProxy(fhir_server.base_url, _Conflicts(2, if_match_only=True, status=412)) as proxy:
        code, err, report = _check(proxy.base_url, pid, capsys, now=later)
    assert code == EXIT_OK, err
    assert "closed" in {w["outcome"] for w in report["written"]}
    _, flags = live_counts(fhir_server.base_url, pid)
    assert not flags


def test_the_scan_line_is_write_failed_and_resume_retries_it(fhir_server: Any, tmp_path: Path) -> None:
    from azaguard.cli import build_parser
    from azaguard.scan.command import run
    from azaguard.scan.results import RESULTS_FILE, read_lines

    pid = "i18-scan-truth"
    load_patient(fhir_server.base_url, pid)
    ids = tmp_path / "ids.txt"
    ids.write_text(pid + "\n")
    out = tmp_path / "scan"

    def scan(base: str, *extra: str) -> dict[str, Any]:
        args = build_parser().parse_args(["scan", "--fhir-url", base, "--patients", str(ids), "--write",
                                          "--out", str(out), "--now", NOW.isoformat(), *extra])
        run(args, MAPPINGS)
        return {line["patient"]: line for line in read_lines(out / RESULTS_FILE)}

    def tamper(r: Request) -> Reply | None:
        if _alert_write(r):
            return Reply(200, json.dumps(outcome("fatal", "nothing stored")).encode(),
                         {"Content-Type": "application/fhir+json"})
        return None

    with TamperProxy(fhir_server.base_url, tamper) as proxy:
        lines = scan(proxy.base_url)
    assert lines[pid]["outcome"] == "write-failed"
    lines = scan(fhir_server.base_url, "--resume")
    assert lines[pid]["outcome"] == "evaluated"
    assert _in_chart(fhir_server.base_url, pid)
