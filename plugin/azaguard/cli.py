"""The command line: `azaguard check`, `demo`, `serve`, `scan`, `feedback`, `audit`, `config check`.

Exit codes: 0 evaluated (whatever was found), 1 internal error (a bug: nothing was evaluated; the traceback is
logged), 2 unusable input or usage, 3 the FHIR server failed or refused, 4 evaluated but some alert writes failed.
A failure's exit code and its words come from its class (azaguard/errors.py), read in `main` only.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

# pydantic looks for plugins in every installed distribution's metadata on first import (~15 ms of
# each CLI run); the CLI uses none. Set before anything imports pydantic; an explicit setting wins.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

from azaguard import cliargs, cliopts
from azaguard.cliopts import TOKEN_ENV, mappings_of, now_of
from azaguard.errors import AzaguardError, describe, exit_code
from azaguard.mappings import Mappings, default_mappings_dir, load_mappings_from
from azaguard.resources import InputError
from azaguard.settings import Settings, current

if TYPE_CHECKING:
    from datetime import datetime

    from azaguard.evaluate import CheckResult

EXIT_OK, EXIT_INPUT, EXIT_SERVER, EXIT_WRITE_FAILED = 0, 2, 3, 4


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"azaguard: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_INPUT)


COMMANDS = ("check", "demo", "scan", "mappings", "serve", "feedback", "audit", "config")
SANDBOX_EXTRA = ("authlib", "yaml")  # the `sandbox` extra's modules (pyproject.toml): only `demo` needs them


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
        from azaguard.scan.options import add_arguments as scan_arguments

        scan_arguments(scan)
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
    audit.add_argument("--since", type=cliargs.iso_datetime, required=True, help="from this ISO-8601 date or date-time")
    audit.add_argument("--patient", type=cliargs.fhir_id, help="only this patient id")
    audit.add_argument("--format", choices=("table", "csv", "json"), default="table")
    audit.add_argument("--database", type=cliargs.database_url,
                       help="SQLAlchemy URL of the service's database (default: from the config)")
    audit.add_argument("--config", type=cliargs.existing_file, default=None,
                       help="the app configuration (default: smart_launch.json)")


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
    check.add_argument(
        "--terminology-server",
        type=cliargs.http_url,
        default=settings.terminology_server,
        help="a FHIR terminology server for codes the local value sets do not know "
        f"(default: ${cliopts.TERMINOLOGY_ENV}; none: local value sets only)",
    )
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
    serve.add_argument(
        "--terminology-server",
        type=cliargs.http_url,
        default=settings.terminology_server,
        help="a FHIR terminology server the CDS hooks ask, as check does, for codes the local value sets do not "
        f"know (default: ${cliopts.TERMINOLOGY_ENV}; none: local value sets only)",
    )
    cliopts.add_log_format(serve, None)


def _feedback_arguments(sub: argparse._SubParsersAction[_Parser]) -> None:
    feedback = sub.add_parser("feedback", help="CDS Hooks feedback: which cards were overridden, why, how often")
    feedback.add_argument(
        "--since", type=cliargs.iso_datetime, required=True, help="from this ISO-8601 date or date-time"
    )
    feedback.add_argument("--format", choices=("table", "csv"), default="table")
    feedback.add_argument(
        "--database", type=cliargs.database_url, help="SQLAlchemy URL of the CDS database (default: from the config)"
    )
    feedback.add_argument(
        "--config", type=cliargs.existing_file, default=None, help="the app registration (default: smart_launch.json)"
    )


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    settings = Settings.from_environ()  # the one read of the environment; handed down in args.settings
    try:
        args = build_parser(words[0] if words and words[0] in COMMANDS else None, settings).parse_args(words)
    except SystemExit as exc:  # a refused value (exit 2, said on stderr) or --help (0)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT
    try:
        return HANDLERS[args.command](args)
    except Exception as exc:  # the one way out: the class says the words and the exit code
        if not isinstance(exc, AzaguardError):  # a bug: exit 1, never an answer (0) or "unusable input" (2)
            logging.getLogger("azaguard.cli").error("internal error in %s", args.command, exc_info=exc)
        print(f"azaguard: {_clean(describe(exc))}", *getattr(exc, "__notes__", ()), sep="\n", file=sys.stderr)
        return exit_code(exc)


def _log_lines(args: argparse.Namespace) -> None:
    """`check` and `scan` log as --log-format (or $AZAGUARD_LOG_FORMAT) says; `serve` and `demo` as their config."""
    if not args.log_format:
        return
    from azaguard.ops import logs

    settings: Settings = args.settings
    logs.configure(args.log_format, level=settings.log_level or ("WARNING" if args.command == "check" else "INFO"),
                   patient_ids=settings.log_patient_ids or "hashed")  # type: ignore[arg-type]


def _scan(args: argparse.Namespace) -> int:
    from azaguard.scan.command import run as run_scan

    _log_lines(args)
    _audit_scan(args)
    return run_scan(args, mappings_of(args))


def _config(args: argparse.Namespace) -> int:
    from azaguard.ops.configcheck import run_check

    code: int = run_check(args.config, offline=args.offline, settings=args.settings)
    return code


def _demo(args: argparse.Namespace) -> int:
    try:
        from azaguard.sandbox.demo import run_demo
        from azaguard.sandbox.server import SandboxError
    except ModuleNotFoundError as exc:
        if exc.name not in SANDBOX_EXTRA:
            raise
        print(f"azaguard demo: the sandbox is an optional part of azaguard ({exc.name} is not installed): "
              "pip install 'azaguard[sandbox]' (from a checkout: make demo)", file=sys.stderr)
        return EXIT_INPUT
    try:
        return run_demo(port=args.port, fhir_port=args.fhir_port, serve=not args.no_serve, now=now_of(args.now),
                        mappings=mappings_of(args), insecure_cds=args.insecure_cds_sandbox, config_path=args.config,
                        log_format=args.log_format or args.settings.log_format, settings=args.settings)
    except SandboxError as exc:  # said and exited in main, from its class
        exc.add_note("(choose other ports with --port and --fhir-port)")
        raise


def _serve(args: argparse.Namespace) -> int:
    from azaguard.config import ConfigError
    from azaguard.web.app import serve as serve_app

    try:
        with cliopts.terminology(args, load_mappings_from(default_mappings_dir(args.settings))) as terminology:
            serve_app(args.config, args.host, args.port, insecure_cds=args.insecure_cds_sandbox,
                      log_format=args.log_format, terminology=terminology, settings=args.settings)
    except ConfigError as exc:  # said and exited in main, from its class
        exc.add_note("(azaguard config check --config FILE says every problem, one a line)")
        raise
    return EXIT_OK


def _database_url(args: argparse.Namespace) -> str:
    """--database, else the service database of --config (feedback and the audit trail share it), else the
    default the environment names."""
    from azaguard.config import ConfigError, load_app_config
    from azaguard.ops.database import default_database_url

    if args.database is not None:
        return str(args.database)
    try:
        configured = load_app_config(args.config, settings=args.settings).cds_database_url
    except ConfigError as exc:
        raise InputError(str(exc)) from exc
    return configured or default_database_url(args.settings)


def _feedback(args: argparse.Namespace) -> int:
    from azaguard.cds.feedback_report import to_csv, to_table
    from azaguard.cds.store import CdsStore

    store = CdsStore(_database_url(args))
    try:
        rows = store.feedback_since(now_of(args.since, "--since"))
    finally:
        store.close()
    print(to_csv(rows) if args.format == "csv" else to_table(rows), end="" if args.format == "csv" else "\n")
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    from azaguard.ops import audit

    records = audit.AuditTrail(_database_url(args)).since(now_of(args.since, "--since"), args.patient)
    render = {"csv": audit.to_csv, "json": audit.to_json}.get(args.format, audit.to_table)
    print(render(records), end="" if args.format == "csv" else "\n")
    return EXIT_OK


def _audit_scan(args: argparse.Namespace) -> None:
    """A scan against a server records each patient it reads (and each alert it writes) in the audit trail."""
    if getattr(args, "ndjson", None) is not None or not getattr(args, "fhir_url", None):
        return
    import socket

    from azaguard.ops import audit
    from azaguard.ops.database import default_database_url

    who = args.client_id or ("bearer token from $" + TOKEN_ENV if args.settings.fhir_token else "anonymous")
    actor = audit.Actor(who=f"scan: {who}", source=socket.gethostname(), fhir_base=args.fhir_url)
    audit.audit_scan(audit.AuditTrail(default_database_url(args.settings)), actor)


def _clean(text: object) -> str:
    from azaguard.report import clean

    return clean(text)


def _mappings_report(args: argparse.Namespace) -> int:
    from azaguard import coverage

    version, sets = coverage.coverage(args.mappings or default_mappings_dir(args.settings))
    print(coverage.to_markdown(version, sets) if args.format == "markdown" else coverage.to_text(version, sets), end="")
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    from azaguard.evaluate import check_resources

    _log_lines(args)
    mappings = mappings_of(args)
    now = now_of(args.now)
    if args.bundle is not None:
        if args.write or args.dry_run:
            raise InputError("--write/--dry-run need --fhir-url (a Bundle file has no chart to write to)")
        from azaguard.record import RECORD_TYPES
        from azaguard.resources import load_json_file

        with cliopts.terminology(args, mappings) as terminology:
            resources = load_json_file(args.bundle, RECORD_TYPES)
            result = check_resources(resources, mappings=mappings, now=now, terminology=terminology)
        _print(result, args.format, writes=False)
        return EXIT_OK
    if not args.patient:
        raise InputError("--fhir-url needs --patient ID")
    return _check_server(args, mappings, now)


def _check_server(args: argparse.Namespace, mappings: Mappings, now: datetime) -> int:
    from azaguard.cachedir import cache_dir
    from azaguard.config import is_loopback
    from azaguard.fhir.client import FhirClient
    from azaguard.fhir.memory import CACHE_FILE, ServerMemory
    from azaguard.service import check_on_server

    token = args.settings.fhir_token
    if token and args.fhir_url.lower().startswith("http:") and not is_loopback(args.fhir_url):
        if not args.allow_insecure_http:
            raise InputError(
                f"refusing to send the bearer token from ${TOKEN_ENV} over plain http to {args.fhir_url}: "
                "use https (or --allow-insecure-http if this network is trusted)"
            )
        print("azaguard: warning: sending the bearer token over plain http", file=sys.stderr)
    # A process per patient: what was learnt about the server (batch refused) is kept on disk a while.
    memory = ServerMemory(cache_dir(args.settings) / CACHE_FILE)
    with FhirClient(args.fhir_url, token=token) as client, cliopts.terminology(args, mappings) as terminology:
        result = check_on_server(
            client,
            args.patient,
            mappings=mappings,
            now=now,
            write=args.write,
            dry_run=args.dry_run,
            terminology=terminology,
            memory=memory,
        )
    _print(result, args.format, writes=args.write or args.dry_run)
    failed = result.failed_writes
    if failed:
        temporary = [w for w in failed if w.retryable]
        refused = [w for w in failed if not w.retryable]
        if temporary:
            print(
                f"azaguard: {len(temporary)} alert write(s) failed; re-run to complete them: "
                f"{_clean(temporary[0].error)}",
                file=sys.stderr,
            )
        if refused:
            print(
                f"azaguard: {len(refused)} alert write(s) were refused by the server; re-running will not "
                f"help until that is fixed: {_clean(refused[0].error)}",
                file=sys.stderr,
            )
        return EXIT_WRITE_FAILED
    return EXIT_OK


def _print(result: CheckResult, fmt: str, *, writes: bool) -> None:
    from azaguard import report

    text = (
        report.to_json_text(result, include_writes=writes)
        if fmt == "json"
        else report.to_text(result, include_writes=writes)
    )
    print(text)


HANDLERS = {"check": _check, "scan": _scan, "demo": _demo, "serve": _serve, "feedback": _feedback, "audit": _audit,
            "mappings": _mappings_report, "config": _config}

if __name__ == "__main__":
    raise SystemExit(main())
