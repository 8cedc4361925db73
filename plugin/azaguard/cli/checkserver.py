"""`azaguard check --fhir-url URL --patient ID`: gather one patient from a FHIR server, evaluate, optionally write."""

from __future__ import annotations

import argparse
import sys

from azaguard import cliopts
from azaguard.cli.check import prepare, print_result
from azaguard.cliopts import EXIT_OK, EXIT_WRITE_FAILED, TOKEN_ENV, cache_dir
from azaguard.config import is_loopback
from azaguard.fhir.client import FhirClient
from azaguard.fhir.memory import CACHE_FILE, ServerMemory
from azaguard.report import clean
from azaguard.resources import InputError
from azaguard.service import check_on_server


def run(args: argparse.Namespace) -> int:
    mappings, now = prepare(args)
    if not args.patient:
        raise InputError("--fhir-url needs --patient ID")
    token = args.settings.fhir_token
    if token and args.fhir_url.lower().startswith("http:") and not is_loopback(args.fhir_url):
        if not args.allow_insecure_http:
            raise InputError(
                f"refusing to send the bearer token from ${TOKEN_ENV} over plain http to {args.fhir_url}: "
                "use https (or --allow-insecure-http if this network is trusted)"
            )
        print("azaguard: warning: sending the bearer token over plain http", file=sys.stderr)
    # A process per patient: what was learnt about the server (batch refused) is kept on disk a while.
    memory = ServerMemory(cache_dir(args.settings) / CACHE_FILE)
    with FhirClient(args.fhir_url, token=token) as client, cliopts.terminology(args, mappings) as terminology:
        result = check_on_server(client, args.patient, mappings=mappings, now=now, write=args.write,
                                 dry_run=args.dry_run, terminology=terminology, memory=memory)  # fmt: skip
    print_result(result, args.format, writes=args.write or args.dry_run)
    failed = result.failed_writes
    if failed:
        temporary = [w for w in failed if w.retryable]
        refused = [w for w in failed if not w.retryable]
        if temporary:
            print(f"azaguard: {len(temporary)} alert write(s) failed; re-run to complete them: "
                  f"{clean(temporary[0].error)}", file=sys.stderr)  # fmt: skip
        if refused:
            print(f"azaguard: {len(refused)} alert write(s) were refused by the server; re-running will not "
                  f"help until that is fixed: {clean(refused[0].error)}", file=sys.stderr)  # fmt: skip
        return EXIT_WRITE_FAILED
    return EXIT_OK
