"""The options of `azaguard scan` (light to import: the CLI builds its parser from it on every run)."""

from __future__ import annotations

import argparse
from pathlib import Path

from azaguard import cliargs, cliopts
from azaguard.cliopts import TOKEN_ENV

DEFAULT_CONCURRENCY = 4


def add_arguments(p: argparse.ArgumentParser) -> None:
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--fhir-url", type=cliargs.http_url, help=f"FHIR R4 base URL (bearer token from ${TOKEN_ENV}, or --client-id)"
    )
    source.add_argument(
        "--ndjson", type=cliargs.existing_dir, metavar="DIR", help="evaluate an existing Bulk Data export (no server)"
    )
    who = p.add_mutually_exclusive_group()
    who.add_argument("--group", type=cliargs.fhir_id, metavar="ID", help="scan the members of this Group")
    who.add_argument(
        "--patients", type=cliargs.existing_file, metavar="FILE", help="scan these patient ids (one a line)"
    )
    who.add_argument("--all-patients", action="store_true", help="scan every Patient on the server")
    p.add_argument(
        "--now", type=cliargs.iso_datetime, help="evaluate as of this ISO-8601 time (default: the current time)"
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help="write the alerts (DetectedIssue, Flag) to the server")
    mode.add_argument("--dry-run", action="store_true", help="count the alerts --write would write")
    p.add_argument(
        "--concurrency", type=cliargs.number(1, 64), default=DEFAULT_CONCURRENCY, help="patients at a time (default 4)"
    )
    p.add_argument(
        "--out", type=cliargs.output_dir, default=Path("azaguard-scan"), help="results folder (default ./azaguard-scan)"
    )
    p.add_argument("--resume", action="store_true", help="skip the patients already evaluated in --out")
    p.add_argument(
        "--patient-link",
        type=cliargs.link_template,
        metavar="TEMPLATE",
        help="link to a patient in the app; {id} is the patient id",
    )
    cliopts.add_terminology_server(p, None, where=" (server scan only)")  # default: cli/__init__.py
    p.add_argument(
        "--allow-insecure-http",
        action="store_true",
        help="send the access token over plain http to a host that is not 127.0.0.1/localhost",
    )
    auth = p.add_argument_group("SMART Backend Services")
    auth.add_argument("--client-id", type=cliargs.token, help="the backend client's id at the authorization server")
    auth.add_argument(
        "--private-key", type=cliargs.existing_file, metavar="FILE", help="its private key: PEM or JWK set"
    )
    auth.add_argument(
        "--kid", type=cliargs.token, help="the key id registered with the server (default: the JWK's kid)"
    )
    bulk = p.add_argument_group("Bulk Data and engines")
    bulk.add_argument("--bulk", action="store_true", help="fetch with a Bulk Data $export, then evaluate the files")
    bulk.add_argument("--engine", choices=("inprocess", "dask"), default="inprocess", help="for --bulk/--ndjson")
    bulk.add_argument(
        "--scheduler",
        type=cliargs.scheduler_address,
        metavar="ADDRESS",
        help="a Dask scheduler (default: a local cluster)",
    )
