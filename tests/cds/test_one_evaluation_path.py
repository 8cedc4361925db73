"""The CDS hooks evaluate through the same step as `check` (evaluate.check_resources): the empty-record refusal,
one patient, the site's terminology server, the rules and the verdict's wording."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.testclient import TestClient

from azaguard.cds.app import CdsService, cds_routes
from azaguard.config import AppConfig
from azaguard.mappings import load_mappings
from azaguard.terminology.server import TerminologyServer
from tests.cds.conftest import Caller, Ehr
from tests.cds.hookdata import body, full_prefetch, sandbox_chart
from tests.clinical import builders as b

PV = "azaguard-patient-view"
HOOKS = Path(__file__).resolve().parents[2] / "plugin" / "azaguard" / "cds" / "hooks.py"
LOCAL = "http://hospital.example/drug-codes"


def test_hooks_have_no_evaluation_of_their_own() -> None:
    """No second copy: hooks.py builds no record and runs no rules itself."""
    imported = {
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(HOOKS.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert "azaguard.evaluate.check_resources" in imported
    assert not {"azaguard.rules.evaluate", "azaguard.record.build_record"} & imported


def test_a_call_with_no_data_at_all_is_412_never_no_cards(call: Caller) -> None:
    """Every prefetch key null and no FHIR server: no record, as `check` refuses an empty Bundle."""
    chart = sandbox_chart("aza-mmr-due")
    nothing = dict.fromkeys(full_prefetch(chart))
    r = call(PV, body("patient-view", chart, patient_id="aza-mmr-due", prefetch=nothing))
    assert r.status_code == 412, r.text
    assert "no data" in r.json()["message"]


class _Answers:
    """A terminology server's answers: the local code is azathioprine in RxNorm."""

    def operation(self, rtype: str, name: str, params: tuple[tuple[str, str], ...]) -> dict[str, Any]:
        asked = dict(params)
        if name == "translate" and asked.get("code") == "AZA-50" and "rxnorm" in asked.get("targetsystem", ""):
            concept = {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "1256",
                       "display": "azathioprine"}
            return {"resourceType": "Parameters", "parameter": [
                {"name": "result", "valueBoolean": True},
                {"name": "match", "part": [{"name": "equivalence", "valueCode": "wider"},
                                           {"name": "concept", "valueCoding": concept}]},
            ]}  # fmt: skip
        return {"resourceType": "Parameters", "parameter": [{"name": "result", "valueBoolean": False}]}


def test_the_sites_terminology_server_reads_a_local_code_in_a_hook_as_check_does(
    make_service: Callable[..., CdsService], ehr: Ehr
) -> None:
    order = b.azathioprine()
    order["medicationCodeableConcept"] = {"coding": [{"system": LOCAL, "code": "AZA-50"}]}
    chart = [b.patient(), order, b.recommendation("03")]

    def cards(service: CdsService) -> list[dict[str, Any]]:
        path = f"/cds-services/{PV}"
        data = __import__("json").dumps(body("patient-view", chart)).encode()
        with TestClient(Starlette(routes=cds_routes(service))) as c:
            r = c.post(path, content=data, headers={**ehr.headers(path), "Content-Type": "application/json"})
        assert r.status_code == 200, r.text
        found: list[dict[str, Any]] = r.json()["cards"]
        return found

    without = cards(make_service())
    # Without the server the local code is an unidentified medication: every rule says it cannot check.
    assert "Cannot check live vaccines" in [c["summary"].split(" — ")[0] for c in without]
    server = TerminologyServer(_Answers(), load_mappings())  # type: ignore[arg-type]
    with_server = cards(make_service(terminology=server))
    assert with_server[0]["summary"].startswith("Do not give the MMR vaccine (live) — the patient is on azathioprine")


def test_serve_hands_the_terminology_server_to_the_cds_hooks(
    config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import azaguard.cds.app as cds_app
    from azaguard.web.app import served_app

    made: list[CdsService] = []
    real = cds_app.create_cds_service

    def spy(*args: Any, **kwargs: Any) -> CdsService:
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(cds_app, "create_cds_service", spy)
    server = TerminologyServer(_Answers(), load_mappings())  # type: ignore[arg-type]
    served_app(config, terminology=server)
    assert [s.terminology for s in made] == [server]


SERVICE = Path(__file__).resolve().parents[2] / "plugin" / "azaguard" / "service.py"


def test_the_server_check_evaluates_through_check_resources() -> None:
    """`check --fhir-url`, the SMART page, the patient view and the scan gather with check_on_server: it has no
    evaluation of its own either (terminology, record, rules and verdict are check_resources')."""
    tree = ast.parse(SERVICE.read_text(encoding="utf-8"))
    body = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "check_on_server")
    called = {n.func.id for n in ast.walk(body) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert "check_resources" in called
    assert not {"build_record", "evaluate", "build_verdict", "_enrich"} & called


def test_the_smart_page_evaluates_with_the_sites_terminology_server(
    config: AppConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The page passes the site's terminology server to the one evaluation step: a local drug code is read as
    azathioprine on the page, as in `check` and the CDS hooks."""
    from starlette.routing import Mount

    from azaguard import service
    from azaguard.config import load_app_config
    from azaguard.resources import ResourceSet
    from azaguard.web.app import create_app
    from tests.web.fake_ehr import ORIGIN, FakeEhr
    from tests.web.test_app import REPO_CONFIG, Harness

    order = b.azathioprine()
    order["medicationCodeableConcept"] = {"coding": [{"system": LOCAL, "code": "AZA-50"}]}

    def on_server(client: Any, patient_id: str, **kw: Any) -> service.CheckResult:
        chart = [client.read("Patient", patient_id), order, b.recommendation("03")]
        return service.check_resources(ResourceSet.from_resources(chart), mappings=kw["mappings"], now=kw["now"],
                                       tz=kw.get("tz"), terminology=kw.get("terminology"))

    def page(terminology: TerminologyServer | None) -> str:
        ehr = FakeEhr()
        h = Harness(ehr, load_app_config(REPO_CONFIG), monkeypatch)
        monkeypatch.setattr(service, "check_on_server", on_server)
        h.app = create_app(load_app_config(REPO_CONFIG), mappings=load_mappings(), now=h.clock,
                           transport=ehr.transport, terminology=terminology)
        h.browser = TestClient(Starlette(routes=[Mount("/app", app=h.app)]), base_url=ORIGIN, follow_redirects=False)
        with h.browser:
            response = h.open_page()
        assert response.status_code == 200, response.text
        return response.text

    assert "Cannot check live vaccines" in page(None)
    assert "Do not give the MMR vaccine (live)" in page(TerminologyServer(_Answers(), load_mappings()))  # type: ignore[arg-type]


def test_serve_hands_the_terminology_server_to_the_page(config: AppConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    import azaguard.web.app as web_app

    made: list[Any] = []
    real = web_app.create_app

    def spy(*args: Any, **kwargs: Any) -> Starlette:
        made.append(kwargs.get("terminology"))
        return real(*args, **kwargs)

    monkeypatch.setattr(web_app, "create_app", spy)
    server = TerminologyServer(_Answers(), load_mappings())  # type: ignore[arg-type]
    web_app.served_app(config, terminology=server)
    assert made == [server]
