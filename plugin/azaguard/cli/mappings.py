"""`azaguard mappings --report`: per value set, its codes and their source."""

from __future__ import annotations

import argparse

from azaguard import coverage
from azaguard.cliopts import EXIT_OK
from azaguard.mappings import default_mappings_dir


def run(args: argparse.Namespace) -> int:
    version, sets = coverage.coverage(args.mappings or default_mappings_dir(args.settings))
    print(coverage.to_markdown(version, sets) if args.format == "markdown" else coverage.to_text(version, sets), end="")
    return EXIT_OK
