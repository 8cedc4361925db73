"""The mappings coverage report: per value set, how many codes per system, its source and date.

Generic over the shared convention of mappings/: any JSON object with a `source` is a value set, and
its codes are the entries under keys named after a system of systems.json (directly, or under `codes`;
a dict or list counts its entries, a string counts one). A nested object with its own `source` is a
value set of its own. So a clinical reviewer can audit what each set covers, and where it comes from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_RECIPE_KEYS = frozenset({"roots"})


@dataclass(frozen=True)
class ValueSetCoverage:
    file: str
    path: str  # where in the file ('value_sets.acute'); '' for the file itself
    label: str | None
    source: str
    as_of: str | None
    counts: dict[str, int]  # system name -> number of codes
    # A class of drugs (mappings' `members`): each member's name, its codes per system, and its names/brands.
    members: tuple[tuple[str, dict[str, int], int], ...] = ()
    # Codes with their own source (`code_sources`): (verified, UNVERIFIED); None where the set has none.
    checked: tuple[int, int] | None = None


def coverage(directory: Path) -> tuple[str, list[ValueSetCoverage]]:
    """(mappings version, every value set in the folder's manifest files, in file order)."""
    manifest = _read(directory / "manifest.json")
    systems = set(_read(directory / "systems.json"))
    out: list[ValueSetCoverage] = []
    for name in manifest["files"]:
        _walk(name, "", _read(directory / name), systems, out)
    return str(manifest["version"]), out


def _walk(file: str, path: str, node: Any, systems: set[str], out: list[ValueSetCoverage]) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("source"), str):
            counts: dict[str, int] = {}
            _count(node, systems, counts, top=True)
            as_of = node.get("as_of")
            label = node.get("label")
            if counts or not path:  # a value set with codes, or a file's own source (thresholds, policy)
                sources: list[str] = []
                _code_sources(node, sources, top=True)
                checked = (sum(not u for u in (v.startswith("UNVERIFIED") for v in sources)),
                           sum(v.startswith("UNVERIFIED") for v in sources)) if sources else None
                out.append(ValueSetCoverage(file, path, label if isinstance(label, str) else None, node["source"],
                                            as_of if isinstance(as_of, str) else None, counts, _members(node, systems),
                                            checked))
        for key, value in node.items():
            _walk(file, f"{path}.{key}" if path else str(key), value, systems, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _walk(file, f"{path}[{i}]", value, systems, out)


def _count(node: Any, systems: set[str], counts: dict[str, int], *, top: bool = False) -> None:
    if isinstance(node, dict):
        if not top and isinstance(node.get("source"), str):
            return  # a value set of its own
        for key, value in node.items():
            if key in _RECIPE_KEYS:
                continue  # the roots a generator expands: a recipe, not codes
            if key in systems:
                n = len(value) if isinstance(value, dict | list) else 1 if isinstance(value, str) else 0
                counts[key] = counts.get(key, 0) + n
            else:
                _count(value, systems, counts)
    elif isinstance(node, list):
        for value in node:
            _count(value, systems, counts)


def _code_sources(node: Any, out: list[str], *, top: bool = False) -> None:
    """Every `code_sources` value under a value set (not inside a nested value set of its own)."""
    if isinstance(node, dict):
        if not top and isinstance(node.get("source"), str):
            return
        for key, value in node.items():
            if key == "code_sources" and isinstance(value, dict):
                out.extend(v for v in value.values() if isinstance(v, str))
            else:
                _code_sources(value, out)
    elif isinstance(node, list):
        for value in node:
            _code_sources(value, out)


def _checked_text(checked: tuple[int, int] | None) -> str:
    return "" if checked is None else f"; sources: {checked[0]} verified, {checked[1]} UNVERIFIED"


def _members(node: dict[str, Any], systems: set[str]) -> tuple[tuple[str, dict[str, int], int], ...]:
    out = []
    for member in node.get("members") or []:
        if isinstance(member, dict) and isinstance(member.get("name"), str):
            counts: dict[str, int] = {}
            _count(member, systems, counts, top=True)
            names = len(member.get("names") or []) + len(member.get("brands") or [])
            out.append((member["name"], counts, names))
    return tuple(out)


def _member_text(members: tuple[tuple[str, dict[str, int], int], ...]) -> str:
    return "; ".join(f"{name} ({_counts_text(counts)}; {names} names/brands)" for name, counts, names in members)


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _counts_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{system} {n}" for system, n in sorted(counts.items())) or "no codes by system"


def to_text(version: str, sets: list[ValueSetCoverage]) -> str:
    lines = [f"mappings {version}: {len(sets)} value sets", ""]
    for vs in sets:
        where = f"{vs.file} {vs.path}".rstrip()
        lines.append(f"{where}{' — ' + vs.label if vs.label else ''}")
        lines.append(f"  codes:  {_counts_text(vs.counts)}{_checked_text(vs.checked)}")
        if vs.members:
            lines.append(f"  members: {_member_text(vs.members)}")
        lines.append(f"  as of:  {vs.as_of or '(no date: see the mappings version)'}")
        lines.append(f"  source: {vs.source}")
        lines.append("")
    return "\n".join(lines)


def to_markdown(version: str, sets: list[ValueSetCoverage]) -> str:
    lines = [
        "# Mappings coverage",
        "",
        f"Generated from `mappings/` (version {version}) by `azaguard mappings --report --format markdown`;",
        "a test fails when this file is not current. Per value set: how many codes per system",
        "(system names of `mappings/systems.json`), its date and its source, for clinical review.",
        "",
        "| value set | codes per system | as of | source |",
        "|---|---|---|---|",
    ]
    for vs in sets:
        name = f"`{vs.file}` {vs.path}".rstrip() + (f" ({vs.label})" if vs.label else "")
        codes = _counts_text(vs.counts) + _checked_text(vs.checked) + (
            f"; members: {_member_text(vs.members)}" if vs.members else "")
        cells = [name, codes, vs.as_of or "—", vs.source]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"
