"""The command line: `azaguard check`, `demo`, `serve`, `scan`, `feedback`, `audit`, `config check`.

This module parses the command line and runs the command's handler: one module of this package per command
(`HANDLERS`, imported only when that command runs), each importing at its top what its command needs.
Exit codes: 0 evaluated (whatever was found), 1 internal error (a bug: nothing was evaluated; the traceback is
logged), 2 unusable input or usage, 3 the FHIR server failed or refused, 4 evaluated but some alert writes failed.
A failure's exit code and its words come from its class (azaguard/errors.py), read in `main` only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import import_module
from typing import Any

# pydantic looks for plugins in every installed distribution's metadata on first import (~15 ms of
# each CLI run); the CLI uses none. Set before anything imports pydantic; an explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from azaguard import cliargs, cliopts
from azaguard.cliopts import EXIT_INPUT, EXIT_OK, EXIT_SERVER, EXIT_WRITE_FAILED, TOKEN_ENV
from azaguard.errors import AzaguardError, describe, exit_code
from azaguard.report import clean
from azaguard.settings import Settings, current

__all__ = ["COMMANDS", "EXIT_INPUT", "EXIT_OK", "EXIT_SERVER", "EXIT_WRITE_FAILED", "HANDLERS", "build_parser",
           "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"azaguard: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


COMMANDS = ("check", "demo", "scan", "mappings", "serve", "feedback", "audit", "config")

# Each command's handler as "module:function", imported when that command runs: the one place the command
# line defers an import (`check --bundle` never loads the HTTP client, the web stack or the database;
# tests/test_lazy_imports.py). `check` has two rows: a Bundle file is evaluated without any server code.
HANDLERS = {
    "check": "azaguard.cli.check:run",
    "check --fhir-url": "azaguard.cli.checkserver:run",
    "scan": "azaguard.cli.scan:run",
    "demo": "azaguard.cli.demo:run",
    "serve": "azaguard.cli.serve:run",
    "feedback": "azaguard.cli.feedback:run",
    "audit": "azaguard.cli.audit:run",
    "mappings": "azaguard.cli.mappings:run",
    "config": "azaguard.cli.config:run",
}
# A command that needs an optional extra (pyproject.toml), and the top-level modules that extra installs.
EXTRAS = {"demo": ("sandbox", ("authlib", "yaml"))}


def build_parser(only: str | None = None, settings: Settings | None = None) -> argparse.ArgumentParser:
    """The CLI's parser; with `only`, just that command's (a one-shot `check` need not build the other five,
    ~5 ms of its run). Anything else (no command, `--help`, a misspelt command) gets the whole parser.
    `settings` (the environment, read by the entry point) give the defaults the environment backs, and ride
    along in every command's arguments as `args.settings`."""
    settings = current(settings)
    parser = _Parser(prog="azaguard", description="Safety checks for patients on azathioprine, over FHIR R4.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    if only in (None, "check"):
        _check_arguments(sub, settings)
    if only in (None, "demo"):
        _demo_arguments(sub)
    if only in (None, "scan"):
        scan = sub.add_parser("scan", help="every patient on azathioprine: evaluate, report, optionally write alerts")
        load("azaguard.scan.options:add_arguments")(scan)  # its own module: other commands never import scan/
        scan.set_defaults(terminology_server=settings.terminology_server)  # a string default: checked as typed
        cliopts.add_log_format(scan, settings.log_format or "text")
        cliopts.add_mappings(scan)
    if only in (None, "mappings"):
        maps = sub.add_parser("mappings", help="about the mappings: --report prints per value set its codes and source")
        maps.add_argument("--report", action="store_true", required=True, help="the coverage report")
        maps.add_argument("--format", choices=("text", "markdown"), default="text")
        maps.add_argument("--mappings", type=cliargs.existing_dir, help="a mappings folder (default: the bundled one)")
    if only in (None, "serve"):
        _serve_arguments(sub, settings)
    if only in (None, "feedback"):
        _feedback_arguments(sub)
    if only in (None, "audit"):
        _audit_arguments(sub)
    if only in (None, "config"):
        config = sub.add_parser("config", help="about the configuration: `config check --config FILE`")
        config.add_argument("action", choices=("check",), help="check: validate, then try to reach what it names")
        config.add_argument("--config", type=cliargs.existing_file, required=True,
                            help="the configuration file to check")
        config.add_argument("--offline", action="store_true", help="validate only; reach nothing")
    for command in sub.choices.values():
        cliopts.add_environment(command, settings)
    return parser


def _audit_arguments(sub: argparse._SubParsersAction[_Parser]) -> None:
    audit = sub.add_parser("audit", help="the audit trail: who accessed which patient's data, when, from where")
    cliopts.add_service_records(audit, "service's")
    audit.add_argument("--patient", type=cliargs.fhir_id, help="only this patient id")
    audit.add_argument("--format", choices=("table", "csv", "json"), default="table")


def _check_arguments(sub: argparse._SubParsersAction[_Parser], settings: Settings) -> None:
    check = sub.add_parser("check", help="evaluate one patient from a Bundle file or a FHIR server")
    source = check.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--bundle", type=cliargs.existing_file, help="a FHIR Bundle (any type) or JSON array of one patient's resources"
    )
    source.add_argument(
        "--fhir-url", type=cliargs.http_url, help="FHIR R4 base URL (bearer token, if any, from $" + TOKEN_ENV + ")"
    )
    cliopts.add_log_format(check, settings.log_format)
    check.add_argument("--patient", type=cliargs.fhir_id, help="patient id on the server (with --fhir-url)")
    check.add_argument(
        "--now", type=cliargs.iso_datetime, help="evaluate as of this ISO-8601 time (default: the current time)"
    )
    check.add_argument("--format", choices=("text", "json"), default="text")
    check.add_argument("--write", action="store_true", help="write alerts (DetectedIssue, Flag) back to the server")
    check.add_argument("--dry-run", action="store_true", help="show the alerts that --write would write")
    check.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="send the bearer token over plain http to a host that is not 127.0.0.1/localhost",
    )
    cliopts.add_terminology_server(check, settings.terminology_server, where="")
    cliopts.add_mappings(check)


def _demo_arguments(sub: argparse._SubParsersAction[_Parser]) -> None:
    demo = sub.add_parser(
        "demo", help="the embedded sandbox: local FHIR server, synthetic patients, EHR simulator, app"
    )
    demo.add_argument("--port", type=cliargs.port, default=8400, help="port of the sandbox EHR and app (default 8400)")
    demo.add_argument(
        "--fhir-port",
        type=cliargs.port_or_any,
        default=8401,
        help="port of the local FHIR server (default 8401; 0: any free port)",
    )
    demo.add_argument("--no-serve", action="store_true", help="evaluate and write the alerts, then stop")
    demo.add_argument(
        "--now", type=cliargs.iso_datetime, help="evaluate as of this ISO-8601 time (default: the current time)"
    )
    demo.add_argument(
        "--insecure-cds-sandbox",
        action="store_true",
        help="also accept unsigned CDS Hooks calls (e.g. from an external CDS Hooks sandbox); demo only",
    )
    demo.add_argument("--config", type=cliargs.existing_file, default=None,
                      help="an app configuration (e.g. to register an external EHR or CDS client); its URLs on "
                      "the app's own origin are moved to the demo's port (default: smart_launch.json)")
    cliopts.add_log_format(demo, None)
    cliopts.add_mappings(demo)


def _serve_arguments(sub: argparse._SubParsersAction[_Parser], settings: Settings) -> None:
    serve = sub.add_parser("serve", help="run the SMART app for a real EHR")
    serve.add_argument("--host", type=cliargs.host, default="127.0.0.1")
    serve.add_argument("--port", type=cliargs.port, default=8400)
    serve.add_argument(
        "--config", type=cliargs.existing_file, default=None, help="the app registration (default: smart_launch.json)"
    )
    serve.add_argument(
        "--insecure-cds-sandbox",
        action="store_true",
        help="DEMO ONLY: accept CDS Hooks calls without a valid signed JWT (never with real patients)",
    )
    cliopts.add_terminology_server(serve, settings.terminology_server, where=" the CDS hooks ask, as check does,")
    cliopts.add_log_format(serve, None)


def _feedback_arguments(sub: argparse._SubParsersAction[_Parser]) -> None:
    feedback = sub.add_parser("feedback", help="CDS Hooks feedback: which cards were overridden, why, how often")
    cliopts.add_service_records(feedback, "CDS")
    feedback.add_argument("--format", choices=("table", "csv"), default="table")


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    settings = Settings.from_environ()  # the one read of the environment; handed down in args.settings
    try:
        args = build_parser(words[0] if words and words[0] in COMMANDS else None, settings).parse_args(words)
    except SystemExit as exc:  # a refused value (exit 2, said on stderr) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        handler = load(HANDLERS[handler_key(args)])
    except ModuleNotFoundError as exc:
        extra, modules = EXTRAS.get(args.command, ("", ()))
        if exc.name not in modules:
            raise
        print(f"azaguard {args.command}: the {extra} is an optional part of azaguard ({exc.name} is not installed): "
              f"pip install 'azaguard[{extra}]' (from a checkout: make {args.command})", file=sys.stderr)
        return EXIT_INPUT
    try:
        code: int = handler(args)
        return code
    except Exception as exc:  # the one way out: the class says the words and the exit code
        if not isinstance(exc, AzaguardError):  # a bug: exit 1, never an answer (0) or "unusable input" (2)
            logging.getLogger("azaguard.cli").error("internal error in %s", args.command, exc_info=exc)
        print(f"azaguard: {clean(describe(exc))}", *getattr(exc, "__notes__", ()), sep="\n", file=sys.stderr)
        return exit_code(exc)


def handler_key(args: argparse.Namespace) -> str:
    """The row of HANDLERS that runs these arguments."""
    return "check --fhir-url" if args.command == "check" and args.bundle is None else str(args.command)


def load(target: str) -> Callable[..., Any]:
    """The function a "module:function" string names, its module imported now."""
    module, _, name = target.partition(":")
    found: Callable[..., Any] = getattr(import_module(module), name)
    return found
