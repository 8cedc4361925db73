"""Each patient through the same gathering, rules and alert writes as `azaguard check`, a few at a time.

Bounded concurrency over one pooled FhirClient (threads share its connection pool), the shared
back-off in front of every request, and a line in results.ndjson per patient whatever happens:
a patient whose record cannot be gathered or read is recorded with the error and the scan goes on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirError
from azaguard.mappings import Mappings
from azaguard.resources import InputError
from azaguard.scan.backoff import SharedBackoff
from azaguard.scan.options import DEFAULT_CONCURRENCY
from azaguard.scan.progress import ScanProgress
from azaguard.scan.results import Line, ResultsWriter, check_line, failed_line
from azaguard.service import check_on_server

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

from azaguard.events import CHECKED, emit

log = logging.getLogger(__name__)
QUEUE_PER_WORKER = 4
COLLECT_EVERY = 256



@dataclass(frozen=True)
class ScanSettings:
    now: datetime
    write: bool = False
    dry_run: bool = False
    concurrency: int = DEFAULT_CONCURRENCY
    terminology: TerminologyServer | None = None  # the site's terminology server, if any


def scan_patients(
    client: FhirClient,
    patient_ids: Iterable[str],
    *,
    mappings: Mappings,
    settings: ScanSettings,
    writer: ResultsWriter,
    progress: ScanProgress,
    backoff: SharedBackoff,
) -> Counter[str]:
    """Evaluate every patient; returns the count of lines written by outcome."""
    writing = settings.write or settings.dry_run

    def one(patient_id: str) -> str:
        line = _evaluate(client, patient_id, mappings, settings, backoff, writing)
        writer.write(line)
        progress.advance(line["outcome"])
        return str(line["outcome"])

    counts: Counter[str] = Counter()
    # A few patients queued per worker, not the whole population: memory stays flat for 10^6 patients.
    queued = threading.BoundedSemaphore(settings.concurrency * QUEUE_PER_WORKER)
    futures: list[Future[str]] = []
    pool = ThreadPoolExecutor(max_workers=settings.concurrency, thread_name_prefix="azaguard-scan")
    try:
        for patient_id in patient_ids:
            queued.acquire()
            future = pool.submit(one, patient_id)
            future.add_done_callback(lambda _: queued.release())
            futures.append(future)
            if len(futures) >= COLLECT_EVERY:
                futures = _collect(futures, counts)
        _collect(futures, counts, wait=True)
    finally:
        # On Ctrl-C or an error, patients not started are dropped (`--resume` does them); those in
        # flight finish and are recorded.
        pool.shutdown(wait=True, cancel_futures=True)
    return counts


def _collect(futures: list[Future[str]], counts: Counter[str], *, wait: bool = False) -> list[Future[str]]:
    """Count the finished futures (re-raising a writer failure); the unfinished ones are kept."""
    pending = []
    for future in futures:
        if wait or future.done():
            counts[future.result()] += 1
        else:
            pending.append(future)
    return pending


def _evaluate(
    client: FhirClient,
    patient_id: str,
    mappings: Mappings,
    settings: ScanSettings,
    backoff: SharedBackoff,
    writing: bool,
) -> Line:
    backoff.acquire()
    started = time.monotonic()
    ok = False
    try:
        try:
            result = check_on_server(
                client, patient_id, mappings=mappings, now=settings.now, write=settings.write,
                dry_run=settings.dry_run, terminology=settings.terminology,
            )  # fmt: skip
        except (FhirError, InputError) as exc:  # a 401 here: the client renewed the token once, in vain
            return failed_line(patient_id, exc, seconds=time.monotonic() - started)
        except Exception as exc:  # one patient's unexpected failure must not stop the scan
            log.exception("azaguard scan: Patient/%s failed unexpectedly", patient_id)
            return failed_line(patient_id, exc, seconds=time.monotonic() - started)
        ok = True
        return check_line(patient_id, result, mappings, seconds=time.monotonic() - started, writing=writing)
    finally:
        backoff.release(ok=ok)
        emit(CHECKED, patient=patient_id, write=writing, outcome="evaluated" if ok else "failed")
