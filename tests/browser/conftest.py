"""One sandbox site (FHIR server + EHR simulator + app) and one headless Chromium for all browser tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.config import load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.mappings import load_mappings
from azaguard.sandbox.patients import SyntheticPatient, build_patients, transaction_bundle
from azaguard.sandbox.site import create_site
from azaguard.websecurity import RateLimiter
from tests.browser.servers import Late, ThreadedServer, launch_chromium


@pytest.fixture(scope="session")
def sandbox_patients() -> list[SyntheticPatient]:
    return build_patients(datetime.now(UTC))


@pytest.fixture(scope="package")
def site_url(fhir_server: Any, sandbox_patients: list[SyntheticPatient]) -> Iterator[str]:
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle(sandbox_patients))
    late = Late()
    server = ThreadedServer(late)
    public_base = server.base
    # One clinician opening every sandbox patient in a minute is more launches than the per-address
    # limit allows (a flood guard); the browser tests' site gets a limiter sized for them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("azaguard.websecurity.RateLimiter", lambda: RateLimiter(rate=600, burst=200))
        site = create_site(fhir_upstream=fhir_server.base_url, public_base=public_base,
                           app_config=load_app_config(public_base=public_base), mappings=load_mappings())
    late.app = site
    with server:
        yield public_base


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the package (the sync API cannot run two at once)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    b = launch_chromium(playwright)
    yield b
    b.close()
