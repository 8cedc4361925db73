"""The official CDS Hooks sandbox (its real build, tests/data/cds-hooks-sandbox) against `azaguard serve` configured
as the README says (the sandbox's published key registered inline; no --insecure-cds-sandbox), in headless Chromium.

The sandbox signs every call ES384 with a `jku` naming its public site, unreachable here: the registered key decides.
Opening the chart fires patient-view (a febrile patient on azathioprine: hold azathioprine); "Rx View" fires
order-select with an empty draft (no card: nothing ordered), then with the live oral typhoid vaccine Ty21a picked
from its RxNorm list (a critical card: do not give it, recognised by its code). Every call is signed and trusted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from azaguard.cds.app import INSECURE_HEADER
from azaguard.config import CdsClient, load_app_config
from azaguard.fhir.client import FhirClient
from azaguard.sandbox.patients import build_patients, transaction_bundle
from azaguard.web.app import served_app
from tests.browser.servers import Late, ThreadedServer
from tests.cds.sandbox_build import SANDBOX_ISS, sandbox_jwks, unpack_build

pytestmark = [pytest.mark.integration, pytest.mark.browser]

README = Path(__file__).resolve().parents[2] / "README.md"
PATIENT = "aza-febrile-c"
TYPHOID = "Typhoid Vaccine Live Ty21a 6800000000 UNT Delayed Release Oral Capsule"


def readme_cds_client(iss: str) -> dict[str, Any]:
    """The `cds_clients` entry the README gives for `iss` (its JSON example, read as written)."""
    text = README.read_text(encoding="utf-8")
    for block in re.findall(r"```json\n(.*?)```", text, re.S):
        if '"cds_clients"' not in block:
            continue
        entries: list[dict[str, Any]] = json.loads("{" + block.strip().rstrip(",") + "}")["cds_clients"]
        found = next((e for e in entries if e.get("iss") == iss), None)
        if found is not None:
            return found
    raise AssertionError(f"the README registers no CDS client {iss}")


@pytest.fixture(scope="module")
def setup(fhir_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    with FhirClient(fhir_server.base_url) as client:
        client.transaction(transaction_bundle([p for p in build_patients(datetime.now(UTC)) if p.id == PATIENT]))
    build = unpack_build(tmp_path_factory.mktemp("cds-hooks-sandbox"))
    static = ThreadedServer(Starlette(routes=[Mount("/", app=StaticFiles(directory=build, html=True))]))
    registered = readme_cds_client(SANDBOX_ISS)
    assert registered["jwks"] == sandbox_jwks()  # the README's key is the build's published key
    late = Late()
    service = ThreadedServer(late)
    database = f"sqlite:///{tmp_path_factory.mktemp('cds') / 'cds.sqlite'}"
    config = load_app_config(public_base=service.base).model_copy(update={
        "cds_clients": (CdsClient(**registered),), "cds_database_url": database})
    late.app = served_app(config)  # what `azaguard serve --config ...` runs, without --insecure-cds-sandbox
    static.start()
    service.start()
    yield static.base, service.base, str(fhir_server.base_url)
    service.stop()
    static.stop()


def test_the_official_sandbox_gets_signed_cards_for_patient_view_and_a_live_typhoid_order(
    browser: Any, setup: tuple[str, str, str]
) -> None:
    static, service, fhir = setup
    context = browser.new_context(viewport={"width": 1400, "height": 1000})  # a fresh profile: no saved settings
    calls: list[dict[str, Any]] = []

    def seen(response: Any) -> None:
        if response.url.startswith(f"{service}/cds-services") and response.request.method in ("GET", "POST"):
            body = response.json() if response.status == 200 else response.text()
            calls.append({"path": response.url[len(service):], "status": response.status, "body": body,
                          "auth": response.request.headers.get("authorization", ""),
                          "insecure": response.headers.get(INSECURE_HEADER.lower()),
                          "sent": json.loads(response.request.post_data or "null")})

    try:
        page = context.new_page()
        page.on("response", seen)
        discovery = f"{service}/cds-services"
        query = urlencode({"fhirServiceUrl": fhir, "patientId": PATIENT, "serviceDiscoveryURL": discovery})
        page.goto(f"{static}/?{query}")
        page.get_by_text("Hold azathioprine", exact=False).first.wait_for()
        page.get_by_text("Rx View", exact=True).click()
        page.locator("input[name=medication-input]").fill("typhoid")
        page.get_by_text(TYPHOID, exact=True).click()
        page.get_by_text("Do not give", exact=False).first.wait_for()
        page.screenshot(path="/tmp/azaguard-cds-hooks-sandbox.png", full_page=True)
        before = len(calls)
        page.get_by_role("button", name=re.compile("^Remove the draft order")).click()  # take the suggestion
        for _ in range(100):  # bounded wait for the sandbox's next call
            if any(c["path"].endswith("/azaguard-order-select") for c in calls[before:]):
                break
            page.wait_for_timeout(50)
    finally:
        context.close()

    assert calls and all(c["status"] == 200 for c in calls), [(c["path"], c["status"], c["body"]) for c in calls]
    assert all(c["auth"].startswith("Bearer ey") and c["insecure"] is None for c in calls)  # signed, trusted
    hooks = [c for c in calls if c["path"] != "/cds-services"]
    view = next(c for c in hooks if c["path"].endswith("/azaguard-patient-view"))
    assert [(k["indicator"], k["summary"].split(" — ")[0]) for k in view["body"]["cards"]] == [
        ("critical", "Hold azathioprine")]
    selects = [c for c in hooks if c["path"].endswith("/azaguard-order-select")]
    empty = [c for c in selects if "medicationCodeableConcept" not in json.dumps(c["sent"]["context"]["draftOrders"])]
    assert empty and all(c["body"]["cards"] == [] for c in empty)  # the screen opening: no card, no noise
    ordered = [c for c in selects if TYPHOID in json.dumps(c["sent"]["context"]["draftOrders"])]
    assert ordered, [c["sent"] for c in selects]
    cards = ordered[-1]["body"]["cards"]
    critical = [k for k in cards if k["indicator"] == "critical" and k["source"]["topic"]["code"] == "vaccination-hold"]
    assert len(critical) == 1, cards
    card = critical[0]
    assert "typhoid" in card["summary"].lower() and "live" in card["summary"].lower(), card["summary"]
    assert "by name only" not in card["detail"]  # recognised by its RxNorm code
    assert card["suggestions"][0]["actions"][0]["type"] == "delete"
    assert card["suggestions"][0]["label"] == (  # as a clinician writes it, not the raw RxNorm display
        "Remove the draft order: typhoid vaccine live Ty21a 6800000000 units delayed-release capsules")
    # The suggestion taken, the sandbox sends the draft again without its medication: nothing to say.
    after = [c for c in selects if c is not ordered[-1] and selects.index(c) > selects.index(ordered[-1])]
    assert after and after[-1]["body"]["cards"] == [], [c["sent"]["context"]["draftOrders"] for c in after]
    feedback = [c for c in calls if c["path"].endswith("/feedback")]
    assert [c["body"] for c in feedback] == [{"stored": 1}]  # the accepted suggestion, stored
