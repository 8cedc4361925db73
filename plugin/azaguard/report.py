"""Render a CheckResult for people (text) and programs (JSON).

Both start from the verdict (verdict.py): what to do, most urgent first, in the words the page
and the chart use. The JSON keeps every finding as the rules said it, for programs.
"""

from __future__ import annotations

import json
import re
import textwrap
from typing import TYPE_CHECKING, Any

import msgspec

from azaguard.findings import Finding, Status

if TYPE_CHECKING:
    from azaguard.service import CheckResult
    from azaguard.verdict import Action, Said, Verdict

_MARK = {
    Status.HOLD: "HOLD",
    Status.CAUTION: "CAUTION",
    Status.CANNOT_EVALUATE: "CANNOT CHECK",
    Status.OK: "ok",
    Status.NOT_APPLICABLE: "n/a",
}
_OUTCOME_WORDS = {
    "created": "created",
    "exists": "already there",
    "updated": "updated",
    "closed": "closed",
    "failed": "FAILED",
    "would-write": "would write",
}


# C0/C1 controls (ESC starts terminal escapes), DEL, and bidi overrides that reorder what is shown.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def clean(text: object) -> str:
    """Text from a record or a server made safe for a terminal: control characters become spaces."""
    return _CONTROL.sub(" ", str(text))


def spreadsheet_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: control characters become spaces, and a cell that would
    start a formula (=, +, -, @, also after spaces) is prefixed with an apostrophe."""
    text = "" if value is None else clean(value)
    return "'" + text if text.lstrip()[:1] in ("=", "+", "-", "@") else text


def finding_json(f: Finding, said: Said | None = None) -> dict[str, Any]:
    """A finding for programs: its facts, and (from the verdict) the wording layer's words for it."""
    facts = {k: getattr(f, k) for k in ("subject", "reason", "advice") if getattr(f, k)}
    return {
        "rule": f.rule,
        "code": f.code,
        "status": f.status.value,
        "severity": f.severity.value,
        **({"summary": said.summary, "detail": said.detail} if said is not None else {}),
        **facts,
        **({"checked": list(f.checked)} if f.checked else {}),
        **({"source": f.source} if f.source else {}),
        "evidence": [e.as_json() for e in f.evidence],
        **({"trigger": msgspec.to_builtins(f.trigger)} if f.trigger is not None else {}),
        **({"therapy": msgspec.to_builtins(f.therapy)} if f.therapy is not None else {}),
        "missing": list(f.missing),
        "implicated": list(f.implicated),
        "mappings_version": f.mappings_version,
    }


def verdict_json(v: Verdict) -> dict[str, Any]:
    """The verdict for programs: the headline and the actions (rule, status, object, summary, …)."""
    return {
        "status": v.status.value,
        "headline": v.headline,
        "basis": v.basis,
        "unidentified": list(v.unidentified),
        "actions": [
            {
                "rule": a.rule,
                "code": a.code,
                "status": a.status.value,
                "verb": a.verb,
                "object": a.object,
                "reason": a.reason,
                **({"advice": a.advice} if a.advice else {}),
                "summary": a.summary,
                "detail": a.detail,
                "evidence": [
                    {"what": e.what, "value": e.value, "date": e.date, "role": e.role, "reference": e.reference}
                    for e in a.evidence
                ],
                "todo": list(a.todo),
            }
            for a in v.actions
        ],
        "passed": [{"rule": r.rule, "status": r.status.value} for r in v.passed],
    }


def _said(result: CheckResult) -> list[Said | None]:
    """The verdict's words for each finding, when the verdict was made over these findings."""
    said = result.verdict.said if result.verdict is not None else ()
    return list(said) if len(said) == len(result.findings) else [None] * len(result.findings)


def to_json(result: CheckResult, *, include_writes: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "patient": result.patient_ref,
        "mappings_version": result.mappings_version,
        "evaluated_at": result.evaluated_at.isoformat(),
        "findings": [finding_json(f, s) for f, s in zip(result.findings, _said(result), strict=True)],
    }
    if result.verdict is not None:
        out["verdict"] = verdict_json(result.verdict)
    if result.warnings:
        out["warnings"] = list(result.warnings)
    # The warnings' resources by id, for programs: left out of the record, or referred to but not given.
    if result.record.dropped:
        out["dropped"] = [{"reference": d.ref, "reason": d.reason} for d in result.record.dropped]
    if result.unfetched:
        out["unfetched"] = [msgspec.to_builtins(u) for u in result.unfetched]
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
    return json.dumps(to_json(result, include_writes=include_writes), indent=2, ensure_ascii=False)


def headline(result: CheckResult, rule: str) -> Finding:
    """The rule's most urgent finding (findings are sorted most urgent first within a rule)."""
    return next(f for f in result.findings if f.rule == rule)


def to_text(result: CheckResult, *, include_writes: bool = False, width: int = 100) -> str:
    v = result.verdict
    name = result.patient.name if result.patient and result.patient.name else "(name not recorded)"
    lines = [f"azaguard — {name} ({result.patient_ref})"]
    if v is None:  # a result built without the verdict (never by service.py)
        return "\n".join(lines)
    more = f" (+{len(v.actions) - 1} more below)" if len(v.actions) > 1 else ""
    lines += [f"{v.icon} {v.headline}{more}", f"{v.basis} Mappings {result.mappings_version}.", ""]
    wrap = textwrap.TextWrapper(width=width, initial_indent="     ", subsequent_indent="     ")
    if result.warnings:
        lines.append("What the data could not tell:")
        lines += [wrap.fill(f"! {w}") for w in result.warnings]
        lines.append("")
    if v.actions:
        lines.append("What to do, most urgent first:")
        for i, a in enumerate(v.actions, 1):
            lines += _action_lines(i, a, wrap)
        lines.append("")
    passed = [r for r in v.passed if r.status is Status.OK]
    skipped = [r for r in v.passed if r.status is Status.NOT_APPLICABLE]
    if passed:
        lines.append(f"Passed ({len(passed)}): " + ", ".join(r.label for r in passed) + ".")
    if skipped:
        lines.append(f"Does not apply ({len(skipped)}): " + ", ".join(r.label for r in skipped) + ".")
    if include_writes:
        lines += ["", "Written to the chart:"]
        if not result.writes:
            lines.append("  Nothing to write.")
        for w in result.writes:
            target = w.reference or "(not written)"
            err = f" — {w.error}" if w.error else ""
            note = f" ({w.note})" if w.note else ""
            lines.append(f"  {_OUTCOME_WORDS.get(w.outcome, w.outcome):<13} {w.resource_type:<13} "
                         f"{w.rule or '':<20} {target}{note}{err}")
        if result.device is not None and result.device.outcome != "exists":
            d = result.device
            lines.append(f"  {_OUTCOME_WORDS.get(d.outcome, d.outcome):<13} {'Device':<13} {'(author)':<20} "
                         f"{d.reference or ''}" + (f" — {d.error}" if d.error else ""))
    lines.append("")
    for note in [*result.notes, *([result.existing_alerts_problem] if result.existing_alerts_problem else [])]:
        lines += textwrap.wrap("note: " + note, width, subsequent_indent="      ")
    return "\n".join(clean(line) for line in lines)


def _action_lines(i: int, a: Action, wrap: textwrap.TextWrapper) -> list[str]:
    out = [f"  {i}. [{_MARK[a.status]}] {a.summary}", wrap.fill(a.detail)]
    for e in a.evidence:
        parts = ", ".join(p for p in (e.value, e.date) if p)
        out.append(f"     - {e.what}{': ' + parts if parts else ''}")
    for t in a.todo:
        out.append(f"     ☐ to record: {t}")
    return out
