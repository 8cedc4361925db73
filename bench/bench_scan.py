"""Benchmark of the population scan (not a test): prints figures, asserts nothing.

1. Server scan: patients/s of `azaguard scan` (evaluate only) against the local sekmet server at
   concurrency 1, 4 and 8, over the sandbox patients replicated with fresh ids; ratios to concurrency 1.
2. NDJSON path: a generated Bulk Data export of N patients (default 10,000): the Synthea records
   (--synthea DIR, restricted to the types the rules read) and the sandbox patients, replicated with
   fresh ids, about 1 in 100 on azathioprine. MB/s and peak memory of the in-process engine and of the
   Dask engine (local cluster), against merely parsing every line with the same parser (orjson, as the
   engine does; the stdlib's json.loads for reference);
   the in-process engine again on an export a quarter of the size, to show memory does not follow size.
   Each measurement runs in its own process so that peak RSS is its own.

Run: .venv/bin/python bench/bench_scan.py [--patients 10000] [--synthea DIR]
(DIR: Synthea R4 Bundles; default shared/synthea-r4/ beside the checkout, as bench.py, if present)
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from azaguard.cli import build_parser
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import build_patients
from azaguard.scan.command import run as run_scan
from azaguard.scan.ndjson import EXPORT_TYPES, evaluate_files, export_files

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
NOW_TEXT = "2026-11-01T12:00:00Z"
Resource = dict[str, Any]


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- 1. server scan ------------------------------------------------------------------------------


LATENCY = 0.040


class Delayed(httpx.HTTPTransport):
    """Loopback plus a fixed delay per request: what a server across a network adds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        time.sleep(self.delay)
        return super().handle_request(request)


def replicate_sandbox(copies: int) -> list[Resource]:
    """The sandbox patients `copies` times, ids prefixed so each copy is a new set of patients."""
    text = json.dumps([r for p in build_patients(NOW) for r in p.resources])
    out: list[Resource] = []
    for k in range(copies):
        out += json.loads(text.replace('"aza-', f'"r{k}-aza-').replace("/aza-", f"/r{k}-aza-"))
    return out


def bench_server(copies: int) -> None:
    from azaguard.sandbox.server import SandboxServer

    with tempfile.TemporaryDirectory() as tmp, SandboxServer(data_dir=Path(tmp) / "data") as server:
        server.reset()
        resources = replicate_sandbox(copies)
        for start in range(0, len(resources), 2000):
            entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                       for r in resources[start:start + 2000]]
            response = httpx.post(server.base_url, json={"resourceType": "Bundle", "type": "transaction",
                                  "entry": entries}, timeout=300, headers={"Content-Type": "application/fhir+json"})
            response.raise_for_status()
        patients = sum(1 for r in resources if r["resourceType"] == "Patient")
        print(f"\n1. server scan: {patients} patients loaded into sekmet-fhir ({copies} copies of the sandbox)")
        for latency in (0.0, LATENCY):
            where = "loopback" if not latency else f"+{latency * 1000:.0f} ms per request (simulated WAN)"
            rates: dict[int, float] = {}
            for concurrency in (1, 4, 8):
                out = Path(tmp) / f"scan-{latency}-{concurrency}"
                args = build_parser().parse_args(["scan", "--fhir-url", server.base_url, "--concurrency",
                                                  str(concurrency), "--out", str(out), "--now", NOW_TEXT])
                transport = Delayed(latency) if latency else None
                started = time.perf_counter()
                code = run_scan(args, load_mappings(), stderr=io.StringIO(), transport=transport)
                seconds = time.perf_counter() - started
                lines = (out / "results.ndjson").read_text().splitlines()
                rates[concurrency] = len(lines) / seconds
                print(f"   {where}, concurrency {concurrency}: {len(lines)} patients in {seconds:.1f} s = "
                      f"{rates[concurrency]:.1f} patients/s (x{rates[concurrency] / rates[1]:.2f} of concurrency 1),"
                      f" exit {code}")


# --- 2. generated export ---------------------------------------------------------------------------


def synthea_templates(folder: Path | None) -> list[list[str]]:
    """Each Synthea record as JSON lines of the exported types, with `{P}` standing for the copy's id prefix."""
    templates: list[list[str]] = []
    for path in sorted(folder.glob("*.json")) if folder and folder.is_dir() else []:
        bundle = json.loads(path.read_text())
        types = {e["fullUrl"]: e["resource"]["resourceType"] for e in bundle.get("entry", []) if "fullUrl" in e}
        lines = []
        for entry in bundle.get("entry", []):
            r = entry["resource"]
            if r["resourceType"] not in EXPORT_TYPES:
                continue
            text = json.dumps(r, separators=(",", ":"))
            for full_url, rtype in types.items():  # urn:uuid references become Type/id, as in a Bulk export
                if full_url in text:
                    text = text.replace(f'"{full_url}"', f'"{rtype}/{{P}}{full_url.rsplit(":", 1)[-1]}"')
            text = text.replace(f'"id":"{r["id"]}"', f'"id":"{{P}}{r["id"]}"', 1)
            lines.append((r["resourceType"], text))
        templates.append(lines)  # type: ignore[arg-type]
    return templates  # type: ignore[return-value]


def sandbox_templates() -> list[list[tuple[str, str]]]:
    out = []
    for p in build_patients(NOW):
        if p.id == "aza-not-on":
            continue
        text = [(r["resourceType"], json.dumps(r, separators=(",", ":"))) for r in p.resources]
        out.append([(t, s.replace('"aza-', '"{P}aza-').replace("/aza-", "/{P}aza-")) for t, s in text])
    return out


def generate(folder: Path, patients: int, synthea: Path | None) -> tuple[int, int]:
    """An export of `patients` patients, 1 in 100 a sandbox patient on azathioprine; (bytes, on azathioprine)."""
    folder.mkdir(parents=True, exist_ok=True)
    others = synthea_templates(synthea) or [
        [(t, s) for t, s in tpl if t != "MedicationRequest"] for tpl in sandbox_templates()
    ]  # without Synthea: sandbox charts with the azathioprine order removed
    aza = sandbox_templates()
    handles = {t: (folder / f"{t}.ndjson").open("w") for t in EXPORT_TYPES}
    on_aza = 0
    for i in range(patients):
        if i % 100 == 0:
            tpl, on_aza = aza[(i // 100) % len(aza)], on_aza + 1
        else:
            tpl = others[i % len(others)]
        prefix = f"g{i}-"
        for rtype, text in tpl:
            handles[rtype].write(text.replace("{P}", prefix) + "\n")
    for fh in handles.values():
        fh.close()
    for t in EXPORT_TYPES:
        if (folder / f"{t}.ndjson").stat().st_size == 0:
            (folder / f"{t}.ndjson").unlink()
    return sum(p.stat().st_size for p in folder.iterdir()), on_aza


def _parse_only(folder: str) -> tuple[float, int]:
    """Every line through orjson, the parser the engine uses (its lines as str, as the engine reads them)."""
    started = time.perf_counter()
    count = 0
    for f in export_files(Path(folder)):
        with f.path.open() as fh:
            for line in fh:
                if line.strip():
                    orjson.loads(line)
                    count += 1
    return time.perf_counter() - started, count


def _stdlib_parse_only(folder: str) -> tuple[float, int]:
    started = time.perf_counter()
    count = 0
    for f in export_files(Path(folder)):
        with f.path.open() as fh:
            for line in fh:
                if line.strip():
                    json.loads(line)
                    count += 1
    return time.perf_counter() - started, count


def _in_process(folder: str) -> tuple[float, int]:
    started = time.perf_counter()
    lines = list(evaluate_files(export_files(Path(folder)), load_mappings(), NOW))
    return time.perf_counter() - started, len(lines)


def _dask(folder: str) -> tuple[float, int, float]:
    from distributed import Client, LocalCluster

    from azaguard.scan.dask_engine import evaluate_files_dask

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        started = time.perf_counter()
        lines = list(evaluate_files_dask(export_files(Path(folder)), load_mappings(), NOW,
                                         scheduler=cluster.scheduler_address))
        seconds = time.perf_counter() - started
        workers = client.run(lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return seconds, len(lines), max(workers.values())


def _measure(fn: Callable[[str], tuple[Any, ...]], folder: str, queue: Any) -> None:
    result = fn(folder)
    queue.put((*result, _rss_mb()))


def measure(fn: Callable[[str], tuple[Any, ...]], folder: Path) -> tuple[Any, ...]:
    """Run `fn(folder)` in a fresh process: (its results..., its peak RSS in MB)."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_measure, args=(fn, str(folder), queue))
    process.start()
    result = queue.get()
    process.join()
    return tuple(result)


def bench_ndjson(patients: int, synthea: Path | None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        big, small = Path(tmp) / "big", Path(tmp) / "small"
        started = time.perf_counter()
        size, on_aza = generate(big, patients, synthea)
        small_size, _small_aza = generate(small, patients // 4, synthea)
        print(f"\n2. NDJSON export: {patients} patients ({on_aza} on azathioprine), {size / 1e6:.0f} MB, "
              f"generated in {time.perf_counter() - started:.0f} s"
              f"{' from ' + str(synthea) + ' + sandbox' if synthea else ' from the sandbox only'}")
        std_s, _, std_rss = measure(_stdlib_parse_only, big)
        print(f"   json.loads every line      : {std_s:6.1f} s  {size / 1e6 / std_s:7.1f} MB/s  peak {std_rss:6.0f} MB")
        parse_s, parsed, parse_rss = measure(_parse_only, big)
        mbs = size / 1e6 / parse_s
        print(f"   orjson.loads every line    : {parse_s:6.1f} s  {mbs:7.1f} MB/s  peak {parse_rss:6.0f} MB "
              f"({parsed} resources; the engine's parser: the baseline below)")
        seconds, count, rss = measure(_in_process, big)
        print(f"   in-process engine          : {seconds:6.1f} s  {size / 1e6 / seconds:7.1f} MB/s  peak {rss:6.0f} MB"
              f"  ({count} patients evaluated; x{parse_s / seconds:.2f} the speed of parsing)")
        s2, c2, rss2 = measure(_in_process, small)
        print(f"   in-process, 1/4 the export : {s2:6.1f} s  {small_size / 1e6 / s2:7.1f} MB/s  peak {rss2:6.0f} MB"
              f"  ({c2} patients; peak memory x{rss / rss2:.2f} for x{size / small_size:.1f} the export)")
        d_s, d_count, worker_rss, driver_rss = measure(_dask, big)
        print(f"   Dask local cluster (2 proc): {d_s:6.1f} s  {size / 1e6 / d_s:7.1f} MB/s  peak {driver_rss:6.0f} MB"
              f" driver, {worker_rss:.0f} MB per worker  ({d_count} patients; x{parse_s / d_s:.2f} the speed of "
              "parsing, cluster start excluded)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=10_000, help="patients in the generated export")
    parser.add_argument("--copies", type=int, default=2, help="copies of the sandbox for the server scan")
    default_synthea = Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"  # beside the checkout; optional
    parser.add_argument("--synthea", type=Path, default=default_synthea if default_synthea.is_dir() else None)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument("--skip-ndjson", action="store_true")
    args = parser.parse_args()
    if not args.skip_server:
        bench_server(args.copies)
    if not args.skip_ndjson:
        bench_ndjson(args.patients, args.synthea)


if __name__ == "__main__":
    main()
