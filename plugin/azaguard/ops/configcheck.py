"""`azaguard config check --config FILE`: is this configuration right, and can the service reach
what it names? Every problem is one sentence; exit 0 when there is none, 2 otherwise.

First the file itself: unknown or misspelt keys are refused by name (with the nearest known key),
then every value is validated (the same pydantic model `serve` uses, with the same environment
overrides). Then, unless --offline, what it names is tried: each allowed_iss's SMART discovery, each
CDS client's jwks_url, the database and the session store.
"""

from __future__ import annotations

import difflib
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ValidationError

from azaguard.config import AppConfig, CdsClient, ConfigError, Scopes, with_environment
from azaguard.settings import Settings, current

EXIT_OK, EXIT_PROBLEMS = 0, 2


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel]:
    """The model whose keys live at `loc` (the key's parent path)."""
    if loc and loc[0] == "cds_clients":
        return CdsClient
    if loc and loc[0] == "scopes":
        return Scopes
    return AppConfig


def _where(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "the top level"


def validation_problems(
    data: dict[str, Any], settings: Settings | None = None
) -> tuple[AppConfig | None, list[str]]:
    settings = current(settings)
    try:
        config = AppConfig.model_validate(with_environment(data, settings))
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            if err["type"] == "extra_forbidden":
                key, parent = str(loc[-1]), loc[:-1]
                known = list(_model_at(parent).model_fields)
                near = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                place = f" in {_where(parent)}" if parent else ""
                problems.append(f"Unknown key '{key}'{place}{hint}.")
            else:
                message = str(err["msg"]).removeprefix("Value error, ")
                problems.append(f"{_where(loc)}: {message}.")
        return None, problems
    config._settings = settings  # its secrets from the same environment
    problems = []
    try:
        config.client_secret()
    except ConfigError as exc:
        problems.append(f"{exc}.")
    try:
        from azaguard.ops.sessions import cipher

        cipher(config.session_keys())
    except (ConfigError, ValueError) as exc:
        problems.append(f"session_key_env: {exc}.")
    return config, problems


def reachability_problems(config: AppConfig, http: Any = None) -> list[str]:
    import httpx

    from azaguard.httpbound import Bound, within
    from azaguard.httpclient import client as outbound_client
    from azaguard.ops.database import reachable
    from azaguard.ops.store import open_store
    from azaguard.smart.discovery import DiscoveryError, discover

    problems: list[str] = []
    client = http or outbound_client(bound=Bound(1 << 20, 10.0), timeout=10.0)
    try:
        for iss in config.allowed_iss:
            try:
                discover(iss, client)
            except DiscoveryError as exc:
                problems.append(f"allowed_iss {iss}: SMART discovery failed: {exc}.")
        for cds in config.cds_clients:
            if cds.jwks_url is None:
                continue
            try:
                response = client.get(cds.jwks_url, headers={"Accept": "application/json"},
                                      extensions=within(1 << 20, 10.0))
                keys = response.json().get("keys") if response.status_code == 200 else None
                if not isinstance(keys, list):
                    problems.append(f"CDS client {cds.iss}: jwks_url {cds.jwks_url} answered HTTP "
                                    f"{response.status_code} without a JWK Set.")
            except (httpx.HTTPError, ValueError, AttributeError) as exc:
                problems.append(f"CDS client {cds.iss}: jwks_url {cds.jwks_url} cannot be read ({type(exc).__name__}).")
    finally:
        if http is None:
            client.close()
    database = reachable(config.cds_database_url)
    if database:
        problems.append(f"cds_database_url: {database}.")
    if config.session_store != "memory":
        store_problem = open_store(config.session_store, config.cds_database_url).ping()
        if store_problem:
            problems.append(f"session_store: {store_problem}.")
    return problems


def run_check(path: Path, *, offline: bool = False, out: TextIO | None = None,
              reach: Callable[[AppConfig], list[str]] = reachability_problems, settings: Settings | None = None) -> int:
    out = out or sys.stdout
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"{path}: cannot be read ({exc.strerror}).", file=out)
        return EXIT_PROBLEMS
    except ValueError as exc:
        print(f"{path}: is not valid JSON ({exc}).", file=out)
        return EXIT_PROBLEMS
    if not isinstance(data, dict):
        print(f"{path}: must hold a JSON object.", file=out)
        return EXIT_PROBLEMS
    config, problems = validation_problems(data, settings)
    if config is not None and not problems and not offline:
        problems = reach(config)
    for problem in problems:
        print(problem, file=out)
    if problems:
        return EXIT_PROBLEMS
    checked = "valid" if offline else "valid, and everything it names answered"
    print(f"{path}: {checked}.", file=out)
    return EXIT_OK
