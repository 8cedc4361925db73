"""What several commands share: the options two or more of them take, the environment variables behind
them, what those options build (the mappings, `now`, the site's terminology client), and the exit codes.

Below every command (cli/ and scan/ import it, it imports neither), and light to import:
the CLI builds its parser on every run, so the HTTP client is imported only when a terminology server is named.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from azaguard import cliargs
from azaguard.fhirtypes import dates
from azaguard.mappings import Mappings, default_mappings_dir, load_mappings_from
from azaguard.report import clean
from azaguard.resources import InputError
from azaguard.settings import FHIR_TOKEN as TOKEN_ENV
from azaguard.settings import LOG_FORMAT as LOG_FORMAT_ENV
from azaguard.settings import TERMINOLOGY_SERVER as TERMINOLOGY_ENV
from azaguard.settings import Settings

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

__all__ = ["EXIT_INPUT", "EXIT_OK", "EXIT_SERVER", "EXIT_WRITE_FAILED", "LOG_FORMAT_ENV", "TERMINOLOGY_ENV",
           "TOKEN_ENV", "add_environment", "add_log_format", "add_mappings", "add_service_records",
           "add_terminology_server", "cache_dir", "mappings_of", "now_of", "terminology"]

# 0 evaluated (whatever was found), 2 unusable input or usage, 3 the FHIR server failed or refused,
# 4 evaluated but some alert writes failed (a failure's own code comes from its class: errors.py).
EXIT_OK, EXIT_INPUT, EXIT_SERVER, EXIT_WRITE_FAILED = 0, 2, 3, 4


def add_mappings(p: argparse.ArgumentParser) -> None:
    """--mappings and --monitoring-schedule: which clinical knowledge the command evaluates with."""
    p.add_argument("--mappings", type=cliargs.existing_dir, help="a mappings folder (default: the bundled one)")
    p.add_argument("--monitoring-schedule", type=cliargs.schedule_name, help="us-label (default), bsr-2017 or eu-smpc")


def add_log_format(p: argparse.ArgumentParser, default: str | None) -> None:
    p.add_argument("--log-format", choices=("text", "json"), default=default,
                   help=f"log lines on stderr as text or JSON (default: ${LOG_FORMAT_ENV}, else "
                   + ("the config's log_format)" if default is None else f"{default})"))  # fmt: skip


def add_terminology_server(p: argparse.ArgumentParser, default: str | None, *, where: str) -> None:
    """--terminology-server: a FHIR terminology server for codes the local value sets do not know (`where`:
    who asks it, when). `default` is the environment's (a string default: argparse checks it as if typed)."""
    p.add_argument("--terminology-server", type=cliargs.http_url, default=default, metavar="URL",
                   help=f"a FHIR terminology server{where} for codes the local value sets do not know "
                   f"(default: ${TERMINOLOGY_ENV}; none: local value sets only)")  # fmt: skip


def add_service_records(p: argparse.ArgumentParser, what: str) -> None:
    """--since, --database and --config: which of the service database's records (`what`) a report reads."""
    p.add_argument("--since", type=cliargs.iso_datetime, required=True, help="from this ISO-8601 date or date-time")
    p.add_argument("--database", type=cliargs.database_url,
                   help=f"SQLAlchemy URL of the {what} database (default: from the config)")
    p.add_argument("--config", type=cliargs.existing_file, default=None,
                   help="the app configuration (default: smart_launch.json)")  # fmt: skip


def add_environment(p: argparse.ArgumentParser, settings: Settings) -> None:
    """The entry point's settings into the parsed arguments (`args.settings`): the environment is read once,
    where the command line is, and every command finds it there."""
    p.set_defaults(settings=settings)


def cache_dir(settings: Settings) -> Path:
    """Where the CLI keeps what it learns between runs: ~/.cache/azaguard (or $XDG_CACHE_HOME/azaguard)."""
    return settings.cache_home / "azaguard"


def mappings_of(args: argparse.Namespace) -> Mappings:
    """The mappings --mappings names (validated), else the bundled ones (validated once per content, then
    read back from the cache: see load_mappings_from), with --monitoring-schedule applied."""
    if args.mappings:
        m = load_mappings_from(args.mappings)
    else:
        m = load_mappings_from(default_mappings_dir(args.settings), cache_dir=cache_dir(args.settings))
    if args.monitoring_schedule:
        m = m.with_monitoring_schedule(args.monitoring_schedule)
    return m


def now_of(text: str | None, option: str = "--now") -> datetime:
    """The time an option gives (default: the current time); InputError naming the option otherwise."""
    if not text:
        return datetime.now(UTC)
    try:
        return dates.moment(text)
    except InputError as exc:  # the message quotes the value, made safe for a terminal
        raise InputError(f"{option} {clean(text[:64])!r} is {exc}") from exc


@contextmanager
def terminology(args: argparse.Namespace, mappings: Mappings) -> Iterator[TerminologyServer | None]:
    """The site's terminology server client (closed afterwards), or None for local value sets only."""
    if not args.terminology_server:
        yield None
        return
    # The HTTP client only when a server is named: a plain `check --bundle` imports no httpx.
    from azaguard.fhir.client import FhirClient
    from azaguard.terminology.server import TerminologyServer

    try:
        # Bounded as every outbound fetch: $translate/$lookup answers are small and must not hold a check.
        client = FhirClient(args.terminology_server, strict_search=False, timeout=10.0, max_retries=1,
                            max_response_bytes=4 << 20, response_deadline=15.0)  # fmt: skip
    except ValueError as exc:
        raise InputError(f"--terminology-server: {exc}") from exc
    with client:
        yield TerminologyServer(client, mappings)
