"""The Bundle path loads only what it runs: no HTTP client, no web stack, no write models.

Checked in a fresh interpreter (this one has imported everything already)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aza-leukopenic.json"
NEVER_ON_THE_BUNDLE_PATH = [
    "httpx", "starlette", "uvicorn", "jinja2", "authlib", "joserfc",
    "fhir.resources.R4B.detectedissue", "fhir.resources.R4B.flag", "fhir.resources.R4B.device",
    "azaguard.alerts", "azaguard.fhir",
]  # fmt: skip

PROBE = """
import contextlib, io, json, sys
from azaguard.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded_after(*argv: str) -> tuple[int, set[str]]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    result = json.loads(out.strip().splitlines()[-1])
    return result["code"], set(result["modules"])


def test_check_bundle_never_imports_the_server_web_or_write_stack() -> None:
    code, modules = loaded_after("check", "--bundle", str(EXAMPLE), "--now", "2026-11-20T09:00:00Z")
    assert code == 0
    assert "azaguard.rules" in modules  # it did evaluate
    assert sorted(m for m in NEVER_ON_THE_BUNDLE_PATH if m in modules) == []


def test_report_does_not_pull_in_the_service() -> None:
    probe = "import sys, azaguard.report; print('azaguard.service' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
