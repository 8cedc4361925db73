"""The clinician's view in a real headless Chromium (Debian's, driven by Playwright), per sandbox patient.

Sandbox EHR launcher → Launch azaguard (SMART EHR launch, PKCE) → the page. For every synthetic
patient: the verdict banner's words, any hold inside the first 768 px at 1366 px width, no
horizontal scroll at 420 px, no raw UCUM code or FHIR id in the visible text (details opened).
Then: axe-core finds no serious or critical violation, writing alerts is a POST-redirect-GET, and
screenshots of three patients are saved under tmp/artefacts/ (not in the repository).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from azaguard.fhir.client import FhirClient
from azaguard.findings import RULE_IDS
from azaguard.sandbox.patients import SyntheticPatient

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ARTEFACTS = Path(__file__).resolve().parents[2] / "tmp" / "artefacts"
SCREENSHOTS = ("aza-febrile-c", "aza-no-weight", "aza-stable")
AXE_PATIENTS = ("aza-leukopenic", "aza-no-weight", "aza-stable", "aza-not-on", "aza-shingrix")
# A UCUM code as the rules and FHIR write it, never as a clinician reads it.
RAW_UCUM = re.compile(r"10\*\d|\bCel\b|\[degF\]|\[lb_av\]|\{1\.73_m2\}|\bumol/L|\b10\^\d|mL/min/\{|\b10\*3/uL")
FHIR_ID = re.compile(
    r"\b(?:Patient|Observation|MedicationRequest|Medication|Condition|Immunization|ImmunizationRecommendation|"
    r"ServiceRequest|DetectedIssue|Flag|Practitioner|Device)/[A-Za-z0-9\-.]+"
)


@pytest.fixture(scope="module")
def page(browser: Any) -> Iterator[Any]:
    """One tab for the whole module (launching again per patient is what a clinician does)."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    tab = context.new_page()
    yield tab
    context.close()


def _open(page: Any, site_url: str, patient_id: str) -> None:
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{site_url}/ehr/")
    page.click(f'a.launch[data-patient="{patient_id}"]')
    page.wait_for_selector("section.verdict")


def test_every_sandbox_patient_reads_right_at_a_glance(
    page: Any, site_url: str, sandbox_patients: list[SyntheticPatient]
) -> None:
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    for patient in sandbox_patients:
        _open(page, site_url, patient.id)
        words = page.inner_text("#verdict-words").strip()
        if words != patient.expected_verdict:
            problems.append(f"{patient.id}: banner says {words!r}, expected {patient.expected_verdict!r}")
        holds = page.query_selector_all('li.rule[data-status="hold"] .action-summary')
        if patient.expected_verdict == "Hold" and not holds:
            problems.append(f"{patient.id}: no hold on the page")
        for hold in holds:
            box = hold.bounding_box()
            if box is None or box["y"] + box["height"] > 768:
                problems.append(f"{patient.id}: a hold is below the fold at 1366x768 ({box})")
        rules = {el.get_attribute("data-rule") for el in page.query_selector_all("[data-rule][data-status]")}
        if len(rules) != len(RULE_IDS):
            problems.append(f"{patient.id}: {len(rules)} checks shown, not {len(RULE_IDS)}")
        if patient.id in SCREENSHOTS:
            page.screenshot(path=str(ARTEFACTS / f"{patient.id}-1366.png"), full_page=True)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        text = page.inner_text("body")
        for pattern, what in ((RAW_UCUM, "raw UCUM code"), (FHIR_ID, "FHIR id")):
            found = pattern.search(text)
            if found:
                problems.append(f"{patient.id}: {what} {found.group(0)!r} in visible text")
        if patient.id in text:
            problems.append(f"{patient.id}: the patient's FHIR id is in visible text")
        page.set_viewport_size({"width": 420, "height": 800})
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        if overflow > 0:
            problems.append(f"{patient.id}: scrolls sideways by {overflow} px at 420 px width")
        if patient.id == SCREENSHOTS[0]:
            page.screenshot(path=str(ARTEFACTS / f"{patient.id}-420.png"), full_page=True)
    assert not problems, "\n".join(problems)


def test_pages_have_no_serious_accessibility_violations(page: Any, site_url: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    axe = Axe()
    found: list[str] = []
    page.set_viewport_size({"width": 1366, "height": 768})
    page.goto(f"{site_url}/ehr/")
    targets = ["launcher", *AXE_PATIENTS]
    for target in targets:
        if target != "launcher":
            _open(page, site_url, target)
            page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        results = axe.run(page)
        for violation in results.response["violations"]:
            if violation.get("impact") in ("serious", "critical"):
                nodes = [n.get("target") for n in violation.get("nodes", [])][:3]
                found.append(f"{target}: {violation['id']} ({violation['impact']}): {violation['help']} {nodes}")
    assert not found, "\n".join(found)


def test_keyboard_alone_reaches_the_evidence_and_the_write_button(page: Any, site_url: str) -> None:
    _open(page, site_url, "aza-mmr-due")
    reached: list[str] = []
    for _ in range(40):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("document.activeElement.tagName + ':' + document.activeElement.textContent"))
        if "Write alerts" in reached[-1]:
            break
    assert any(r.startswith("SUMMARY:Why, and the evidence") for r in reached), reached
    assert "Write alerts" in reached[-1], reached
    summary = page.query_selector("li.rule details summary")
    summary.focus()
    page.keyboard.press("Enter")
    assert page.query_selector("li.rule details[open] table.evidence") is not None


def test_writing_alerts_is_post_redirect_get(page: Any, site_url: str, fhir_server: Any) -> None:
    patient_id = "aza-leukopenic"
    _open(page, site_url, patient_id)
    page.click("text=Write alerts to the chart")
    page.wait_for_selector("tr.write")  # the result, shown by the GET the POST redirected to
    assert page.url.split("#")[0].split("?")[0].endswith("/app/")
    outcomes = [el.get_attribute("data-outcome") for el in page.query_selector_all("tr.write")]
    assert outcomes and "failed" not in outcomes and "created" in outcomes
    assert {el.inner_text().split(" ")[0] for el in page.query_selector_all("tr.write td:first-child")} >= {
        "Alert", "Flag"
    }
    page.screenshot(path=str(ARTEFACTS / f"{patient_id}-written-1366.png"), full_page=True)
    # A reload is a plain GET: no resubmission, the chart now has everything and nothing is left to write.
    response = page.reload()
    assert response is not None and response.request.method == "GET"
    assert page.query_selector("tr.write") is None
    assert "Nothing to write" in page.inner_text("section.alerts")
    with FhirClient(fhir_server.base_url) as client:
        issues = client.search("DetectedIssue", {"patient": f"Patient/{patient_id}"})
        flags = client.search("Flag", {"patient": f"Patient/{patient_id}", "status": "active"})
    assert any(any(c.get("code") == "blood-counts" for c in i["code"]["coding"]) for i in issues)
    assert any(any(c.get("code") == "blood-counts" for c in f["code"]["coding"]) for f in flags)
    assert all(not RAW_UCUM.search(i["code"]["text"]) and not FHIR_ID.search(i["code"]["text"]) for i in issues)
