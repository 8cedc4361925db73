"""`azaguard config check --config FILE`: validate the configuration, then try to reach what it names."""

from __future__ import annotations

import argparse

from azaguard.ops.configcheck import run_check


def run(args: argparse.Namespace) -> int:
    return run_check(args.config, offline=args.offline, settings=args.settings)
