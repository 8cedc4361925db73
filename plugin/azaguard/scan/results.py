"""One JSON line per patient in DIR/results.ndjson, written as each patient finishes.

Outcomes: `evaluated` (every write, if any, succeeded), `write-failed` (evaluated; some alert
writes failed), `failed` (not evaluated: the record could not be gathered or read; the error says
why). Lines are appended and flushed one by one, so a crash loses at most the patients in flight;
`--resume` keeps the evaluated patients' lines (the last line per patient wins) and redoes the rest.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Annotated, Any, Literal

import msgspec

from azaguard.evaluate import CheckResult
from azaguard.mappings import Mappings
from azaguard.privatefiles import open_private, private_dir, write_private
from azaguard.scan import wording

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
        self._fh: IO[str] = open_private(path, "a")

    def write(self, line: Line) -> None:
        text = json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
        with self._lock:
            self._fh.write(text)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()


# What a results line must look like to be kept (the report reads these fields); others may be added.
_Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]


class _Action(msgspec.Struct):
    rule: str
    status: str
    text: str = ""


class _Line(msgspec.Struct):
    patient: _Id
    outcome: Outcome
    name: str | None = None
    statuses: dict[str, str] = {}
    urgency: int = 0
    actions: list[_Action] = []
    verdict: str | None = None
    error: str | None = None
    writes: dict[str, int] = {}
    warnings: list[str] = []


MAX_LINE_BYTES = 1 << 20  # a patient's line is a few kB


def read_lines(path: Path, skipped: list[str] | None = None) -> Iterator[Line]:
    """Every well-formed line of a results file; each other line (cut short by a crash, not UTF-8 or JSON,
    not shaped as azaguard writes it, too long) is skipped, and named in `skipped`."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        number = 0
        while raw := fh.readline(MAX_LINE_BYTES + 1):
            number += 1
            why = None
            if len(raw) > MAX_LINE_BYTES:
                why = f"longer than {MAX_LINE_BYTES} bytes"
                while raw and not raw.endswith(b"\n"):  # the rest of that line
                    raw = fh.readline(MAX_LINE_BYTES + 1)
            elif not raw.endswith(b"\n"):
                why = "cut short (the scan was interrupted while writing it)"
            else:
                try:
                    msgspec.json.decode(raw, type=_Line)
                    line = json.loads(raw)
                except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, ValueError,
                        RecursionError) as exc:  # fmt: skip
                    why = _reason(exc)
            if why is not None:
                if skipped is not None:
                    skipped.append(f"{path.name} line {number}: skipped ({why})")
                continue
            yield line


def _reason(exc: Exception) -> str:
    if isinstance(exc, msgspec.ValidationError):
        return f"not a results line: {str(exc)[:120]}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return "not valid JSON" if not isinstance(exc, UnicodeDecodeError) else "not UTF-8 text"


def latest(lines: Iterable[Line]) -> dict[str, Line]:
    """The last line per patient, in first-seen order."""
    out: dict[str, Line] = {}
    for line in lines:
        out[line["patient"]] = line
    return out


def prepare(out_dir: Path, *, resume: bool, skipped: list[str] | None = None) -> set[str]:
    """Make DIR ready; with resume, keep only evaluated patients' lines and return their ids (lines that
    cannot be read are named in `skipped`, and their patients scanned again)."""
    private_dir(out_dir)
    path = out_dir / RESULTS_FILE
    if not resume:
        write_private(path, "")
        return set()
    kept = {pid: line for pid, line in latest(read_lines(path, skipped)).items() if line.get("outcome") == "evaluated"}
    # Atomic and owner-only: a crash here leaves the old file or the new one, never half; never via a link.
    write_private(path, "".join(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n"
                                for line in kept.values()))  # fmt: skip
    return set(kept)
