"""Benchmark (not a test): prints figures, asserts nothing.

1. Gathering: for every sandbox patient, HTTP requests and wall time of
   azaguard's gather (one batch) against a naive client that sends one search
   per resource type and reads each referenced Medication, both run in this
   process against the same local FHIR server; ratio naive / azaguard.
2. Rules: evaluation time per patient once the record is built.
3. Bytes to findings for a large record (a Synthea record if one is given with
   --synthea FILE, else the largest sandbox patient padded with 300 extra
   Observations), against the stdlib json.loads baseline of the same bytes.

Run: make bench   (or .venv/bin/python bench/bench.py [--synthea FILE])
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from azaguard.fhir.client import FhirClient
from azaguard.fhir.gather import gather
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet, resource_set_from_json
from azaguard.rules import evaluate
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxServer

NAIVE_SEARCHES = [
    ("MedicationRequest", "subject"), ("Observation", "subject"), ("Condition", "subject"),
    ("Immunization", "patient"), ("ImmunizationRecommendation", "patient"), ("ServiceRequest", "subject"),
]


def naive_gather(client: FhirClient, patient_id: str) -> ResourceSet:
    """What a straightforward client does: one search per type, then one read per Medication."""
    resources: list[dict[str, Any]] = [client.read("Patient", patient_id)]
    for rtype, param in NAIVE_SEARCHES:
        resources += client.search(rtype, {param: f"Patient/{patient_id}"})
    for r in list(resources):
        ref = (r.get("medicationReference") or {}).get("reference", "")
        if ref.startswith("Medication/"):
            resources.append(client.read("Medication", ref.split("/", 1)[1]))
    return ResourceSet.from_resources(resources)


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def bench_gathering(m: Mappings, now: datetime, repeat: int) -> None:
    patients = build_patients(now)
    with SandboxServer() as server:
        server.reset()
        with FhirClient(server.base_url) as client:
            client.transaction(transaction_bundle(patients))
            print(f"\n1. Gathering one patient's record ({len(patients)} sandbox patients, median of {repeat})")
            print(f"{'patient':<26}{'azaguard req':>13}{'ms':>8}{'naive req':>11}{'ms':>8}"
                  f"{'req ratio':>10}{'time ratio':>11}")
            ratios = []
            for p in patients:
                c0 = client.request_count
                t_aza, _ = timed(lambda p=p: gather(client, p.id, m, now), repeat)
                req_aza = (client.request_count - c0) // repeat
                c0 = client.request_count
                t_naive, _ = timed(lambda p=p: naive_gather(client, p.id), repeat)
                req_naive = (client.request_count - c0) // repeat
                ratios.append(t_naive / t_aza)
                print(f"{p.id:<26}{req_aza:>13}{t_aza * 1000:>8.1f}{req_naive:>11}{t_naive * 1000:>8.1f}"
                      f"{req_naive / max(req_aza, 1):>10.1f}{t_naive / t_aza:>11.2f}")
            print(f"median time ratio naive/azaguard: {statistics.median(ratios):.2f}")


def bench_rules(m: Mappings, now: datetime, repeat: int) -> None:
    print(f"\n2. Rules evaluation per patient (record already built, median of {repeat})")
    for p in build_patients(now):
        record = build_record(ResourceSet.from_resources(p.resources), m)
        t, _ = timed(lambda record=record: evaluate(record, m, now), repeat)
        print(f"{p.id:<26}{t * 1000:>8.3f} ms")


def bench_large(m: Mappings, now: datetime, synthea: Path | None, repeat: int) -> None:
    if synthea is not None:
        raw = synthea.read_bytes()
        label = synthea.name
    else:
        biggest = max(build_patients(now), key=lambda p: len(p.resources))
        extra = [{"resourceType": "Observation", "id": f"pad{i}", "status": "final",
                  "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                  "valueQuantity": {"value": 70, "unit": "/min", "system": "http://unitsofmeasure.org", "code": "/min"}}
                 for i in range(300)]
        raw = json.dumps({"resourceType": "Bundle", "type": "collection",
                          "entry": [{"resource": r} for r in biggest.resources + extra]}).encode()
        label = f"{biggest.id} + 300 unrelated Observations"

    def bytes_to_findings() -> Any:
        rs = resource_set_from_json(json.loads(raw))
        return evaluate(build_record(rs, m), m, now)

    t_json, _ = timed(lambda: json.loads(raw), repeat)
    t_all, _ = timed(bytes_to_findings, repeat)
    print(f"\n3. Bytes to findings: {label} ({len(raw) / 1e6:.1f} MB, median of {repeat})")
    print(f"json.loads baseline {t_json * 1000:.1f} ms; bytes to findings {t_all * 1000:.1f} ms "
          f"(ratio {t_all / t_json:.2f}x the JSON parse)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthea", type=Path, help="a Synthea R4 Bundle for the bytes-to-findings figure")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    m = load_mappings()
    now = datetime.now(UTC)
    if not args.skip_server:
        bench_gathering(m, now, args.repeat)
    bench_rules(m, now, args.repeat * 20)
    bench_large(m, now, args.synthea, args.repeat)


if __name__ == "__main__":
    main()
