"""Trend charts as server-rendered SVG (no script, works offline and in an EHR iframe).

Each chart plots one analyte's normalised values over time with the threshold
from the mappings as a dashed line. A value past the threshold is drawn as a
square, not only in another colour; preliminary results are hollow. Results
that cannot be placed (no date, unit not convertible) are counted, not hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Literal

from azaguard.mappings import Mappings
from azaguard.record import Measurement, PatientRecord

# Which trends the clinician's page shows (presentation, not clinical knowledge).
CHART_ANALYTES: tuple[str, ...] = ("wbc", "neutrophils", "lymphocytes", "platelets", "alt", "temperature")
MAX_POINTS = 50

WIDTH, HEIGHT = 340, 150
LEFT, RIGHT, TOP, BOTTOM = 48, 10, 14, 26


@dataclass(frozen=True)
class ChartThreshold:
    direction: Literal["below", "above"]
    value: float
    source: str

    def breached(self, value: float) -> bool:
        return value < self.value if self.direction == "below" else value > self.value

    @property
    def words(self) -> str:
        return f"{'below' if self.direction == 'below' else 'above'} {self.value:g}"


@dataclass(frozen=True)
class Chart:
    analyte: str
    label: str
    unit: str
    threshold: ChartThreshold | None
    points: int
    unplotted: int
    svg: str  # escaped, ready to embed


def threshold_for(analyte: str, mappings: Mappings) -> ChartThreshold | None:
    spec = mappings.analytes.analytes[analyte]
    if spec.threshold is not None:
        t = spec.threshold
        return ChartThreshold(t.direction, t.value, t.source)
    if spec.dimension == "temperature":  # fever: the infection-hold policy's threshold
        fever = mappings.policy.infection.fever_threshold_cel
        return ChartThreshold("above", fever.value, fever.source)
    return None


def trend_charts(record: PatientRecord, mappings: Mappings) -> list[Chart]:
    return [trend_chart(a, record, mappings) for a in CHART_ANALYTES if a in mappings.analytes.analytes]


def trend_chart(analyte: str, record: PatientRecord, mappings: Mappings) -> Chart:
    spec = mappings.analytes.analytes[analyte]
    unit = mappings.units.dimensions[spec.dimension].canonical
    threshold = threshold_for(analyte, mappings)
    measurements = record.measurements_of(analyte)  # newest first
    plottable = [m for m in measurements if m.value is not None and m.effective is not None][:MAX_POINTS]
    plottable.reverse()  # oldest first, left to right
    unplotted = len(measurements) - len(plottable)
    svg = _svg(spec.label, unit, plottable, threshold)
    return Chart(analyte, spec.label, unit, threshold, len(plottable), unplotted, svg)


def _svg(label: str, unit: str, points: list[Measurement], threshold: ChartThreshold | None) -> str:
    title = f"{label} ({unit}) trend: {len(points)} result{'s' if len(points) != 1 else ''}"
    if threshold is not None:
        title += f"; threshold {threshold.words} {unit}"
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
            f'text-anchor="middle">No results to plot</text>'
        )
    values = [p.value for p in points if p.value is not None]
    lo, hi = _range(values + ([threshold.value] if threshold is not None else []))

    def y_of(v: float) -> float:
        return TOP + plot_h * (1 - (v - lo) / (hi - lo))

    times = [p.effective.timestamp() for p in points if p.effective is not None]
    t0, t1 = (min(times), max(times)) if times else (0.0, 0.0)

    def x_of(t: float) -> float:
        return LEFT + plot_w / 2 if t1 == t0 else LEFT + plot_w * (t - t0) / (t1 - t0)

    out.append(f'<text class="axis" x="{LEFT - 4}" y="{TOP + 4}" text-anchor="end">{hi:.4g}</text>')
    out.append(f'<text class="axis" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">{lo:.4g}</text>')
    out.append(
        f'<text class="axis unit" x="{LEFT - 4}" y="{TOP + plot_h / 2 + 4:.1f}" '
        f'text-anchor="end">{escape(unit)}</text>'
    )
    if threshold is not None:
        ty = y_of(threshold.value)
        out.append(
            f'<line class="threshold" x1="{LEFT}" y1="{ty:.1f}" x2="{LEFT + plot_w}" y2="{ty:.1f}" '
            f'data-value="{threshold.value:g}"><title>{escape(threshold.source)}</title></line>'
        )
        out.append(
            f'<text class="threshold-label" x="{LEFT + plot_w - 2}" y="{ty - 3:.1f}" '
            f'text-anchor="end">limit {threshold.value:g}</text>'
        )
    if len(points) > 1:
        path = " ".join(
            f"{x_of(p.effective.timestamp()):.1f},{y_of(p.value):.1f}"
            for p in points
            if p.effective is not None and p.value is not None
        )
        out.append(f'<polyline class="trend" points="{path}"/>')
    for p in points:
        if p.effective is None or p.value is None:
            continue
        out.append(_point(p, p.value, x_of(p.effective.timestamp()), y_of(p.value), unit, threshold))
    if times:
        out.append(f'<text class="axis" x="{LEFT}" y="{HEIGHT - 8}">{_day(points[0].effective)}</text>')
        if len(points) > 1:
            out.append(
                f'<text class="axis" x="{LEFT + plot_w}" y="{HEIGHT - 8}" '
                f'text-anchor="end">{_day(points[-1].effective)}</text>'
            )
    out.append("</svg>")
    return "".join(out)


def _point(
    p: Measurement, value: float, x: float, y: float, unit: str, threshold: ChartThreshold | None
) -> str:
    breach = threshold is not None and threshold.breached(value)
    classes = ["point", "breach" if breach else "normal"]
    if p.preliminary:
        classes.append("preliminary")
    recorded = p.quantity.as_recorded() if p.quantity is not None else "?"
    tip = (
        f"{_day(p.effective)}: {value:g} {unit} (recorded {recorded}){' — past the limit' if breach else ''}"
    )
    if p.preliminary:
        tip += " — preliminary"
    tip += f" [{p.ref}]"
    title = f"<title>{escape(tip)}</title>"
    cls = " ".join(classes)
    if breach:
        return f'<rect class="{cls}" x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8">{title}</rect>'
    return f'<circle class="{cls}" cx="{x:.1f}" cy="{y:.1f}" r="3.5">{title}</circle>'


def _range(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.1 if hi > lo else max(abs(hi) * 0.1, 1.0)
    return lo - pad, hi + pad


def _day(when: datetime | None) -> str:
    return when.date().isoformat() if when is not None else "?"
