"""Benchmark (not a test): service time of one CDS Hooks call, p50 / p99. Prints figures, asserts nothing.

1. Full prefetch, every sandbox patient: patient-view, and order-select with a draft MMR order, through
   the ASGI app in this process (JWT verification, the replay cache and card log in SQLite included;
   no sockets). Baseline in the same process: json.loads of the same request body.
2. The largest record: a Synthea R4 Bundle (--synthea FILE; default the largest in shared/synthea-r4/ beside
   the checkout, as bench.py, if present), with an azathioprine order added so every rule runs; every
   resource of a prefetched type is sent (an upper bound of what an EHR would prefetch).
3. fhirAuthorization: no prefetch, the record fetched from the local FHIR server (sekmet-fhir) in one
   batch per call (--skip-server to leave it out).

Target (docs/design): p99 <= 50 ms with prefetch on the sandbox patients; the spec's budget is ~500 ms.
Run: .venv/bin/python bench/bench_cds.py [--synthea FILE] [--repeat N] [--skip-server]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.jwk import ECKey
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.cds.discovery import prefetch_templates
from azaguard.cds.store import CdsStore
from azaguard.config import CdsClient, load_app_config
from azaguard.mappings import Mappings, load_mappings
from azaguard.sandbox.patients import build_patients, transaction_bundle

BASE = "http://127.0.0.1:8400"
ISS = "https://bench-ehr.example"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "synthea-r4"  # beside the checkout, as bench.py; optional
_TYPES = {
    "medicationOrders": ("MedicationRequest", "Medication"), "observations": ("Observation",),
    "conditions": ("Condition",), "immunizations": ("Immunization",),
    "immunizationRecommendations": ("ImmunizationRecommendation",), "serviceRequests": ("ServiceRequest",),
    "medicationStatements": ("MedicationStatement",), "medicationDispenses": ("MedicationDispense",),
    "medicationAdministrations": ("MedicationAdministration",),
}
AZATHIOPRINE = {
    "resourceType": "MedicationRequest", "id": "bench-aza", "status": "active", "intent": "order",
    "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                              "code": "197388", "display": "azathioprine 50 MG Oral Tablet"}]},
    "authoredOn": "2026-01-01",
}


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered) * 1000, p99 * 1000


def prefetch_of(resources: list[dict[str, Any]], patient_id: str, m: Mappings) -> dict[str, Any]:
    out: dict[str, Any] = {"patient": next(r for r in resources if r["resourceType"] == "Patient")}
    for key in prefetch_templates(m):
        if key == "patient":
            continue
        found = [r for r in resources if r["resourceType"] in _TYPES.get(key, ())]
        out[key] = {"resourceType": "Bundle", "type": "searchset",
                    "entry": [{"resource": r} for r in found]} if found else None
    return out


def hook_body(hook: str, patient_id: str, prefetch: dict[str, Any] | None, **extra: Any) -> bytes:
    context: dict[str, Any] = {"userId": "Practitioner/bench", "patientId": patient_id}
    if hook != "patient-view":
        mmr = {"resourceType": "MedicationRequest", "id": "draft-mmr", "status": "draft", "intent": "order",
               "subject": {"reference": f"Patient/{patient_id}"},
               "medicationCodeableConcept": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]}}
        context["draftOrders"] = {"resourceType": "Bundle", "entry": [{"resource": mmr}]}
        context["selections"] = ["MedicationRequest/draft-mmr"]
    body = {"hook": hook, "hookInstance": str(uuid.uuid4()), "context": context, "prefetch": prefetch or {}, **extra}
    return json.dumps(body).encode()


class Bench:
    def __init__(self, m: Mappings, now: datetime, database: str) -> None:
        self.key = ECKey.generate_key("P-384", parameters={"kid": "bench"})
        config = load_app_config(public_base=BASE).model_copy(update={
            "cds_clients": (CdsClient(iss=ISS, jwks={"keys": [self.key.as_dict(private=False)]}),)})
        self.service = CdsService(config, mappings=m, store=CdsStore(database), now=lambda: now)
        # CPU time of this process per call: on a shared machine, wall time also measures the neighbours.
        self.cpu: list[float] = []
        # Entered once: one event loop for every call (a bare TestClient starts a loop per request).
        self.client = TestClient(Starlette(routes=cds_routes(self.service))).__enter__()

    def token(self, path: str) -> str:
        t = int(time.time())
        claims = {"iss": ISS, "aud": BASE + path, "iat": t, "exp": t + 300, "jti": str(uuid.uuid4())}
        return jwt.encode({"alg": "ES384", "kid": "bench", "typ": "JWT"}, claims, self.key, algorithms=["ES384"])

    def call(self, service_id: str, body: bytes) -> float:
        path = f"/cds-services/{service_id}"
        headers = {"Authorization": f"Bearer {self.token(path)}", "Content-Type": "application/json"}
        cpu = time.process_time()
        start = time.perf_counter()
        response = self.client.post(path, content=body, headers=headers)
        elapsed = time.perf_counter() - start
        self.cpu.append(time.process_time() - cpu)
        if response.status_code != 200:
            raise SystemExit(f"{service_id}: {response.status_code} {response.text[:300]}")
        return elapsed


def report(label: str, samples: list[float], baseline: list[float] | None = None,
           cpu: list[float] | None = None) -> None:
    p50, p99 = percentiles(samples)
    extra = ""
    if cpu:
        c50, c99 = percentiles(cpu)
        extra += f"  CPU p50 {c50:5.1f} p99 {c99:5.1f} ms"
    if baseline:
        b50, _ = percentiles(baseline)
        extra += f"  (json.loads of the body: p50 {b50:.2f} ms)"
    print(f"  {label:<58} n={len(samples):<4} p50 {p50:6.1f} ms  p99 {p99:6.1f} ms{extra}")


def timed_loads(body: bytes, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        json.loads(body)
        out.append(time.perf_counter() - start)
    return out


def bench_prefetch(bench: Bench, m: Mappings, now: datetime, repeat: int) -> None:
    print("1. Full prefetch, sandbox patients (in-process ASGI, JWT + replay cache + card log included)")
    for hook, service_id in (("patient-view", "azaguard-patient-view"), ("order-select", "azaguard-order-select")):
        samples: list[float] = []
        loads: list[float] = []
        bench.cpu.clear()
        for p in build_patients(now):
            body = hook_body(hook, p.id, prefetch_of(p.resources, p.id, m))
            bench.call(service_id, body)  # warm
            bench.cpu.pop()
            samples += [bench.call(service_id, body) for _ in range(repeat)]
            loads += timed_loads(body, repeat)
        report(f"{hook}, {len(build_patients(now))} patients × {repeat}", samples, loads, bench.cpu)


def largest_synthea(path: Path | None) -> Path | None:
    if path is not None:
        return path
    if SHARED.is_dir():
        files = sorted(SHARED.glob("*.json"), key=lambda f: f.stat().st_size, reverse=True)
        return files[0] if files else None
    return None


def bench_large(bench: Bench, m: Mappings, path: Path | None, repeat: int) -> None:
    if path is None:
        print("2. Largest record: skipped (no Synthea file; give --synthea FILE)")
        return
    bundle = json.loads(path.read_bytes())
    resources = [e["resource"] for e in bundle.get("entry", [])]
    patient = next(r for r in resources if r["resourceType"] == "Patient")
    aza = dict(AZATHIOPRINE, subject={"reference": f"Patient/{patient['id']}"})
    prefetch = prefetch_of([*resources, aza], patient["id"], m)
    print(f"2. Largest record: {path.name} ({path.stat().st_size / 1e6:.1f} MB, {len(resources)} resources)")
    for hook, service_id in (("patient-view", "azaguard-patient-view"), ("order-select", "azaguard-order-select")):
        body = hook_body(hook, patient["id"], prefetch)
        bench.call(service_id, body)
        bench.cpu.clear()
        samples = [bench.call(service_id, body) for _ in range(repeat)]
        report(f"{hook}, body {len(body) / 1e6:.1f} MB", samples, timed_loads(body, repeat), bench.cpu)


def bench_fetching(bench: Bench, now: datetime, repeat: int, data_dir: Path) -> None:
    from azaguard.fhir.client import FhirClient
    from azaguard.sandbox.server import SandboxServer

    server = SandboxServer(data_dir=data_dir)  # its own data: never resets a sandbox someone else is using
    server.ensure_installed()
    server.start()
    try:
        server.reset()
        patients = build_patients(now)
        with FhirClient(server.base_url) as client:
            client.transaction(transaction_bundle(patients))
        auth = {"fhirServer": server.base_url, "fhirAuthorization": {
            "access_token": "bench", "token_type": "Bearer", "expires_in": 300, "scope": "patient/*.rs",
            "subject": "azaguard"}}
        print("3. fhirAuthorization: no prefetch, one batch to the local FHIR server per call")
        for hook, service_id in (("patient-view", "azaguard-patient-view"),
                                 ("order-select", "azaguard-order-select")):
            samples: list[float] = []
            bench.cpu.clear()
            for p in patients:
                body = hook_body(hook, p.id, None, **auth)
                bench.call(service_id, body)
                bench.cpu.pop()
                samples += [bench.call(service_id, body) for _ in range(max(1, repeat // 3))]
            report(f"{hook}, {len(patients)} patients", samples, cpu=bench.cpu)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--synthea", type=Path)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--skip-server", action="store_true")
    args = parser.parse_args()
    m = load_mappings()
    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(m, now, f"sqlite:///{Path(tmp) / 'cds.sqlite'}")
        run: list[Callable[[], None]] = [
            lambda: bench_prefetch(bench, m, now, args.repeat),
            lambda: bench_large(bench, m, largest_synthea(args.synthea), max(5, args.repeat // 3)),
        ]
        if not args.skip_server:
            run.append(lambda: bench_fetching(bench, now, args.repeat, Path(tmp) / "fhir-data"))
        for step in run:
            step()
        bench.service.store.close()


if __name__ == "__main__":
    main()
