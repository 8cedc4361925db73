"""The sandbox EHR as a CDS Hooks client, in headless Chromium: open the chart of a patient on
azathioprine with MMR due (patient-view card above the launch button), select MMR (order-select,
signed JWT) → a critical card → accept its suggestion → the draft is gone; select LAIV → override
with a reason → Sign (order-sign) → signed; both feedbacks are stored."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.cds.store import CdsStore
from azaguard.config import load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.sandbox.site import create_site
from tests.browser.servers import Late, ThreadedServer

pytestmark = [pytest.mark.integration, pytest.mark.browser]


@pytest.fixture(scope="module")
def site(fhir_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    now = datetime.now(UTC)
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle([p for p in build_patients(now) if p.id == "aza-mmr-due"]))
    late = Late()
    server = ThreadedServer(late)
    public_base = server.base
    database = f"sqlite:///{tmp_path_factory.mktemp('cds') / 'cds.sqlite'}"
    late.app = create_site(fhir_upstream=fhir_server.base_url, public_base=public_base,
                      app_config=load_app_config(public_base=public_base), mappings=load_mappings(),
                      cds_database_url=database)
    with server:
        yield public_base, database


def test_select_mmr_for_a_patient_on_azathioprine_then_accept_the_suggestion(
    site: tuple[str, str], browser: Any
) -> None:
    base, database = site
    context = browser.new_context()  # the package's browser (one Playwright driver), a fresh context
    page = context.new_page()
    try:
        page.goto(f"{base}/ehr/")
        page.click('a.chart[data-chart="aza-mmr-due"]')
        page.wait_for_selector('#view-cards article[data-indicator="critical"]')
        assert page.is_visible('a.launch[data-patient="aza-mmr-due"]')
        page.select_option("#product", "mmr")
        page.click("#select-order")
        page.wait_for_selector('#order-cards article[data-indicator="critical"]')
        assert page.locator("li.draft").count() == 1
        page.screenshot(path="/tmp/azaguard-cds-card.png", full_page=True)
        page.click("#order-cards article[data-indicator='critical'] button.accept")
        page.wait_for_selector("#message")
        assert page.locator("li.draft").count() == 0
        assert page.locator('#order-cards article[data-indicator="critical"]').count() == 0
        page.select_option("#product", "laiv")
        page.click("#select-order")
        card = "#order-cards article[data-indicator='critical']"
        page.wait_for_selector(card)
        page.select_option(f"{card} select[name=reason]", "prescriber-approved")
        page.fill(f"{card} input[name=comment]", "discussed with rheumatology")
        page.click(f"{card} button.override-button")
        page.wait_for_selector("text=Overridden:")
        page.click("#sign")
        page.wait_for_selector("text=order(s) signed")
        assert page.locator("li.draft").count() == 0
        page.screenshot(path="/tmp/azaguard-cds-order.png", full_page=True)
    finally:
        context.close()
    store = CdsStore(database)
    try:
        rows = store.feedback_since(datetime(2000, 1, 1, tzinfo=UTC))
    finally:
        store.close()
    assert [(r.outcome, r.rule, r.reason_code) for r in rows] == [
        ("accepted", "vaccination-hold", None), ("overridden", "vaccination-hold", "prescriber-approved")]
    assert rows[1].user_comment == "discussed with rheumatology"
