"""`azaguard feedback`: which CDS cards were overridden, why, how often (from the service database)."""

from __future__ import annotations

import argparse

from azaguard.cds.feedback_report import to_csv, to_table
from azaguard.cds.store import CdsStore
from azaguard.cli.audit import database_url
from azaguard.cliopts import EXIT_OK, now_of


def run(args: argparse.Namespace) -> int:
    store = CdsStore(database_url(args))
    try:
        rows = store.feedback_since(now_of(args.since, "--since"))
    finally:
        store.close()
    print(to_csv(rows) if args.format == "csv" else to_table(rows), end="" if args.format == "csv" else "\n")
    return EXIT_OK
