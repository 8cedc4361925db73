"""`azaguard demo`: the embedded sandbox, end to end, on a fresh machine.

Starts the local FHIR server (installing it on first run), loads the synthetic
patients, evaluates every one and writes its alerts, prints a summary, then
serves the sandbox EHR (launcher, authorization server, FHIR proxy) and the
azaguard app so a clinician can launch it in a browser.
"""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import TextIO

import uvicorn

from azaguard.config import load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.findings import RULE_IDS, Status
from azaguard.mappings import Mappings
from azaguard.ops import logs, runtime
from azaguard.ops.http import Operations
from azaguard.patient.content import load_questionnaire
from azaguard.registry import short
from azaguard.sandbox.ehr.backend import demo_client
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.server import SandboxServer, default_home
from azaguard.sandbox.site import create_site
from azaguard.service import CheckResult, check_on_server
from azaguard.settings import Settings, current

_SHORT = {
    Status.HOLD: "HOLD",
    Status.CAUTION: "caution",
    Status.CANNOT_EVALUATE: "cannot",
    Status.OK: "ok",
    Status.NOT_APPLICABLE: "n/a",
}


DEFAULT_FHIR_PORT = 8401  # stable, so the printed commands and bookmarks work run after run


def run_demo(
    *,
    port: int,
    serve: bool,
    now: datetime,
    mappings: Mappings,
    fhir_port: int = DEFAULT_FHIR_PORT,
    out: TextIO = sys.stdout,
    insecure_cds: bool = False,
    config_path: Path | None = None,
    log_format: str | None = None,
    settings: Settings | None = None,
) -> int:
    server = SandboxServer(port=fhir_port, home=default_home(settings))
    print("azaguard demo: preparing the local FHIR server (the first run installs it, ~30 s)...", file=out, flush=True)
    server.ensure_installed()
    server.start()
    try:
        server.reset()  # a fresh sandbox every run: the summary below is what this run wrote
        patients = build_patients(now)
        with FhirClient(server.base_url) as client:
            client.transaction(transaction_bundle(patients))
            client.update(load_questionnaire())  # the patient check-in's Questionnaire, by its canonical id
            results = [
                check_on_server(client, p.id, mappings=mappings, now=now, write=True) for p in patients
            ]
        print(summary_table([(p.id, p.story) for p in patients], results), file=out)
        failed = sum(len(r.failed_writes) for r in results)
        written = sum(1 for r in results for w in r.writes if w.outcome in ("created", "closed"))
        print(f"\n{written} alert resources written to {server.base_url}"
              + (f"; {failed} FAILED (re-run to complete)" if failed else ""), file=out)
        print(f"Look at them in the server's console: {server.console_url}", file=out)
        print(f"or query it: {server.base_url}/DetectedIssue?patient=Patient/{patients[0].id}", file=out)
        if serve:
            print("\n" + try_it(server.base_url, results), file=out)
            _serve(server.base_url, port, mappings, out, insecure_cds, config_path, log_format, settings)
        return 4 if failed else 0
    finally:
        server.stop()


def summary_table(stories: list[tuple[str, str]], results: list[CheckResult]) -> str:
    header = f"{'patient':<24} " + " ".join(f"{short(r):<9}" for r in RULE_IDS) + " alerts"
    lines = [header, "-" * len(header)]
    for (pid, story), result in zip(stories, results, strict=True):
        cells = []
        for rule in RULE_IDS:
            status = next(f.status for f in result.findings if f.rule == rule)
            cells.append(f"{_SHORT[status]:<9}")
        alerts = sum(1 for w in result.writes if w.outcome in ("created", "exists"))
        lines.append(f"{pid:<24} " + " ".join(cells) + f" {alerts}")
        lines.append(f"  {story}")
        if result.verdict is not None:
            lines.append(f"  → {result.verdict.headline}")
    return "\n".join(lines)


def try_it(fhir_base: str, results: list[CheckResult]) -> str:
    """A ready-to-run `azaguard check` against the demo's FHIR server, for a patient with a hold."""
    chosen = next(
        (r for r in results if r.verdict is not None and r.verdict.holds),
        next((r for r in results if r.verdict is not None and r.verdict.actions), results[0] if results else None),
    )
    if chosen is None:
        return ""
    patient_id = chosen.patient_ref.split("/", 1)[-1]
    return (
        "While the demo runs, check a patient from another terminal:\n"
        f"  .venv/bin/azaguard check --fhir-url {fhir_base} --patient {patient_id}"
    )


def _serve(
    fhir_base: str, port: int, mappings: Mappings, out: TextIO, insecure_cds: bool, config_path: Path | None,
    log_format: str | None, settings: Settings | None,
) -> None:
    public_base = f"http://127.0.0.1:{port}"
    settings = current(settings)  # one snapshot for the apps, the stores and the readiness checks
    config = load_app_config(config_path, public_base=public_base, settings=settings)
    runtime.start(config, settings, log_format=log_format)  # text by default: one line per request on stderr
    site = create_site(
        fhir_upstream=fhir_base,
        public_base=public_base,
        app_config=config,
        mappings=mappings,
        insecure_cds=insecure_cds,
        settings=settings,
    )
    backend, key_path = demo_client(default_home(settings))
    site.state.ehr.backend.register(backend)
    print(f"\nThe sandbox EHR is running: open {public_base}/ and launch a patient, or open a chart to see the "
          "CDS Hooks alerts and order a vaccine (Ctrl-C to stop).", file=out, flush=True)
    print(f"Patients: the patient portal {public_base}/ehr/portal/ signs you in as a synthetic patient and opens "
          "azaguard's patient view (what to do, the leaflet's advice, a symptom check-in).", file=out, flush=True)
    print(f"CDS Hooks discovery: {public_base}/cds-services (calls must carry a JWT signed by a registered client)"
          + ("; INSECURE: unsigned calls accepted" if insecure_cds else ""), file=out, flush=True)
    print(f"Population scan with SMART Backend Services, from another terminal:\n  azaguard scan --fhir-url "
          f"{public_base}/ehr/fhir --client-id {backend.client_id} --private-key {key_path} --dry-run "
          f"--patient-link '{public_base}/ehr/launch/{{id}}'", file=out, flush=True)
    database = config.cds_database_url or "the default SQLite file (~/.local/state/azaguard/cds.sqlite)"
    print(f"Operations: metrics at {public_base}/metrics, health at {public_base}/healthz and /readyz; "
          f"who opened which patient: .venv/bin/azaguard audit --since {datetime.now().date()} "
          f"(database: {database}).",
          file=out, flush=True)
    app = Operations(site, routes=site.routes, checks=runtime.readiness_checks(config, settings, mappings),
                     trusted_proxies=config.trusted_proxies, metrics_networks=config.metrics_networks,
                     metrics_token=config.metrics_token())
    # uvicorn's access log is off (its line has the query string with the authorization code): ops.http
    # logs each request with its route template instead.
    logs.exit_0_on_sigterm()
    uvicorn.run(app, host="127.0.0.1", port=port, proxy_headers=False, **logs.uvicorn_options())
