"""DIR/report.html (self-contained: inline CSS and SVG, no script, no CDN) and DIR/actions.csv.

Built from results.ndjson (the last line per patient), so a resumed scan reports every patient.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup, escape

from azaguard.findings import RULE_IDS, Status
from azaguard.privatefiles import write_private
from azaguard.registry import label
from azaguard.report import spreadsheet_cell
from azaguard.scan.results import RESULTS_FILE, Line, latest, read_lines
from azaguard.scan.wording import NO_ACTION_RANK

REPORT_FILE = "report.html"
ACTIONS_FILE = "actions.csv"
STATUS_ORDER = ("hold", "caution", "cannot-evaluate", "ok", "not-applicable")
STATUS_COLOURS = {
    "hold": "#b3261e",
    "caution": "#b26a00",
    "cannot-evaluate": "#6b4fa8",
    "ok": "#2e7d32",
    "not-applicable": "#9e9e9e",
}
_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("azaguard.scan", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


@dataclass
class Summary:
    """What the report and the summary line say about a scan."""

    lines: dict[str, Line]
    outcomes: Counter[str] = field(default_factory=Counter)
    by_rule: dict[str, Counter[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, lines: dict[str, Line]) -> Summary:
        summary = cls(lines)
        summary.by_rule = {rule: Counter() for rule in RULE_IDS}
        for line in lines.values():
            summary.outcomes[line["outcome"]] += 1
            for rule, status in (line.get("statuses") or {}).items():
                summary.by_rule.setdefault(rule, Counter())[status] += 1
        return summary

    @property
    def needing_action(self) -> list[Line]:
        rows = [line for line in self.lines.values() if line.get("urgency", NO_ACTION_RANK) < NO_ACTION_RANK]
        return sorted(rows, key=lambda line: (line["urgency"], line["patient"]))

    @property
    def not_evaluated(self) -> list[Line]:
        return [line for line in self.lines.values() if line["outcome"] == "failed"]

    @property
    def write_failed(self) -> list[Line]:
        return [line for line in self.lines.values() if line["outcome"] == "write-failed"]


def load_summary(out_dir: Path) -> Summary:
    return Summary.of(latest(read_lines(out_dir / RESULTS_FILE)))


def patient_link(template: str | None, patient_id: str) -> str | None:
    return template.replace("{id}", quote(patient_id, safe="")) if template else None


def chart_svg(by_rule: Mapping[str, Counter[str]]) -> Markup:
    """Horizontal stacked bars: for each rule, patients by headline status."""
    label_w, bar_w, row_h, top = 170, 520, 26, 34
    rules = [r for r in RULE_IDS if r in by_rule]
    height = top + row_h * len(rules) + 10
    most = max((sum(c.values()) for c in by_rule.values()), default=0) or 1
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{label_w + bar_w + 60}" height="{height}" '
        f'viewBox="0 0 {label_w + bar_w + 60} {height}" aria-labelledby="chart-title">',
        '<title id="chart-title">Patients by rule and status</title>',
    ]
    x = label_w
    for status in STATUS_ORDER:  # legend
        parts.append(f'<rect x="{x}" y="6" width="12" height="12" fill="{STATUS_COLOURS[status]}"/>')
        parts.append(f'<text x="{x + 16}" y="16" font-size="12">{escape(status)}</text>')
        x += 24 + 7 * len(status)
    for i, rule in enumerate(rules):
        y = top + i * row_h
        counts = by_rule[rule]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" font-size="13" text-anchor="end">{escape(label(rule))}</text>'
        )
        x0 = float(label_w)
        for status in STATUS_ORDER:
            n = counts.get(status, 0)
            if not n:
                continue
            w = bar_w * n / most
            parts.append(
                f'<rect class="bar" data-rule="{escape(rule)}" data-status="{status}" data-count="{n}" '
                f'x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{STATUS_COLOURS[status]}">'
                f"<title>{escape(rule)}: {n} {status}</title></rect>"
            )
            if w >= 18:
                parts.append(
                    f'<text x="{x0 + w / 2:.1f}" y="{y + 15}" font-size="11" fill="#fff" '
                    f'text-anchor="middle">{n}</text>'
                )
            x0 += w
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def render_html(summary: Summary, run: Mapping[str, Any], link_template: str | None) -> str:
    def link(pid: str) -> str | None:
        return patient_link(link_template, pid)

    return _TEMPLATES.get_template("report.html").render(
        summary=summary,
        run=run,
        chart=chart_svg(summary.by_rule),
        link=link,
        colours=STATUS_COLOURS,
        headline=_headline_status,
        label=label,
    )


def _headline_status(line: Line) -> str:
    statuses = [a["status"] for a in line.get("actions") or []]
    return statuses[0] if statuses else Status.OK.value


def write_actions_csv(path: Path, summary: Summary, link_template: str | None) -> None:
    fh = io.StringIO(newline="")
    out = csv.writer(fh)
    out.writerow(["patient_id", "name", "most_urgent", "rules", "verdict", "outcome", "link"])
    for line in summary.needing_action:
        rules = ",".join(dict.fromkeys(a["rule"] for a in line.get("actions") or []))
        url = patient_link(link_template, line["patient"]) or ""
        values = (line["patient"], line.get("name"), _headline_status(line), rules, line.get("verdict"),
                  line["outcome"], url)  # fmt: skip
        out.writerow([spreadsheet_cell(v) for v in values])
    write_private(path, fh.getvalue())


def write_report(out_dir: Path, run: Mapping[str, Any], link_template: str | None) -> Summary:
    summary = load_summary(out_dir)
    write_private(out_dir / REPORT_FILE, render_html(summary, run, link_template))
    write_actions_csv(out_dir / ACTIONS_FILE, summary, link_template)
    return summary
