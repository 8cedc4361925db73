"""`azaguard audit`: who accessed which patient's data, when, from where (from the service database)."""

from __future__ import annotations

import argparse

from azaguard.cliopts import EXIT_OK, now_of
from azaguard.config import ConfigError, load_app_config
from azaguard.ops import audit
from azaguard.ops.database import default_database_url
from azaguard.resources import InputError


def run(args: argparse.Namespace) -> int:
    records = audit.AuditTrail(database_url(args)).since(now_of(args.since, "--since"), args.patient)
    render = {"csv": audit.to_csv, "json": audit.to_json}.get(args.format, audit.to_table)
    print(render(records), end="" if args.format == "csv" else "\n")
    return EXIT_OK


def database_url(args: argparse.Namespace) -> str:
    """--database, else the service database of --config (feedback and the audit trail share it), else the
    default the CLI's settings name."""
    if args.database is not None:
        return str(args.database)
    try:
        configured = load_app_config(args.config, settings=args.settings).cds_database_url
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    return configured or default_database_url(args.settings)
