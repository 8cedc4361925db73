"""Progress for people: a rich progress bar on a terminal, plain log lines otherwise (cron, CI, files)."""

from __future__ import annotations

import sys
import threading
import time
from collections import Counter
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

PLAIN_INTERVAL = 5.0  # seconds between plain progress lines


class ScanProgress(Protocol):
    def start(self, phase: str, total: int | None) -> None: ...
    def advance(self, outcome: str) -> None: ...
    def note(self, text: str) -> None: ...
    def close(self) -> None: ...


def _counts_text(counts: Counter[str]) -> str:
    return " · ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


class RichProgress:
    def __init__(self, stream: TextIO) -> None:
        self._console = Console(file=stream)
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self._console,
        )
        self._task: TaskID | None = None
        self._counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._lock = threading.Lock()
        self._progress.start()

    def start(self, phase: str, total: int | None) -> None:
        with self._lock:
            self._counts = Counter()
            self._started = time.monotonic()
            self._task = self._progress.add_task(phase, total=total, counts="", rate="")

    def advance(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1
            done = sum(self._counts.values())
            rate = done / max(time.monotonic() - self._started, 1e-6)
            if self._task is not None:
                self._progress.update(
                    self._task, advance=1, counts=_counts_text(self._counts), rate=f"{rate:.1f}/s"
                )

    def note(self, text: str) -> None:
        with self._lock:
            if self._task is not None:
                self._progress.update(self._task, counts=text)
            else:
                self._console.log(text)

    def close(self) -> None:
        self._progress.stop()


class PlainProgress:
    def __init__(self, stream: TextIO, interval: float = PLAIN_INTERVAL) -> None:
        self._out = stream
        self._interval = interval
        self._phase = ""
        self._total: int | None = None
        self._counts: Counter[str] = Counter()
        self._started = time.monotonic()
        self._last = 0.0
        self._lock = threading.Lock()

    def _line(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} azaguard scan: {text}", file=self._out, flush=True)

    def start(self, phase: str, total: int | None) -> None:
        with self._lock:
            self._phase, self._total, self._counts = phase, total, Counter()
            self._started = self._last = time.monotonic()
            self._line(f"{phase}: {total if total is not None else 'unknown number of'} patients")

    def advance(self, outcome: str) -> None:
        with self._lock:
            self._counts[outcome] += 1
            now = time.monotonic()
            done = sum(self._counts.values())
            if outcome == "failed" or now - self._last >= self._interval or done == self._total:
                self._last = now
                rate = done / max(now - self._started, 1e-6)
                of = f"/{self._total}" if self._total is not None else ""
                eta = ""
                if self._total and rate > 0:
                    eta = f", ETA {max(0.0, (self._total - done) / rate):.0f} s"
                self._line(f"{self._phase} {done}{of} ({_counts_text(self._counts)}), {rate:.1f}/s{eta}")

    def note(self, text: str) -> None:
        with self._lock:
            self._line(text)

    def close(self) -> None:
        return None


def make_progress(stream: TextIO | None = None, *, quiet: bool = False) -> ScanProgress:
    out = stream or sys.stderr
    if quiet:
        return PlainProgress(out, interval=float("inf"))
    return RichProgress(out) if out.isatty() else PlainProgress(out)
