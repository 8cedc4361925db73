"""Every surface says the same thing: for every example and sandbox patient, and for azathioprine recorded by each
source (request, statement, dispense, administration) in each state (active, on hold, stopped, completed, a new
draft order), the page, the CLI text, the JSON report, the DetectedIssue/Flag, the CDS card and the scan report
carry the same actions and evidence rows, in display units, with no raw UCUM code or FHIR id."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from azaguard import report, service
from azaguard.alerts import device_resource, logical_author, plan_alerts
from azaguard.cds.cards import Links, finding_card
from azaguard.mappings import load_mappings
from azaguard.resources import ResourceSet, load_json_file
from azaguard.sandbox.patients import EXAMPLES_NOW, build_patients
from azaguard.scan import wording as scan_wording
from azaguard.service import CheckResult, chart_verdict, check_resources
from azaguard.wording import Action, EvidenceRow
from tests.clinical import builders as b

M = load_mappings()
REPO = Path(__file__).resolve().parents[1]
RAW_UCUM = re.compile(r"10\*\d|\bCel\b|\[degF\]|\[lb_av\]|\{1\.73_m2\}|\bumol/L|\b10\^\d|x10\^")
FHIR_ID = re.compile(r"\b(?:Patient|Observation|Medication(?:Request|Statement|Dispense|Administration)?|Condition|"
                     r"Immunization(?:Recommendation)?|ServiceRequest|DiagnosticReport|DetectedIssue|Flag|Device)"
                     r"/[A-Za-z0-9\-.]+")
Case = tuple[str, Callable[[], tuple[ResourceSet, datetime, bool]]]


# --- the cases ---------------------------------------------------------------------------------------


def _example(name: str) -> Callable[[], tuple[ResourceSet, datetime, bool]]:
    return lambda: (load_json_file(REPO / "examples" / name), EXAMPLES_NOW, False)


def _sandbox(pid: str) -> Callable[[], tuple[ResourceSet, datetime, bool]]:
    def build() -> tuple[ResourceSet, datetime, bool]:
        patient = next(p for p in build_patients(EXAMPLES_NOW) if p.id == pid)
        return ResourceSet.from_resources([dict(r) for r in patient.resources]), EXAMPLES_NOW, False

    return build


_THERAPY: dict[tuple[str, str], Callable[[], b.Resource]] = {
    ("request", "active"): lambda: b.azathioprine(),
    ("request", "on-hold"): lambda: b.azathioprine(status="on-hold"),
    ("request", "stopped"): lambda: b.azathioprine(status="stopped", started_days_ago=300, ended_days_ago=20),
    ("request", "completed"): lambda: b.azathioprine(status="completed", started_days_ago=300, ended_days_ago=20),
    ("request", "new draft order"): lambda: b.azathioprine(status="draft", started_days_ago=None),
    ("statement", "active"): lambda: b.medication_statement(),
    ("statement", "on-hold"): lambda: b.medication_statement(status="on-hold"),
    ("statement", "stopped"): lambda: b.medication_statement(status="stopped", started_days_ago=300,
                                                             ended_days_ago=20),
    ("statement", "completed"): lambda: b.medication_statement(status="completed", started_days_ago=300,
                                                               ended_days_ago=20),
    ("dispense", "active"): lambda: b.medication_dispense(),
    ("dispense", "on-hold"): lambda: b.medication_dispense(status="on-hold"),
    ("dispense", "stopped"): lambda: b.medication_dispense(status="stopped", handed_over_days_ago=60),
    ("dispense", "completed"): lambda: b.medication_dispense(handed_over_days_ago=60),
    ("administration", "active"): lambda: b.medication_administration(),
    ("administration", "on-hold"): lambda: b.medication_administration(status="on-hold"),
    ("administration", "stopped"): lambda: b.medication_administration(status="stopped", days_ago=20),
    ("administration", "completed"): lambda: b.medication_administration(days_ago=20),
}


def _matrix(source: str, state: str) -> Callable[[], tuple[ResourceSet, datetime, bool]]:
    """Azathioprine as `source` in `state`, with a live vaccine due, a fever in °F, a low WBC in 10*3/uL, an
    antibiotic recorded the same way and a weight: something for most rules to say, in units to convert."""

    def build() -> tuple[ResourceSet, datetime, bool]:
        antibiotic = {
            "request": lambda: b.medication_request("723", display="Amoxicillin 500 MG Oral Tablet",
                                                    started_days_ago=2),
            "statement": lambda: b.medication_statement("723", display="Amoxicillin 500 MG Oral Tablet",
                                                        started_days_ago=2),
            "dispense": lambda: b.medication_dispense("723", display="Amoxicillin 500 MG Oral Tablet",
                                                      handed_over_days_ago=2),
            "administration": lambda: b.medication_administration("723", display="Amoxicillin 500 MG Oral Tablet"),
        }[source]()
        resources = [
            b.person(), _THERAPY[(source, state)](), b.recommendation("03"), antibiotic,
            b.observation("8310-5", 101.8, "[degF]", days_ago=0, hours_ago=3),
            b.observation("6690-2", 2.9, "10*3/uL", days_ago=2),
            b.observation("29463-7", 70, "kg", days_ago=10),
        ]
        return ResourceSet.from_resources(resources), b.NOW, state == "new draft order"

    return build


def _cases() -> Iterator[Case]:
    for path in sorted((REPO / "examples").glob("*.json")):
        yield f"example {path.stem}", _example(path.name)
    for p in build_patients(EXAMPLES_NOW):
        yield f"sandbox {p.id}", _sandbox(p.id)
    for source, state in _THERAPY:
        yield f"{source} {state}", _matrix(source, state)


CASES = list(_cases())


# --- the surfaces ------------------------------------------------------------------------------------


def _row(e: EvidenceRow) -> str:
    return ", ".join(p for p in (e.what, e.value, e.date) if p)


def _clean(text: str) -> list[str]:
    problems = []
    if RAW_UCUM.search(text):
        problems.append(f"raw UCUM in {text!r}")
    if FHIR_ID.search(text):
        problems.append(f"FHIR id in {text!r}")
    return problems


def _page(result: CheckResult, monkeypatch: pytest.MonkeyPatch) -> str:
    """The SMART app's page for this result (the web tests' fake EHR launch; the check returns `result`)."""
    from azaguard.config import load_app_config
    from tests.web.fake_ehr import FakeEhr
    from tests.web.test_app import REPO_CONFIG, Harness

    harness = Harness(FakeEhr(), load_app_config(REPO_CONFIG), monkeypatch)
    monkeypatch.setattr(service, "check_on_server", lambda *a, **k: result)
    with harness.browser:
        page = harness.open_page()
    assert page.status_code == 200, page.text
    return page.text


def _visible(page: str) -> str:
    body = page.split("<main", 1)[-1]
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


@pytest.mark.parametrize(("name", "build"), CASES, ids=[c[0] for c in CASES])
def test_every_surface_carries_the_same_action_and_evidence(
    name: str, build: Callable[[], tuple[ResourceSet, datetime, bool]], monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, now, ordering = build()
    result = check_resources(resources, mappings=M, now=now, ordering_context=ordering)
    screen = result.verdict
    assert screen is not None
    chart = chart_verdict(result, M)
    problems: list[str] = []
    absolute: dict[tuple[str, str], Action] = {(a.rule, a.code): a for a in chart.actions}
    assert [(a.rule, a.code) for a in screen.actions] == list(absolute)

    text = report.to_text(result)
    data = report.to_json(result)
    page = _visible(_page(result, monkeypatch))
    plan = plan_alerts(result.patient_ref, result.findings, [], now, logical_author(device_resource(M.version)),
                       [], verdict=chart)
    issues = {tuple(w.resource["code"]["coding"][1]["code"].split("/", 1)): w.resource
              for w in plan if w.resource_type == "DetectedIssue"}
    flags = {tuple(w.resource["code"]["coding"][1]["code"].split("/", 1)): w.resource
             for w in plan if w.resource_type == "Flag"}
    findings = {(f.rule, f.code): f for f in result.findings if f.actionable}
    scan_actions, scan_words = scan_wording.verdict(result, M)
    if not screen.actions:  # nothing to do: every surface says so, and on what data the page adds
        assert scan_words == chart.headline == screen.headline
        assert screen.headline in text and screen.headline in _visible(_page(result, monkeypatch))

    for i, a in enumerate(screen.actions):
        key = (a.rule, a.code)
        c = absolute[key]
        # One action: the same verb and object whatever the date style.
        assert (a.verb, a.object) == (c.verb, c.object), key
        # Screens (relative dates): the page, the CLI text, the JSON report.
        assert a.summary in text and a.summary in page, (key, a.summary)
        js = data["verdict"]["actions"][i]
        assert (js["rule"], js["code"], js["summary"]) == (a.rule, a.code, a.summary)
        assert [(r["what"], r["value"], r["date"]) for r in js["evidence"]] == [(e.what, e.value, e.date)
                                                                              for e in a.evidence]
        for e in a.evidence:
            assert e.what in page and (not e.value or e.value in page), (key, e)
            assert f"- {e.what}" in text and (not e.value or e.value in text), (key, e)
        # Text that stays (absolute dates): the DetectedIssue and Flag, the CDS card, the scan report.
        issue = issues[key]
        assert issue["code"]["text"] == c.summary and issue["detail"].startswith(c.summary)
        shown = [d["display"] for d in issue.get("evidence", [{"detail": []}])[0]["detail"]]
        assert shown == [_row(e) for e in c.evidence], key
        if key in flags:
            assert flags[key]["code"]["text"] == c.summary
        card = finding_card(findings[key], card_uuid="u", links=Links(None, None), now=now, mappings=M)
        assert card["summary"] == c.summary
        detail = card["detail"].replace("\\", "")
        for e in c.evidence:
            assert e.what in detail and (not e.value or e.value in detail), (key, e)
        assert scan_actions[i]["text"] == c.summary
        # For people: no raw UCUM code or FHIR id on any surface.
        texts = [a.summary, a.detail, *a.todo, c.summary, issue["detail"], *shown, card["summary"], detail,
                 *(_row(e) for e in a.evidence)]
        for t in texts:
            problems += [f"{key}: {p}" for p in _clean(t)]
    problems += [f"page: {p}" for p in _clean(page)]
    assert not problems, "\n".join(problems)
