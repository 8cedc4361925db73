"""The whole EHR launch in a real headless Chromium (Debian's, driven by Playwright).

launcher page → Launch azaguard → authorize (PKCE) → the page shows the expected
holds → Write alerts to the chart → the alerts are on the FHIR server.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn

from azaguard.config import load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.site import create_site

pytestmark = [pytest.mark.integration, pytest.mark.browser]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The three patients the clinician opens, and the hold each must show.
CASES = {"aza-febrile-c": "infection-hold", "aza-mmr-due": "vaccination-hold", "aza-leukopenic": "blood-counts"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site_url(fhir_server: Any) -> Iterator[str]:
    now = datetime.now(UTC)
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle(build_patients(now)))
    port = _free_port()
    public_base = f"http://127.0.0.1:{port}"
    site = create_site(fhir_upstream=fhir_server.base_url, public_base=public_base,
                       app_config=load_app_config(public_base=public_base), mappings=load_mappings())
    server = uvicorn.Server(uvicorn.Config(site, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):  # bounded wait for the socket
        try:
            httpx.get(f"{public_base}/ehr/", timeout=1.0)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    yield public_base
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield b
        b.close()


@pytest.mark.parametrize(("patient_id", "rule"), list(CASES.items()))
def test_clinician_launches_sees_the_hold_and_writes_the_alerts(
    browser: Any, site_url: str, fhir_server: Any, patient_id: str, rule: str
) -> None:
    page = browser.new_page()
    try:
        page.goto(f"{site_url}/")
        page.click(f'a.launch[data-patient="{patient_id}"]')
        page.wait_for_selector("li.rule[data-rule]")
        statuses = {el.get_attribute("data-rule"): el.get_attribute("data-status")
                    for el in page.query_selector_all("li.rule[data-rule]")}
        assert statuses[rule] == "hold", statuses
        assert page.is_visible(".patient-banner")
        page.click("text=Write alerts to the chart")
        page.wait_for_selector("tr.write")
        outcomes = [el.get_attribute("data-outcome") for el in page.query_selector_all("tr.write")]
        assert outcomes and "failed" not in outcomes
        page.screenshot(path=f"/tmp/azaguard-{patient_id}.png", full_page=True)
    finally:
        page.close()
    with FhirClient(fhir_server.base_url) as client:
        issues = client.search("DetectedIssue", {"patient": f"Patient/{patient_id}"})
        flags = client.search("Flag", {"patient": f"Patient/{patient_id}", "status": "active"})
    assert any(any(c.get("code") == rule for c in i["code"]["coding"]) for i in issues)
    assert any(any(c.get("code") == rule for c in f["code"]["coding"]) for f in flags)
