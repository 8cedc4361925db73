"""`azaguard scan`: every patient on azathioprine (the work is scan/command.py's); a server scan is audited."""

from __future__ import annotations

import argparse
import socket

from azaguard.cli.check import log_lines
from azaguard.cliopts import TOKEN_ENV, mappings_of
from azaguard.ops import audit
from azaguard.ops.database import default_database_url
from azaguard.scan.command import run as run_scan


def run(args: argparse.Namespace) -> int:
    log_lines(args)
    audit_scan(args)
    return run_scan(args, mappings_of(args))


def audit_scan(args: argparse.Namespace) -> None:
    """A scan against a server records each patient it reads (and each alert it writes) in the audit trail."""
    if args.ndjson is not None or not args.fhir_url:
        return
    who = args.client_id or ("bearer token from $" + TOKEN_ENV if args.settings.fhir_token else "anonymous")
    actor = audit.Actor(who=f"scan: {who}", source=socket.gethostname(), fhir_base=args.fhir_url)
    audit.audit_scan(audit.AuditTrail(default_database_url(args.settings)), actor)
