"""The Bundle path loads only what it runs: no HTTP client, no web stack, no write models, and no
pydantic once the validated mappings are in the CLI's cache.

Checked in a fresh interpreter (this one has imported everything already)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aza-leukopenic.json"
NEVER_ON_THE_BUNDLE_PATH = [
    "httpx", "starlette", "uvicorn", "jinja2", "authlib", "joserfc",
    "fhir.resources.R4B.detectedissue", "fhir.resources.R4B.flag", "fhir.resources.R4B.device",
    "azaguard.alerts", "azaguard.fhir",
    "rapidfuzz",  # loaded only for a medication name close to azathioprine's (terminology/nearmiss.py)
]  # fmt: skip

PROBE = """
import contextlib, io, json, sys
from azaguard.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_after(*argv: str, env: dict[str, str] | None = None) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, timeout=60, env=env
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def test_check_bundle_never_imports_the_server_web_or_write_stack() -> None:
    code, modules = loaded_after("check", "--bundle", str(EXAMPLE), "--now", "2026-11-20T09:00:00Z")
    assert code == 0
    assert "azaguard.rules" in modules  # it did evaluate
    assert sorted(m for m in NEVER_ON_THE_BUNDLE_PATH if m in modules) == []


def test_check_bundle_with_cached_mappings_never_imports_pydantic(tmp_path: Path) -> None:
    # pydantic validates the mappings (a cache miss); the check itself runs on stdlib dataclasses.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    argv = ("check", "--bundle", str(EXAMPLE), "--now", "2026-11-20T09:00:00Z")
    first_code, first = loaded_after(*argv, env=env)
    code, modules = loaded_after(*argv, env=env)
    assert (first_code, code) == (0, 0)
    assert "pydantic" in first  # validated, then kept
    assert list(tmp_path.glob("azaguard/mappings-*.pickle"))
    assert "azaguard.rules" in modules
    assert sorted(m for m in modules if m.split(".")[0] in ("pydantic", "pydantic_core")) == []


# What the `azaguard` executable may load for `check --bundle`: none of the I/O stacks, nor another command's
# handler (cli.HANDLERS imports only the one a command line asks for), nor the terminology client unasked.
NOT_FOR_A_BUNDLE_FILE = [
    *NEVER_ON_THE_BUNDLE_PATH, "httpcore", "h11", "anyio", "sqlalchemy", "redis", "psycopg", "multipart", "yaml",
    "dask", "distributed", "fhir.resources", "pythonjsonlogger", "prometheus_client",
    "azaguard.service", "azaguard.web", "azaguard.cds", "azaguard.smart", "azaguard.ops", "azaguard.config",
    "azaguard.scan", "azaguard.sandbox", "azaguard.patient", "azaguard.httpbound", "azaguard.httpauth",
    "azaguard.terminology.server", "azaguard.cli.checkserver", "azaguard.cli.serve", "azaguard.cli.scan",
]  # fmt: skip

EXECUTABLE = """
import json, sys
from azaguard.console import main  # the `azaguard` executable's entry point (pyproject.toml)
sys.argv = ["azaguard", *sys.argv[1:]]
code = main()
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def _under(modules: set[str], names: list[str]) -> list[str]:
    return sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in names))


def test_the_azaguard_executable_checks_a_bundle_file_without_any_io_stack(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-c", EXECUTABLE, "check", "--bundle", str(EXAMPLE), "--now",
                          "2026-11-20T09:00:00Z"], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})  # fmt: skip
    result = json.loads(run.stderr.strip().splitlines()[-1])
    assert result["code"] == 0 and "azathioprine" in run.stdout.lower()
    modules = set(result["modules"])
    assert {"azaguard.cli.check", "azaguard.rules.labs"} <= modules  # the check's handler ran the rules
    assert _under(modules, NOT_FOR_A_BUNDLE_FILE) == []


def test_the_check_server_path_is_what_loads_the_http_client() -> None:
    # The list above can fail: the same probe over a server (refused at once: no --patient) loads the client.
    run = subprocess.run([sys.executable, "-c", EXECUTABLE, "check", "--fhir-url", "http://127.0.0.1:9/fhir"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    result = json.loads(run.stderr.strip().splitlines()[-1])
    assert result["code"] == 2 and "--fhir-url needs --patient" in run.stderr
    assert {"httpx", "azaguard.service", "azaguard.cli.checkserver"} <= set(_under(set(result["modules"]),
                                                                                  NOT_FOR_A_BUNDLE_FILE))


def test_report_does_not_pull_in_the_service() -> None:
    probe = "import sys, azaguard.report; print('azaguard.service' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
