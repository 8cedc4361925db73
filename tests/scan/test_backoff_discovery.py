"""Pure parts of the scan: the shared back-off's arithmetic, code-set chunking, results resume."""

from __future__ import annotations

import json
from pathlib import Path

from azaguard.mappings import load_mappings
from azaguard.scan.backoff import SharedBackoff
from azaguard.scan.discovery import chunks, code_tokens, patient_id_of
from azaguard.scan.results import RESULTS_FILE, prepare, read_lines


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_busy_server_pauses_everyone_halves_concurrency_then_eases_back() -> None:
    clock = Clock()
    backoff = SharedBackoff(4, clock=clock, ease_after=2)
    backoff.answered(500, 3.0)  # not "busy": no pause
    assert backoff.paused_until == 0.0 and backoff.limit == 4
    backoff.answered(429, 3.0)  # Retry-After: 3 seconds, for the whole scan
    assert backoff.paused_until == 1003.0 and backoff.limit == 2
    backoff.answered(503, None)  # no Retry-After: a default pause; never shorter than the one in force
    assert backoff.paused_until == 1003.0 and backoff.limit == 1 and backoff.congestions == 2
    backoff.answered(429, 100000.0)  # absurd values are capped
    assert backoff.paused_until <= clock.now + 120
    clock.now = backoff.paused_until + 1
    backoff.wait_open()  # returns: the pause is over
    for _ in range(4):
        backoff.acquire()
        backoff.release(ok=True)
    assert backoff.limit == 3 and backoff.lowest_limit == 1
    backoff.acquire()
    backoff.release(ok=False)  # failures do not ease
    assert backoff.limit == 3


def test_code_sets_become_short_queries_and_references_become_ids() -> None:
    tokens = code_tokens(load_mappings())
    assert "http://www.nlm.nih.gov/research/umls/rxnorm|197388" in tokens
    parts = list(chunks(tokens, limit=300))
    assert len(parts) > 1 and all(len(p) <= 300 for p in parts)
    assert ",".join(parts).split(",") == tokens
    assert patient_id_of({"reference": "Patient/a-1"}) == "a-1"
    assert patient_id_of({"reference": "https://x.org/fhir/Patient/a-1/_history/2"}) == "a-1"
    assert patient_id_of({"reference": "Group/a-1"}) is None
    assert patient_id_of({"reference": "Patient/not ok"}) is None


def test_resume_keeps_evaluated_patients_once_and_drops_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / RESULTS_FILE
    lines = [{"patient": "a", "outcome": "failed"}, {"patient": "b", "outcome": "evaluated"},
             {"patient": "a", "outcome": "evaluated"}, {"patient": "c", "outcome": "write-failed"},
             {"patient": "b", "outcome": "evaluated", "n": 2}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines) + '{"patient": "d", "outc')
    assert prepare(tmp_path, resume=True) == {"a", "b"}
    kept = list(read_lines(path))
    assert [x["patient"] for x in kept] == ["a", "b"] and kept[1]["n"] == 2
    assert prepare(tmp_path, resume=False) == set() and path.read_text() == ""


def test_demo_backend_client_key_is_made_once_and_private(tmp_path: Path) -> None:
    from azaguard.sandbox.ehr.backend import demo_client
    from azaguard.smart.backend import load_private_key

    client, path = demo_client(tmp_path)
    again, _ = demo_client(tmp_path)
    assert client == again and oct(path.stat().st_mode & 0o777) == "0o600"
    assert all("d" not in k for k in client.jwks["keys"])
    assert load_private_key(path).alg == "ES384"


def test_rich_progress_draws_counts_and_plain_lines_when_not_a_terminal() -> None:
    import io

    from azaguard.scan.progress import PlainProgress, RichProgress, make_progress

    out = io.StringIO()
    assert isinstance(make_progress(out), PlainProgress)  # not a TTY: plain lines
    rich = RichProgress(out)
    rich.start("scan", 3)
    for outcome in ("evaluated", "failed", "evaluated"):
        rich.advance(outcome)
    rich.close()
    assert "evaluated 2" in out.getvalue() and "failed 1" in out.getvalue()
    plain = PlainProgress(out, interval=0)
    plain.start("scan", 2)
    plain.advance("evaluated")
    plain.note("export: writing 1")
    assert "scan 1/2 (evaluated 1)" in out.getvalue() and "export: writing 1" in out.getvalue()


def test_scopes_v2_and_v1() -> None:
    from azaguard.smart.backend import requested_scopes

    v2 = requested_scopes(True, write=True).split()
    assert "system/Observation.rs" in v2 and "system/DetectedIssue.crus" in v2
    v1 = requested_scopes(False, write=False).split()
    assert "system/Observation.read" in v1 and not any(s.endswith(".write") for s in v1)


def test_backend_scopes_cover_every_search_of_the_gathering() -> None:
    from datetime import UTC, datetime

    from azaguard.fhir.catalogue import reads
    from azaguard.fhir.gather import plan_searches
    from azaguard.scan.ndjson import EXPORT_TYPES

    searched = {s.resource_type for s in plan_searches("x", load_mappings(), datetime(2026, 11, 1, tzinfo=UTC))}
    assert searched <= set(reads())
    assert searched <= set(EXPORT_TYPES)  # a Bulk export asks for every type the rules read
