"""One sandbox site (FHIR server + EHR simulator + app) and one headless Chromium for all browser tests."""

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
from azaguard.sandbox.patients import SyntheticPatient, build_patients, transaction_bundle
from azaguard.sandbox.site import create_site
from azaguard.web.security import RateLimiter

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def sandbox_patients() -> list[SyntheticPatient]:
    return build_patients(datetime.now(UTC))


@pytest.fixture(scope="package")
def site_url(fhir_server: Any, sandbox_patients: list[SyntheticPatient]) -> Iterator[str]:
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle(sandbox_patients))
    port = _free_port()
    public_base = f"http://127.0.0.1:{port}"
    # One clinician opening every sandbox patient in a minute is more launches than the per-address
    # limit allows (a flood guard); the browser tests' site gets a limiter sized for them.
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("azaguard.web.security.RateLimiter", lambda: RateLimiter(rate=600, burst=200))
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


CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture(scope="package")
def playwright() -> Iterator[Any]:
    """One Playwright driver for the package (the sync API cannot run two at once)."""
    playwright_api = pytest.importorskip("playwright.sync_api")
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Any) -> Iterator[Any]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS))
    yield b
    b.close()
