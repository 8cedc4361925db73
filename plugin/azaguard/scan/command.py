"""`azaguard scan`: the options, and the run from discovery to report and exit code.

Exit codes: 0 every patient evaluated (whatever was found), 2 unusable input or options,
3 the server or the authorization server failed before any patient could be scanned,
4 evaluated but some alert writes failed, 5 some patients could not be evaluated.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from azaguard import cliopts
from azaguard.cliopts import now_of
from azaguard.config import is_loopback
from azaguard.errors import AzaguardError, describe
from azaguard.fhir.client import FhirClient, check_id
from azaguard.httpauth import Renew
from azaguard.mappings import Mappings
from azaguard.privatefiles import exposure_warning, write_private
from azaguard.resources import InputError
from azaguard.scan import discovery
from azaguard.scan.auth import token_source
from azaguard.scan.backoff import SharedBackoff
from azaguard.scan.files import scan_files
from azaguard.scan.progress import ScanProgress, make_progress
from azaguard.scan.report import Summary, write_report
from azaguard.scan.results import RESULTS_FILE, ResultsWriter, prepare
from azaguard.scan.runner import ScanSettings, scan_patients

EXIT_OK, EXIT_INPUT, EXIT_SERVER, EXIT_WRITE_FAILED, EXIT_NOT_EVALUATED = 0, 2, 3, 4, 5
SCAN_MAX_RETRIES = 5  # a busy server gets more patience in an unattended scan than in `check`
SCAN_MAX_PAGES = 10_000  # discovery pages through whole populations


def run(args: argparse.Namespace, mappings: Mappings, *, stderr: TextIO | None = None,
        transport: httpx.BaseTransport | None = None) -> int:  # fmt: skip
    """The whole scan; `transport` lets tests put faults between the scan and the real server."""
    # Results, report, CSV and export files hold patient data: owner-only, whatever the site's umask.
    previous = os.umask(0o077)
    try:
        return _run(args, mappings, stderr or sys.stderr, transport)
    finally:
        os.umask(previous)


def _run(args: argparse.Namespace, mappings: Mappings, err: TextIO, transport: httpx.BaseTransport | None) -> int:
    try:
        _check_options(args)
        now = now_of(args.now)
    except InputError as exc:
        print(f"azaguard scan: {exc}", file=err)
        return EXIT_INPUT
    out: Path = args.out
    started = time.time()
    progress = make_progress(err)
    exposed = exposure_warning(out, "the results folder")
    if exposed:
        progress.note(f"warning: {exposed}")
    try:
        if args.ndjson is not None or args.bulk:
            counts, run_info = scan_files(args, mappings, now, progress, transport=transport)
        else:
            counts, run_info = _scan_server(args, mappings, now, progress, transport)
    except AzaguardError as exc:  # its class says the words and the exit code (azaguard/errors.py)
        progress.close()
        print(f"azaguard scan: {describe(exc)}", file=err)
        return exc.exit_code
    except OSError as exc:  # the results folder: not writable, a link where a file should be, disk full
        progress.close()
        print(f"azaguard scan: cannot write in {out}: {exc.strerror or exc}", file=err)
        return EXIT_INPUT
    progress.close()
    run_info["started_at"] = datetime.fromtimestamp(started, UTC).isoformat(timespec="seconds")
    run_info["mappings_version"] = mappings.version
    run_info["timings"] = {"total": f"{time.time() - started:.1f} s", **run_info.get("timings", {})}
    try:
        write_private(out / "run.json", json.dumps(run_info, indent=2, default=str))
        summary = write_report(out, run_info, args.patient_link)
    except OSError as exc:  # a full disk or a folder gone read-only after the patients were scanned
        print(f"azaguard scan: the patients were scanned (results in {out / RESULTS_FILE}), but the run record "
              f"and report could not be written in {out}: {exc.strerror or exc}; free space and re-run with "
              "--resume to write them", file=err)
        return EXIT_INPUT
    print(_summary_line(summary, counts, out), file=err)
    if summary.outcomes.get("failed") or run_info.get("incomplete"):
        return EXIT_NOT_EVALUATED
    if summary.outcomes.get("write-failed"):
        return EXIT_WRITE_FAILED
    return EXIT_OK


def _check_options(args: argparse.Namespace) -> None:
    if args.concurrency < 1 or args.concurrency > 64:
        raise InputError("--concurrency must be between 1 and 64")
    if (args.client_id is None) != (args.private_key is None):
        raise InputError("--client-id and --private-key go together (SMART Backend Services)")
    if args.ndjson is not None and (args.write or args.dry_run or args.group or args.patients or args.all_patients):
        raise InputError("--ndjson evaluates files only: no --write/--dry-run, no patient selection")
    if args.bulk and (args.write or args.dry_run):
        raise InputError("--bulk evaluates the exported files: run without --bulk to write alerts")
    if args.bulk and (args.patients or args.all_patients):
        raise InputError("--bulk exports a --group or the whole system; --patients/--all-patients do not apply")
    if args.engine == "dask" and args.ndjson is None and not args.bulk:
        raise InputError("--engine dask works on files: use it with --bulk or --ndjson")
    if args.scheduler and args.engine != "dask":
        raise InputError("--scheduler needs --engine dask")
    url = args.fhir_url or ""
    if args.fhir_url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
        raise InputError(f"--fhir-url must be an http(s) URL, got {url[:100]!r}")
    with_token = bool(args.client_id or args.settings.fhir_token)
    if with_token and url.lower().startswith("http:") and not is_loopback(url) and not args.allow_insecure_http:
        raise InputError(f"refusing to send an access token over plain http to {url}: use https "
                         "(or --allow-insecure-http if this network is trusted)")  # fmt: skip
    if args.group is not None:
        try:
            check_id(args.group)
        except ValueError as exc:
            raise InputError(f"--group {args.group[:70]!r} is not a FHIR id") from exc


def open_client(url: str, token: str | Callable[[], str] | None, backoff: SharedBackoff,
                transport: httpx.BaseTransport | None, renew: Renew | None = None) -> FhirClient:  # fmt: skip
    return FhirClient(
        url, token=token, renew=renew, max_retries=SCAN_MAX_RETRIES, max_pages=SCAN_MAX_PAGES,
        transport=transport, gate=backoff,
    )  # fmt: skip


def find_patients(args: argparse.Namespace, client: FhirClient, mappings: Mappings) -> discovery.Discovery:
    if args.group:
        return discovery.by_group(client, args.group)
    if args.patients:
        return discovery.from_file(args.patients)
    if args.all_patients:
        return discovery.all_patients(client)
    return discovery.by_medication_codes(client, mappings)


def _scan_server(args: argparse.Namespace, mappings: Mappings, now: datetime, progress: ScanProgress,
                 transport: httpx.BaseTransport | None) -> tuple[dict[str, int], dict[str, Any]]:  # fmt: skip
    token, renew, auth_text = token_source(args, progress.note)
    backoff = SharedBackoff(args.concurrency)
    client = open_client(args.fhir_url, token, backoff, transport, renew)
    with client, cliopts.terminology(args, mappings) as terminology:
        settings = ScanSettings(now=now, write=args.write, dry_run=args.dry_run, concurrency=args.concurrency,
                                terminology=terminology)  # fmt: skip
        t0 = time.monotonic()
        found = find_patients(args, client, mappings)
        t1 = time.monotonic()
        skipped: list[str] = []
        done = prepare(args.out, resume=args.resume, skipped=skipped)
        for problem in skipped:
            progress.note(f"warning: {problem}")
        todo = [pid for pid in found.patient_ids if pid not in done]
        writer = ResultsWriter(args.out / RESULTS_FILE)
        progress.start("scan", len(todo))
        try:
            counts = scan_patients(
                client, todo, mappings=mappings, settings=settings, writer=writer, progress=progress,
                backoff=backoff,
            )  # fmt: skip
        finally:
            writer.close()
        t2 = time.monotonic()
        requests = client.request_count
    mode = "write" if args.write else "dry-run" if args.dry_run else "evaluate only"
    run_info: dict[str, Any] = {
        "source": args.fhir_url,
        "parameters": {
            "FHIR server": args.fhir_url, "evaluated as of": now.isoformat(), "alerts": mode,
            "concurrency": args.concurrency, "authorization": auth_text,
            "terminology server": args.terminology_server or "none (local value sets)",
            "resumed": f"yes: {len(done)} patients kept from an earlier run" if args.resume else "no",
        },
        "discovery": {"description": found.description, "method": found.method, "steps": found.steps,
                      "warnings": found.warnings, "patients": len(found.patient_ids)},
        "timings": {
            "discovery": f"{t1 - t0:.2f} s", "evaluation": f"{t2 - t1:.2f} s",
            "rate": f"{len(todo) / max(t2 - t1, 1e-6):.1f} patients/s", "HTTP requests": requests,
            "requests per patient": f"{requests / max(len(todo), 1):.1f} (discovery included)",
            "server busy (429/503) answers": backoff.congestions,
            "scan-wide pauses": f"{backoff.paused_seconds:.1f} s", "lowest concurrency": backoff.lowest_limit,
        },
    }  # fmt: skip
    return dict(counts), run_info


def _summary_line(summary: Summary, counts: dict[str, int], out: Path) -> str:
    o = summary.outcomes
    return (
        f"azaguard scan: {len(summary.lines)} patients: {o.get('evaluated', 0)} evaluated, "
        f"{o.get('write-failed', 0)} with failed writes, {o.get('failed', 0)} not evaluated; "
        f"{len(summary.needing_action)} need action; this run {sum(counts.values())}. "
        f"Report: {out / 'report.html'}"
    )
