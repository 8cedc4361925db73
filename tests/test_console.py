"""The `azaguard` executable sets the garbage collector for the process's life (fresh interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aza-leukopenic.json"

PROBE = """
import contextlib, gc, io, json, sys
from azaguard import console
sys.argv = ["azaguard", *sys.argv[1:]]
with contextlib.redirect_stdout(io.StringIO()):
    try:
        code = console.main()
    except SystemExit as exc:  # --help
        code = exc.code
print(json.dumps({"code": code, "gc": gc.isenabled(), "frozen": gc.get_freeze_count()}))
"""


def run(*argv: str) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True, timeout=60)
    result: dict[str, object] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_a_one_shot_check_runs_without_the_collector() -> None:
    assert run("check", "--bundle", str(EXAMPLE), "--now", "2026-11-20T09:00:00Z") == {
        "code": 0, "gc": False, "frozen": 0}


def test_a_long_running_command_gets_it_back_with_the_imports_frozen() -> None:
    result = run("serve", "--help")
    assert result["code"] == 0 and result["gc"] is True
    assert isinstance(result["frozen"], int) and result["frozen"] > 10_000
