"""The scan report in a real headless Chromium: self-contained, lists the right patients, chart drawn."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.servers import launch_chromium
from tests.scan.conftest import Loaded, ScanRun, scan

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def scanned(loaded: Loaded, tmp_path_factory: pytest.TempPathFactory) -> ScanRun:
    out = tmp_path_factory.mktemp("report")
    ids = out / "ids.txt"
    ids.write_text("\n".join(sorted(loaded.on_azathioprine)) + "\nno-such-patient\n")
    return scan(["--fhir-url", loaded.base_url, "--patients", str(ids),
                 "--patient-link", "http://127.0.0.1:8400/ehr/launch/{id}"], out / "scan")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def test_report_renders_offline_and_lists_the_right_patients(browser: Any, scanned: ScanRun) -> None:
    assert scanned.code == 5  # no-such-patient could not be evaluated
    requested: list[str] = []
    page = browser.new_page()
    try:
        page.on("request", lambda request: requested.append(request.url))
        page.goto((scanned.out / "report.html").as_uri())
        rows = page.query_selector_all("#needing-action tr[data-patient]")
        needing = [el.get_attribute("data-patient") for el in rows]
        expected = sorted((line for line in scanned.lines if line.get("urgency", 99) < 99),
                          key=lambda line: (line["urgency"], line["patient"]))
        assert needing == [line["patient"] for line in expected]  # most urgent first
        assert "aza-stable" not in needing and "aza-medication-reference" not in needing
        first = page.query_selector("#needing-action tbody tr")
        assert first is not None and "hold" in first.inner_text()
        link = page.query_selector('#needing-action tr[data-patient="aza-febrile-c"] a')
        assert link is not None and link.get_attribute("href") == "http://127.0.0.1:8400/ehr/launch/aza-febrile-c"
        failed = [el.get_attribute("data-patient") for el in page.query_selector_all("#not-evaluated tr[data-patient]")]
        assert failed == ["no-such-patient"]
        bars = page.query_selector_all("#chart svg rect.bar")
        holds = sum(int(b.get_attribute("data-count")) for b in bars
                    if b.get_attribute("data-rule") == "infection-hold" and b.get_attribute("data-status") == "hold")
        assert holds == sum(1 for line in scanned.lines if (line.get("statuses") or {}).get("infection-hold") == "hold")
        box = page.query_selector("#chart svg").bounding_box()
        assert box is not None and box["width"] > 300 and box["height"] > 100
        assert "patients found" in page.inner_text("#run")
        page.screenshot(path=str(scanned.out / "report.png"), full_page=True)
    finally:
        page.close()
    assert all(url.startswith("file://") for url in requested), requested  # nothing fetched from anywhere


def test_report_escapes_what_the_server_sent(tmp_path: Path) -> None:
    from azaguard.scan.report import write_report
    from azaguard.scan.results import ResultsWriter, prepare

    prepare(tmp_path, resume=False)
    writer = ResultsWriter(tmp_path / "results.ndjson")
    writer.write({"patient": "x1", "outcome": "failed", "error": "<script>alert(1)</script>", "error_kind": "E"})
    writer.write({"patient": "x2", "outcome": "evaluated", "name": "=HYPERLINK(\"http://evil\")", "urgency": 0,
                  "statuses": {"dose": "hold"}, "verdict": "v", "actions": [
                      {"rule": "dose", "status": "hold", "severity": "high", "code": "c", "text": "<b>x</b>"}]})
    writer.close()
    write_report(tmp_path, {"parameters": {}, "discovery": {"description": "d", "steps": [], "warnings": []},
                            "timings": {}, "started_at": "t", "source": "s", "mappings_version": "m"}, None)
    html = (tmp_path / "report.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html and "<b>x</b>" not in html
    assert "'=HYPERLINK" in (tmp_path / "actions.csv").read_text()  # not a formula in a spreadsheet
