"""One JSON line per patient in DIR/results.ndjson, written as each patient finishes.

Outcomes: `evaluated` (every write, if any, succeeded), `write-failed` (evaluated; some alert
writes failed), `failed` (not evaluated: the record could not be gathered or read; the error says
why). Lines are appended and flushed one by one, so a crash loses at most the patients in flight;
`--resume` keeps the evaluated patients' lines (the last line per patient wins) and redoes the rest.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Literal

from azaguard.mappings import Mappings
from azaguard.scan import wording
from azaguard.service import CheckResult

Outcome = Literal["evaluated", "write-failed", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("evaluated", "write-failed", "failed")
RESULTS_FILE = "results.ndjson"
Line = dict[str, Any]


def evaluated_line(patient_id: str, result: CheckResult, mappings: Mappings) -> Line:
    """A patient's line from the check's result (also the NDJSON engines': no server, no writes)."""
    actions, text = wording.verdict(result, mappings)
    return {
        "patient": patient_id,
        "outcome": "evaluated",
        "name": result.patient.name if result.patient else None,
        "statuses": wording.headlines(result.findings),
        "urgency": wording.urgency(result.findings),
        "actions": actions,
        "verdict": text,
        "mappings_version": result.mappings_version,
        "evaluated_at": result.evaluated_at.isoformat(),
    }


def check_line(patient_id: str, result: CheckResult, mappings: Mappings, *, seconds: float, writing: bool) -> Line:
    line = evaluated_line(patient_id, result, mappings)
    failed = result.failed_writes
    line["outcome"] = "write-failed" if failed else "evaluated"
    # No per-patient request count: the pooled client's counter is shared by the threads (run.json has the total).
    line["seconds"] = round(seconds, 3)
    if writing:
        counts: dict[str, int] = {}
        for w in result.writes:
            counts[w.outcome] = counts.get(w.outcome, 0) + 1
        line["writes"] = counts
    if result.warnings:
        line["warnings"] = [w[:300] for w in result.warnings[:20]]
    if failed:
        line["error"] = "; ".join(f"{w.resource_type} {w.rule or ''}: {w.error}" for w in failed)[:2000]
    return line


def failed_line(patient_id: str, error: BaseException, *, seconds: float) -> Line:
    return {
        "patient": patient_id,
        "outcome": "failed",
        "error": str(error)[:2000] or type(error).__name__,
        "error_kind": type(error).__name__,
        "seconds": round(seconds, 3),
    }


class ResultsWriter:
    """Appends lines to DIR/results.ndjson, one flushed write per patient, safe across threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._fh: IO[str] = path.open("a", encoding="utf-8")

    def write(self, line: Line) -> None:
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


def read_lines(path: Path) -> Iterator[Line]:
    """Every complete line of a results file (a torn last line from a crash is skipped)."""
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for text in fh:
            if not text.endswith("\n"):
                break
            try:
                line = json.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("patient"), str):
                yield line


def latest(lines: Iterable[Line]) -> dict[str, Line]:
    """The last line per patient, in first-seen order."""
    out: dict[str, Line] = {}
    for line in lines:
        out[line["patient"]] = line
    return out


def prepare(out_dir: Path, *, resume: bool) -> set[str]:
    """Make DIR ready; with resume, keep only evaluated patients' lines and return their ids."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_FILE
    if not resume:
        path.write_text("", encoding="utf-8")
        return set()
    kept = {pid: line for pid, line in latest(read_lines(path)).items() if line.get("outcome") == "evaluated"}
    tmp = path.with_suffix(".ndjson.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for line in kept.values():
            fh.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")
    os.replace(tmp, path)  # atomic: a crash here leaves the old file or the new one, never half
    return set(kept)
