"""Render a CheckResult for people (text) and programs (JSON)."""

from __future__ import annotations

import json
import re
import textwrap
from typing import TYPE_CHECKING, Any

from azaguard.findings import RULE_IDS, Finding, Status

if TYPE_CHECKING:
    from azaguard.service import CheckResult

_MARK = {
    Status.HOLD: "HOLD",
    Status.CAUTION: "CAUTION",
    Status.CANNOT_EVALUATE: "CANNOT EVALUATE",
    Status.OK: "ok",
    Status.NOT_APPLICABLE: "n/a",
}


# C0/C1 controls (ESC starts terminal escapes), DEL, and bidi overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """Text from a record or a server made safe for a terminal: control characters become spaces."""
    return _CONTROL.sub(" ", str(text))


def finding_json(f: Finding) -> dict[str, Any]:
    return {
        "rule": f.rule,
        "code": f.code,
        "status": f.status.value,
        "severity": f.severity.value,
        "summary": f.summary,
        "detail": f.detail,
        "evidence": [e.model_dump(exclude_none=True) for e in f.evidence],
        "missing": list(f.missing),
        "implicated": list(f.implicated),
        "mappings_version": f.mappings_version,
    }


def to_json(result: CheckResult, *, include_writes: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "patient": result.patient_ref,
        "mappings_version": result.mappings_version,
        "evaluated_at": result.evaluated_at.isoformat(),
        "findings": [finding_json(f) for f in result.findings],
    }
    if result.warnings:
        out["warnings"] = list(result.warnings)
    if include_writes:
        out["written"] = [_write_json(w) for w in result.writes]
        if result.device is not None:
            out["author_device"] = _write_json(result.device)
    if result.existing_alerts_problem:
        out["existing_alerts_problem"] = result.existing_alerts_problem
    if result.notes:
        out["notes"] = list(result.notes)
    return out


def _write_json(w: Any) -> dict[str, Any]:
    fields = {
        "resource_type": w.resource_type, "identifier": w.identifier, "rule": w.rule, "outcome": w.outcome,
        "reference": w.reference, "error": w.error, "note": w.note,
        "retryable": w.retryable if w.outcome == "failed" else None,
    }
    return {k: v for k, v in fields.items() if v is not None}


def to_json_text(result: CheckResult, *, include_writes: bool = False) -> str:
    return json.dumps(to_json(result, include_writes=include_writes), indent=2)


def headline(result: CheckResult, rule: str) -> Finding:
    """The rule's most urgent finding (findings are sorted most urgent first within a rule)."""
    return next(f for f in result.findings if f.rule == rule)


def to_text(result: CheckResult, *, include_writes: bool = False, width: int = 100) -> str:
    name = result.patient.name if result.patient and result.patient.name else ""
    lines = [
        f"azaguard — {result.patient_ref} {name}".rstrip(),
        f"evaluated at {result.evaluated_at.isoformat()} · mappings {result.mappings_version}",
        "",
    ]
    for warning in result.warnings:
        lines += textwrap.wrap(warning, width - 2, initial_indent="! ", subsequent_indent="  ")
    if result.warnings:
        lines.append("")
    for rule in RULE_IDS:
        findings = [f for f in result.findings if f.rule == rule]
        lines.append(f"== {rule} " + "=" * max(0, width - len(rule) - 4))
        for f in findings:
            lines.append(f"  [{_MARK[f.status]}] ({f.severity.value}) {f.summary}")
            if f.status not in (Status.OK, Status.NOT_APPLICABLE):
                lines += textwrap.wrap(f.detail, width - 6, initial_indent="      ", subsequent_indent="      ")
            for e in f.evidence:
                value = f": {e.value}" if e.value else ""
                norm = f" (= {e.normalised})" if e.normalised and e.normalised != e.value else ""
                when = f" on {e.date[:10]}" if e.date else ""
                lines.append(f"      - {e.reference} {e.description}{value}{norm}{when}")
            for m in f.missing:
                lines.append(f"      ? missing: {m}")
        lines.append("")
    if include_writes:
        lines.append("== written to the chart " + "=" * (width - 24))
        if not result.writes:
            lines.append("  nothing to write")
        for w in result.writes:
            target = w.reference or w.identifier[:12]
            err = f" — {w.error}" if w.error else ""
            note = f" ({w.note})" if w.note else ""
            lines.append(f"  {w.outcome:<11} {w.resource_type:<13} {w.rule or '':<20} {target}{note}{err}")
        if result.device is not None and result.device.outcome != "exists":
            d = result.device
            lines.append(f"  {d.outcome:<11} {'Device':<13} {'(author)':<20} {d.reference or ''}"
                         + (f" — {d.error}" if d.error else ""))
        lines.append("")
    for note in [*result.notes, *([result.existing_alerts_problem] if result.existing_alerts_problem else [])]:
        lines += textwrap.wrap("note: " + note, width, subsequent_indent="      ")
    return "\n".join(clean(line) for line in lines)
