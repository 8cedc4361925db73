"""`azaguard check --bundle FILE`: one patient's record from a file, evaluated through the core and printed.

The server path (`--fhir-url`) is cli/checkserver.py: the file path never imports an HTTP client."""

from __future__ import annotations

import argparse
from datetime import datetime

from azaguard import cliopts, report
from azaguard.cliopts import EXIT_OK, mappings_of, now_of
from azaguard.evaluate import CheckResult, check_resources
from azaguard.mappings import Mappings
from azaguard.record import RECORD_TYPES
from azaguard.resources import InputError, load_json_file
from azaguard.settings import Settings


def prepare(args: argparse.Namespace) -> tuple[Mappings, datetime]:
    """What both sources of a check need first: log lines, the mappings and `now` (refused before any reading)."""
    log_lines(args)
    return mappings_of(args), now_of(args.now)


def run(args: argparse.Namespace) -> int:
    mappings, now = prepare(args)
    if args.write or args.dry_run:
        raise InputError("--write/--dry-run need --fhir-url (a Bundle file has no chart to write to)")
    with cliopts.terminology(args, mappings) as terminology:
        resources = load_json_file(args.bundle, RECORD_TYPES)
        result = check_resources(resources, mappings=mappings, now=now, terminology=terminology)
    print_result(result, args.format, writes=False)
    return EXIT_OK


def print_result(result: CheckResult, fmt: str, *, writes: bool) -> None:
    print(report.to_json_text(result, include_writes=writes) if fmt == "json"
          else report.to_text(result, include_writes=writes))  # fmt: skip


def log_lines(args: argparse.Namespace) -> None:
    """`check` and `scan` log as --log-format (or $AZAGUARD_LOG_FORMAT) says; `serve` and `demo` as their config."""
    if not args.log_format:
        return
    from azaguard.ops import logs  # only when log lines are asked for: a plain check configures no logging

    settings: Settings = args.settings
    logs.configure(args.log_format, level=settings.log_level or ("WARNING" if args.command == "check" else "INFO"),
                   patient_ids=settings.log_patient_ids or "hashed")  # type: ignore[arg-type]
