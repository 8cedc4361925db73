"""`azaguard demo`: the embedded sandbox (the `sandbox` extra: cli/__init__.py says how to install it if missing)."""

from __future__ import annotations

import argparse

from azaguard.cliopts import mappings_of, now_of
from azaguard.sandbox import demo
from azaguard.sandbox.server import SandboxError


def run(args: argparse.Namespace) -> int:
    try:
        return demo.run_demo(
            port=args.port, fhir_port=args.fhir_port, serve=not args.no_serve, now=now_of(args.now),
            mappings=mappings_of(args), insecure_cds=args.insecure_cds_sandbox, config_path=args.config,
            log_format=args.log_format or args.settings.log_format, settings=args.settings,
        )  # fmt: skip
    except SandboxError as exc:  # said and exited in main, from its class
        exc.add_note("(choose other ports with --port and --fhir-port)")
        raise
