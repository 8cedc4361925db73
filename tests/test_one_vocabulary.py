"""FHIR is read through one vocabulary (azaguard.fhirtypes): no other module splits references on
'/_history/', parses dates by hand, builds a Code from raw JSON or spells a resource's 'Type/id' name. And the
one date range holds for every command that takes a moment."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "plugin" / "azaguard"
OWNER = PACKAGE / "fhirtypes"
FORBIDDEN = {
    "reference parsed by hand": re.compile(r"""split\(\s*["']/_history/|["']/_history/["']\s+in\b"""),
    "date parsed by hand": re.compile(r"\b(fromisoformat|strptime)\("),
    "Code built from raw JSON": re.compile(r"\bCode\([^)]*\.get\("),
    # A resource's name ('Type/id') is fhirtypes.reference.ref_of's: one spelling, one answer for a missing id.
    "resource named by hand": re.compile(
        r"""\{\w+(\.get\(\s*["']resourceType["']\s*\)|\[\s*["']resourceType["']\s*\])\}/"""
    ),
}
# Not FHIR references: the sandbox server routes its own REST paths (Type/id/_history/vid).
NOT_FHIR = {PACKAGE / "sandbox" / "ehr" / "compartment.py"}


def test_only_fhirtypes_parses_references_dates_and_codes() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.is_relative_to(OWNER) or path in NOT_FHIR:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found += [f"{path.relative_to(PACKAGE)}:{number}: {what}" for what, pattern in FORBIDDEN.items()
                      if pattern.search(line)]
    assert found == []


def test_the_patterns_would_catch_a_copy() -> None:
    assert FORBIDDEN["reference parsed by hand"].search('ref.split("/_history/")[0]')
    assert FORBIDDEN["reference parsed by hand"].search('if "/_history/" in reference:')
    assert FORBIDDEN["date parsed by hand"].search("datetime.fromisoformat(v)")
    assert FORBIDDEN["Code built from raw JSON"].search('Code(c.get("system"), c["code"])')
    assert FORBIDDEN["resource named by hand"].search("""key = f"{r.get('resourceType')}/{r.get('id')}\"""")
    assert FORBIDDEN["resource named by hand"].search("""url = f"{resource['resourceType']}/{resource['id']}\"""")


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "azaguard.cli", *argv], capture_output=True, text=True,
                          timeout=120, check=False)


EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "aza-stable.json"


@pytest.mark.parametrize(("now", "code"), [
    ("0001-01-01", 2), ("1899-12-31T23:59:59Z", 2), ("1900-01-01T00:00:00Z", 0), ("2999-12-31", 0), ("3000-01-01", 2),
])
def test_check_and_scan_agree_on_the_range_of_now(tmp_path: Path, now: str, code: int) -> None:
    export = tmp_path / "export"
    export.mkdir()
    by_type: dict[str, list[str]] = {}
    for entry in json.loads(EXAMPLE.read_text())["entry"]:
        by_type.setdefault(entry["resource"]["resourceType"], []).append(json.dumps(entry["resource"]))
    for rtype, lines in by_type.items():
        (export / f"{rtype}.ndjson").write_text("\n".join(lines) + "\n")
    check = _run("check", "--bundle", str(EXAMPLE), "--now", now)
    scan = _run("scan", "--ndjson", str(export), "--now", now, "--out", str(tmp_path / "out"))
    assert check.returncode == code, check.stderr
    assert scan.returncode == code, scan.stderr
    if code:
        assert "outside the supported range" in check.stderr and "outside the supported range" in scan.stderr


def test_audit_since_uses_the_same_range(tmp_path: Path) -> None:
    result = _run("audit", "--since", "0001-01-01", "--database", f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert result.returncode == 2 and "outside the supported range" in result.stderr
