"""Every command-line value that can be wrong is refused by the argument parser: one sentence, exit 2,
never a traceback. The walk covers every option of every command: an option added without a malformed
value here fails `test_every_option_is_walked`."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from azaguard.cli import COMMANDS, EXIT_INPUT, build_parser

BAD_URLS = ["not-a-url", "ftp://example.org/fhir", "http://", "http://exa mple.org/", "http://[::1"]
BAD_NOW = ["yesterday", "2026-13-45", "99999-01-01T00:00:00Z", "2026-01-01T25:00:00"]
BAD_IDS = ["a b", "../etc", "x" * 65, "id/with/slash"]
BAD_COUNTS = ["abc", "0", "-3", "1e9", "99999999999999999999"]
BAD_PORTS = ["abc", "-1", "65536", "99999999999999999999"]

# dest → malformed values (besides what argparse itself refuses: choices, flags).
MALFORMED: dict[str, list[str]] = {
    "fhir_url": BAD_URLS,
    "terminology_server": BAD_URLS,
    "now": BAD_NOW,
    "since": BAD_NOW,
    "patient": BAD_IDS,
    "group": BAD_IDS,
    "bundle": ["/nonexistent/bundle.json", "/"],
    "ndjson": ["/nonexistent/export", "/etc/hostname"],
    "patients": ["/nonexistent/ids.txt", "/"],
    "private_key": ["/nonexistent/key.pem", "/"],
    "config": ["/nonexistent/app.json", "/"],
    "mappings": ["/nonexistent/mappings", "/etc/hostname"],
    "out": ["/etc/hostname", "/proc/version/x"],
    "port": BAD_PORTS,
    "fhir_port": BAD_PORTS,
    "concurrency": BAD_COUNTS,
    "monitoring_schedule": ["weekly", ""],
    "host": ["not a host", "256.1.1.1", ""],
    "database": ["not-a-database-url", "postgresql+nodriver://x/y"],
    "patient_link": ["https://app.example.org/p/{nope}", "javascript:alert(1)/{id}", "no-placeholder"],
    "client_id": ["", "x" * 300, "bad\nid"],
    "kid": ["", "x" * 300, "bad\nkid"],
    "scheduler": ["not-an-address", "tcp://"],
}
# What each command needs besides the option under test, so that only that option is wrong.
BASE: dict[str, list[str]] = {
    "check": ["--fhir-url", "http://127.0.0.1:9/fhir", "--patient", "p1"],
    "scan": ["--fhir-url", "http://127.0.0.1:9/fhir"],
    "mappings": ["--report"],
    "demo": ["--no-serve", "--port", "9", "--fhir-port", "9"],
    "serve": ["--port", "9"],
    "feedback": ["--since", "2026-11-01"],
    "audit": ["--since", "2026-11-01"],
    "config": ["check", "--config", "/dev/null", "--offline"],
    "check-bundle": [],
}
# Options that need a partner option to be read at all.
PARTNERS: dict[str, list[str]] = {
    "scheduler": ["--ndjson", "/tmp", "--engine", "dask"],
    "client_id": ["--private-key", "/dev/null"],
    "private_key": ["--client-id", "c1"],
    "kid": ["--client-id", "c1"],
}


def _options(command: str) -> list[argparse.Action]:
    parser = build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [
        a
        for a in sub.choices[command]._actions
        if a.option_strings and a.nargs != 0 and not a.choices and a.dest != "help"
    ]


def _cases() -> list[tuple[str, str, str]]:
    out = []
    for command in COMMANDS:
        for action in _options(command):
            for value in MALFORMED.get(action.dest, []):
                out.append((command, action.option_strings[0], value))
    return out


def test_every_option_is_walked() -> None:
    missing = [f"{c} {a.option_strings[0]}" for c in COMMANDS for a in _options(c) if a.dest not in MALFORMED]
    assert not missing


def _argv(command: str, option: str, value: str) -> list[str]:
    base = list(BASE[command])
    dest = option.lstrip("-").replace("-", "_")
    if command == "check" and option == "--bundle":
        base = []
    if option in base:  # replace the base's own value
        i = base.index(option)
        del base[i : i + 2]
    if command == "check" and option == "--fhir-url":
        base = ["--patient", "p1"]
    if command == "scan" and option == "--ndjson":
        base = []
    partners = PARTNERS.get(dest, []) if command == "scan" else []
    return [command, *base, *partners, f"{option}={value}"]


def _run(argv: list[str], home: Path) -> tuple[list[str], int, str]:
    env = {**os.environ, "HOME": str(home), "AZAGUARD_CDS_DATABASE_URL": "", "XDG_STATE_HOME": str(home / "s")}
    env.pop("AZAGUARD_FHIR_TOKEN", None)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "azaguard.cli", *argv], capture_output=True, text=True, env=env, timeout=60, cwd=home
        )
    except subprocess.TimeoutExpired:
        return argv, -1, "did not stop (the value was accepted and something started)"
    return argv, done.returncode, done.stderr


def test_each_malformed_value_is_refused_by_the_parser(tmp_path: Path) -> None:
    cases = _cases()
    assert len(cases) > 60
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda c: _run(_argv(*c), tmp_path), cases))
    wrong = []
    for argv, code, err in results:
        lines = [line for line in err.strip().splitlines() if line]
        said = lines[-1] if lines else ""
        if "Traceback" in err or code != EXIT_INPUT or not said.startswith("azaguard"):
            wrong.append(f"{' '.join(argv)!r} → exit {code}: {err.strip()[-300:]!r}")
    assert not wrong, "\n".join(wrong)
