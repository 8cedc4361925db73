"""Trend charts as server-rendered SVG (no script, works offline and in an EHR iframe).

Each chart plots one analyte's normalised values over time with the threshold
from the mappings as a dashed line labelled in words ("below 3.5 ×10⁹/L means
hold"). Axes have nice ticks (1, 2, 5 × 10ⁿ) and rounded ends. A value past the
threshold is a red square, a value within it a green circle (shape and colour);
preliminary results are hollow. Results that cannot be placed (no date, unit not
convertible) are counted, not hidden. Every chart comes with the same values as
rows for a table view (screen readers, copying).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Literal

from azaguard.display import decimals_of, format_day, format_quantity, unit_text
from azaguard.mappings import Mappings
from azaguard.record import Measurement, PatientRecord, Quantity

# Which trends the clinician's page shows (presentation, not clinical knowledge).
CHART_ANALYTES: tuple[str, ...] = ("wbc", "neutrophils", "lymphocytes", "platelets", "alt", "temperature")
MAX_POINTS = 50

WIDTH, HEIGHT = 340, 150
LEFT, RIGHT, TOP, BOTTOM = 44, 10, 16, 26


@dataclass(frozen=True)
class ChartThreshold:
    direction: Literal["below", "above"]
    value: float
    source: str
    meaning: str = "hold"  # what crossing it means: "hold", "review", "fever"

    def breached(self, value: float) -> bool:
        return value < self.value if self.direction == "below" else value > self.value

    @property
    def words(self) -> str:
        return f"{'below' if self.direction == 'below' else 'above'} {self.value:g}"


@dataclass(frozen=True)
class ChartRow:
    """One plotted value, as the table view shows it."""

    date: str
    value: str
    recorded: str
    past_limit: bool
    preliminary: bool


@dataclass(frozen=True)
class Chart:
    analyte: str
    label: str
    unit: str  # display text ("×10⁹/L")
    threshold: ChartThreshold | None
    points: int
    unplotted: int
    svg: str  # escaped, ready to embed
    limit_words: str | None = None  # "below 3.5 ×10⁹/L means hold"
    rows: tuple[ChartRow, ...] = ()


def threshold_for(analyte: str, mappings: Mappings) -> ChartThreshold | None:
    spec = mappings.analytes.analytes[analyte]
    if spec.threshold is not None:
        t = spec.threshold
        return ChartThreshold(t.direction, t.value, t.source, "hold" if t.status == "hold" else "review")
    if spec.dimension == "temperature":  # fever: the infection-hold policy's threshold
        fever = mappings.policy.infection.fever_threshold_cel
        return ChartThreshold("above", fever.value, fever.source, "fever")
    return None


def trend_charts(record: PatientRecord, mappings: Mappings, tz: tzinfo | None = None) -> list[Chart]:
    return [trend_chart(a, record, mappings, tz) for a in CHART_ANALYTES if a in mappings.analytes.analytes]


def trend_chart(analyte: str, record: PatientRecord, mappings: Mappings, tz: tzinfo | None = None) -> Chart:
    spec = mappings.analytes.analytes[analyte]
    canonical = mappings.units.dimensions[spec.dimension].canonical
    unit = unit_text(canonical, mappings)
    threshold = threshold_for(analyte, mappings)
    measurements = record.measurements_of(analyte)  # newest first
    plottable = [m for m in measurements if m.result.value is not None and m.effective is not None][:MAX_POINTS]
    plottable.reverse()  # oldest first, left to right
    unplotted = len(measurements) - len(plottable)
    limit_words = None
    if threshold is not None:
        shown = decimals_of(f"{threshold.value:g}")
        limit = format_quantity(threshold.value, canonical, mappings, recorded_decimals=shown)
        limit_words = f"{'below' if threshold.direction == 'below' else 'above'} {limit} means {threshold.meaning}"
    rows = tuple(
        ChartRow(
            date=format_day(p.effective, tz),
            value=format_quantity(p.result.value, canonical, mappings) if p.result.value is not None else "",
            recorded=_recorded(p.result.recorded, mappings),
            past_limit=threshold is not None and p.result.value is not None and threshold.breached(p.result.value),
            preliminary=p.preliminary,
        )
        for p in plottable
    )
    svg = _svg(spec.label, unit, plottable, threshold, limit_words, rows)
    return Chart(analyte, spec.label, unit, threshold, len(plottable), unplotted, svg, limit_words, rows)


def nice_ticks(lo: float, hi: float, count: int = 4) -> list[float]:
    """Round axis ticks (steps of 1, 2 or 5 × 10ⁿ) covering [lo, hi], ends included."""
    if hi <= lo:
        lo, hi = (lo - 1, hi + 1) if lo == 0 else (lo - abs(lo) * 0.1, hi + abs(hi) * 0.1)
    raw = (hi - lo) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    start = math.floor(lo / step) * step
    end = math.ceil(hi / step) * step
    n = round((end - start) / step)
    return [round(start + i * step, 10) for i in range(n + 1)]


def _tick_text(v: float, ticks: list[float]) -> str:
    step = ticks[1] - ticks[0] if len(ticks) > 1 else 1.0
    decimals = max(0, -math.floor(math.log10(step))) if step < 1 else 0
    return f"{v:.{decimals}f}"


def _svg(
    label: str,
    unit: str,
    points: list[Measurement],
    threshold: ChartThreshold | None,
    limit_words: str | None,
    rows: tuple[ChartRow, ...],
) -> str:
    title = f"{label} ({unit}) trend: {len(points)} result{'s' if len(points) != 1 else ''}"
    if limit_words:
        title += f"; {limit_words}"
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" data-points="{len(points)}" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    out.append(f'<rect class="plot" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>')
    if not points:
        out.append(
            f'<text class="empty" x="{LEFT + plot_w / 2:.1f}" y="{TOP + plot_h / 2:.1f}" '
            f'text-anchor="middle">No {escape(label)} results in the record</text>'
        )
    values = [p.result.value for p in points if p.result.value is not None]
    ticks = nice_ticks(*_span(values + ([threshold.value] if threshold is not None else [])))
    lo, hi = ticks[0], ticks[-1]

    def y_of(v: float) -> float:
        return TOP + plot_h * (1 - (v - lo) / (hi - lo))

    for tick in ticks:
        y = y_of(tick)
        out.append(f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{LEFT + plot_w}" y2="{y:.1f}"/>')
        out.append(
            f'<text class="axis" x="{LEFT - 4}" y="{y + 3:.1f}" text-anchor="end">{_tick_text(tick, ticks)}</text>'
        )
    out.append(f'<text class="axis unit" x="2" y="{TOP - 5}">{escape(unit)}</text>')

    times = [p.effective.timestamp() for p in points if p.effective is not None]
    t0, t1 = (min(times), max(times)) if times else (0.0, 0.0)

    def x_of(t: float) -> float:
        return LEFT + plot_w / 2 if t1 == t0 else LEFT + plot_w * (t - t0) / (t1 - t0)

    if threshold is not None:
        ty = y_of(threshold.value)
        out.append(
            f'<line class="threshold" x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" '
            f'data-value="{threshold.value:g}"/>'
        )
        out.append(
            f'<text class="threshold-label" x="{LEFT + plot_w - 2}" y="{ty - 3:.1f}" '
            f'text-anchor="end">{escape(limit_words or "")}</text>'
        )
    if len(points) > 1:
        path = " ".join(
            f"{x_of(p.effective.timestamp()):.1f},{y_of(p.result.value):.1f}"
            for p in points
            if p.effective is not None and p.result.value is not None
        )
        out.append(f'<polyline class="trend" points="{path}"/>')
    for p, row in zip(points, rows, strict=True):
        if p.effective is None or p.result.value is None:
            continue
        out.append(_point(p, x_of(p.effective.timestamp()), y_of(p.result.value), row))
    if points:
        out.append(f'<text class="axis" x="{LEFT}" y="{HEIGHT - 8}">{escape(rows[0].date)}</text>')
        if len(points) > 1:
            out.append(
                f'<text class="axis" x="{LEFT + plot_w}" y="{HEIGHT - 8}" '
                f'text-anchor="end">{escape(rows[-1].date)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _point(p: Measurement, x: float, y: float, row: ChartRow) -> str:
    classes = ["point", "breach" if row.past_limit else "normal"]
    if p.preliminary:
        classes.append("preliminary")
    tip = f"{row.date}: {row.value}"
    if row.recorded and row.recorded != row.value:
        tip += f" (recorded {row.recorded})"
    if row.past_limit:
        tip += " — past the limit"
    if p.preliminary:
        tip += " — preliminary"
    title = f"<title>{escape(tip)}</title>"
    cls = " ".join(classes)
    if row.past_limit:
        return f'<rect class="{cls}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{title}</rect>'
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">{title}</circle>'


def _span(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    return min(values), max(values)


def _day(when: datetime | None) -> str:
    return format_day(when)


def _recorded(q: Quantity | None, m: Mappings) -> str:
    """The value as recorded, in display units ("101.8 °F"); a unit with no display text as recorded."""
    if q is None or q.value is None:
        return ""
    return format_quantity(q.value, q.code or q.unit, m, recorded_decimals=decimals_of(f"{q.value:g}"),
                           comparator=q.comparator or "")
