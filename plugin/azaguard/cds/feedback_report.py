"""`azaguard feedback`: which cards were accepted or overridden, why, how often — as a table or CSV."""

from __future__ import annotations

import csv
import io
from collections import Counter

from azaguard.cds.store import FeedbackRow
from azaguard.report import clean, spreadsheet_cell

COLUMNS = ("outcome_at", "service", "rule", "code", "outcome", "reason", "comment", "card", "summary")


def _values(r: FeedbackRow) -> tuple[str, ...]:
    reason = r.reason_display or r.reason_code or ""
    return (r.outcome_at.isoformat(), r.service, r.rule or "(unknown card)", r.code or "", r.outcome, reason,
            r.user_comment or "", r.card, r.summary or "")


def to_csv(rows: list[FeedbackRow]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:  # text others typed: never a formula, no control characters
        writer.writerow([spreadsheet_cell(v) for v in _values(r)])
    return out.getvalue()


def to_table(rows: list[FeedbackRow]) -> str:
    if not rows:
        return "No feedback in this period."
    counts = Counter((clean(r.rule or "(unknown card)"), clean(r.code or ""), r.outcome,
                      clean(r.reason_display or r.reason_code or "")) for r in rows)
    header = ("rule", "code", "outcome", "reason", "count")
    lines = [(*key, str(n)) for key, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    text = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    text += [fmt.format(*line) for line in lines]
    overridden = sum(1 for r in rows if r.outcome == "overridden")
    text.append(f"\n{len(rows)} feedback entries: {len(rows) - overridden} accepted, {overridden} overridden.")
    comments = [r for r in rows if r.user_comment]
    if comments:
        text.append("Comments:")
        text += [f"  {r.outcome_at:%Y-%m-%d %H:%M} {clean(r.rule or '?')}: {clean(r.user_comment)}" for r in comments]
    return "\n".join(text)
