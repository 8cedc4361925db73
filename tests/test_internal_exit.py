"""A crash (a bug, any exception outside the error tree) is never taken for an answer: `check --bundle` exits 1
(0 is "evaluated", 2 "unusable input"), prints nothing on stdout, says "internal error" on stderr and logs the
traceback there for the bug report. Through the command itself, in its own process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from azaguard.errors import INTERNAL_EXIT

STABLE = Path(__file__).resolve().parents[1] / "examples" / "aza-stable.json"
# The command as the console script runs it, with one step of the evaluation broken (as a bug would break it).
CRASHING = """
import sys
import azaguard.evaluate

def broken(*args, **kwargs):
    raise RuntimeError("a bug in the verdict")

azaguard.evaluate.build_verdict = broken
from azaguard.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


def _check(*options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", CRASHING, "check", "--bundle", str(STABLE),
                           "--now", "2026-11-20T09:00:00Z", *options],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_crash_exits_internal_never_an_answer_nor_unusable_input() -> None:
    assert INTERNAL_EXIT not in (0, 2, 3, 4)  # the documented answers of `check`
    run = _check()
    assert run.returncode == 1, run.stderr
    assert run.stdout == ""  # no verdict, no findings: nothing a clinician could read as the patient's
    assert "Traceback (most recent call last)" in run.stderr
    assert "RuntimeError: a bug in the verdict" in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("azaguard: internal error (RuntimeError): nothing was evaluated")


def test_a_crash_is_logged_as_configured() -> None:
    run = _check("--format", "json", "--log-format", "json")
    assert run.returncode == 1 and run.stdout == ""
    assert '"event": "internal error in check"' in run.stderr
    assert "Traceback" in run.stderr and "a bug in the verdict" in run.stderr  # the traceback, in the log line
