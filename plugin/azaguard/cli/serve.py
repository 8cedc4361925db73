"""`azaguard serve`: the SMART app and CDS Hooks service for a real EHR."""

from __future__ import annotations

import argparse

from azaguard import cliopts
from azaguard.cliopts import EXIT_OK
from azaguard.config import ConfigError
from azaguard.mappings import default_mappings_dir, load_mappings_from
from azaguard.web.app import serve


def run(args: argparse.Namespace) -> int:
    try:
        with cliopts.terminology(args, load_mappings_from(default_mappings_dir(args.settings))) as terminology:
            serve(args.config, args.host, args.port, insecure_cds=args.insecure_cds_sandbox,
                  log_format=args.log_format, terminology=terminology, settings=args.settings)
    except ConfigError as exc:  # said and exited in main, from its class
        exc.add_note("(azaguard config check --config FILE says every problem, one a line)")
        raise
    return EXIT_OK
