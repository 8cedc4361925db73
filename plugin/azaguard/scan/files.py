"""`scan --bulk` and `scan --ndjson`: evaluate export files (downloaded, or already on disk) with an engine."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx

from azaguard.mappings import Mappings
from azaguard.scan.auth import token_source
from azaguard.scan.bulk import BulkExport
from azaguard.scan.dask_engine import evaluate_files_dask
from azaguard.scan.ndjson import ExportFile, Pass1, evaluate_files, export_files
from azaguard.scan.progress import ScanProgress
from azaguard.scan.results import RESULTS_FILE, Line, ResultsWriter, prepare


def scan_files(args: argparse.Namespace, mappings: Mappings, now: datetime, progress: ScanProgress, *,
               transport: httpx.BaseTransport | None = None) -> tuple[dict[str, int], dict[str, Any]]:  # fmt: skip
    timings: dict[str, Any] = {}
    parameters: dict[str, Any] = {"evaluated as of": now.isoformat(), "engine": args.engine}
    t0 = time.monotonic()
    if args.bulk:
        files, source = _export(args, progress, transport, timings, parameters)
    else:
        files, source = export_files(args.ndjson), str(args.ndjson)
        parameters["export folder"] = source
    if args.engine == "dask":
        parameters["Dask scheduler"] = args.scheduler or "local cluster"
    size = sum(f.path.stat().st_size for f in files)
    skipped: list[str] = []
    done = prepare(args.out, resume=args.resume, skipped=skipped)
    for problem in skipped:
        progress.note(f"warning: {problem}")
    found: list[Pass1] = []

    def on_found(first: Pass1) -> None:
        found.append(first)
        progress.start("evaluate", len(set(first.patients) - done))

    t1 = time.monotonic()
    progress.note(f"reading {len(files)} files, {size / 1e6:.0f} MB: medication files, then the rest ({args.engine})")
    lines: Iterator[Line]
    if args.engine == "dask":
        lines = evaluate_files_dask(files, mappings, now, scheduler=args.scheduler, skip=frozenset(done),
                                    on_found=on_found)  # fmt: skip
    else:
        lines = evaluate_files(files, mappings, now, skip=frozenset(done), on_found=on_found)
    counts: Counter[str] = Counter()
    writer = ResultsWriter(args.out / RESULTS_FILE)
    try:
        for line in lines:
            writer.write(line)
            counts[line["outcome"]] += 1
            progress.advance(line["outcome"])
    finally:
        writer.close()
    seconds = time.monotonic() - t1
    first = found[0] if found else Pass1(frozenset(), [])
    timings.update({
        "evaluation (both passes)": f"{seconds:.2f} s", "export size": f"{size / 1e6:.1f} MB",
        "throughput": f"{size / 1e6 / max(seconds, 1e-6):.1f} MB/s", "files": len(files),
        "total before evaluation": f"{t1 - t0:.2f} s",
    })  # fmt: skip
    if args.resume:
        parameters["resumed"] = f"yes: {len(done)} patients kept from an earlier run"
    steps = [f"{first.known_medications} Medications in the export, {len(first.medications)} coded as azathioprine",
             f"{len(first.patients)} patients with an order or statement that is (by code, name or Medication) "
             "or may be (its Medication is not in the export) azathioprine"]
    run_info: dict[str, Any] = {
        "incomplete": first.unreadable or bool(first.unreadable_lines),  # the exit code must say so
        "source": source,
        "parameters": parameters,
        "discovery": {"description": "found in the export's medication orders and statements (pass 1)",
                      "method": "export", "steps": steps, "patients": len(first.patients),
                      "warnings": _warnings(first)},
        "timings": timings,
    }  # fmt: skip
    return dict(counts), run_info


def _export(args: argparse.Namespace, progress: ScanProgress, transport: httpx.BaseTransport | None,
            timings: dict[str, Any], parameters: dict[str, Any]) -> tuple[list[ExportFile], str]:  # fmt: skip

    token, renew, auth_text = token_source(args, progress.note)
    token_fn = token if callable(token) else (lambda: token)
    exporter = BulkExport(args.fhir_url, token=token_fn, renew=renew, transport=transport)
    progress.note("Bulk Data export: kick-off")
    try:
        result = exporter.run(args.out / "export", group=args.group, progress=progress)
    finally:
        exporter.close()
    parameters.update({"FHIR server": args.fhir_url, "authorization": auth_text,
                       "export": f"Group/{args.group}/$export" if args.group else "$export (system level)",
                       "export transactionTime": result.transaction_time or "-"})  # fmt: skip
    timings.update({"export (kick-off to files on disk)": f"{result.seconds:.2f} s", "export polls": result.polls,
                    "downloaded": f"{result.bytes / 1e6:.2f} MB"})  # fmt: skip
    if result.errors:
        parameters["export errors"] = "; ".join(result.errors)
    return result.files, f"{args.fhir_url} (Bulk Data export)"


def _warnings(first: Pass1) -> list[str]:
    out = []
    if first.unreadable:
        out.append("some medication lines that may name azathioprine are not valid JSON: their patients cannot be "
                   "found")
    if first.unreadable_lines:
        out.append(f"{first.unreadable_lines} line(s) of the export are cut short or garbled and name no patient "
                   "found: data of those patients may be missing")
    return out
