from __future__ import annotations

import re

from azaguard.mappings import load_mappings
from azaguard.web.charts import CHART_ANALYTES, threshold_for, trend_chart, trend_charts
from tests.clinical.builders import observation, record_of

WBC = "6690-2"
TEMP = "8310-5"


def _points(svg: str) -> list[str]:
    return re.findall(r'<(?:circle|rect) class="point[^"]*"', svg)


def test_wbc_chart_has_threshold_line_and_one_point_per_dated_value() -> None:
    record = record_of(
        observation(WBC, 5.1, "10*3/uL", days_ago=60),
        observation(WBC, 4.2, "10*3/uL", days_ago=30),
        observation(WBC, 3.1, "10*3/uL", days_ago=2),
        observation(WBC, 4.0, "furlongs", days_ago=1),  # unit not convertible: counted, not plotted
    )
    chart = trend_chart("wbc", record, load_mappings())
    assert chart.points == 3
    assert chart.unplotted == 1
    assert len(_points(chart.svg)) == 3
    assert 'data-points="3"' in chart.svg
    line = re.search(r'<line class="threshold"[^>]*data-value="([\d.]+)"', chart.svg)
    assert line is not None and float(line.group(1)) == load_mappings().analytes.analytes["wbc"].threshold.value  # type: ignore[union-attr]
    # The value below 3.5 is a square marked as a breach, not only a colour.
    assert len(re.findall(r'<rect class="point breach', chart.svg)) == 1
    assert "polyline" in chart.svg


def test_temperature_uses_the_fever_threshold_from_policy() -> None:
    mappings = load_mappings()
    t = threshold_for("temperature", mappings)
    assert t is not None and t.direction == "above"
    assert t.value == mappings.policy.infection.fever_threshold_cel.value
    record = record_of(observation(TEMP, 101.2, "[degF]", days_ago=1))
    chart = trend_chart("temperature", record, mappings)
    assert chart.points == 1 and len(re.findall(r'class="point breach', chart.svg)) == 1


def test_empty_chart_says_so_and_still_shows_the_threshold() -> None:
    chart = trend_chart("platelets", record_of(), load_mappings())
    assert chart.points == 0
    assert "No Platelets results in the record" in chart.svg
    assert 'class="threshold"' in chart.svg


def test_all_page_trends_are_drawn_and_text_is_escaped() -> None:
    record = record_of(observation(WBC, 5.0, "10*3/uL", comparator="<"))
    charts = trend_charts(record, load_mappings())
    assert [c.analyte for c in charts] == list(CHART_ANALYTES)
    wbc = charts[0]
    assert wbc.points == 1
    assert "recorded <5" not in wbc.svg and "recorded &lt;5 ×10³/µL" in wbc.svg
