"""The CDS hooks evaluate through the same step as `check` (service.check_resources): the empty-record refusal,
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
    assert "azaguard.service.check_resources" in imported
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
