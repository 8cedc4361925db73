"""`azaguard serve` serves the CDS Hooks service beside the SMART app."""

from __future__ import annotations

from starlette.testclient import TestClient

from azaguard.cds.store import CdsStore
from azaguard.config import AppConfig
from azaguard.web.app import served_app
from tests.cds.conftest import Ehr


def test_serve_mounts_the_cds_service_beside_the_app(config: AppConfig, ehr: Ehr, store: CdsStore) -> None:
    with TestClient(served_app(config, store=store), follow_redirects=False) as client:
        r = client.get("/cds-services", headers=ehr.headers("/cds-services"))
        assert r.status_code == 200 and len(r.json()["services"]) == 3
        assert client.get("/cds-services").status_code == 401
        assert client.get("/").headers["location"] == "/app/"
        assert client.get("/app/launch").status_code in (400, 200)  # the SMART app answers (no iss: refused)


def test_browser_based_clients_get_cors_without_credentials(client: TestClient, ehr: Ehr) -> None:
    pre = client.options("/cds-services/azaguard-patient-view",
                         headers={"Origin": "https://sandbox.cds-hooks.org", "Access-Control-Request-Method": "POST"})
    assert pre.status_code == 204 and "Authorization" in pre.headers["access-control-allow-headers"]
    r = client.get("/cds-services", headers=ehr.headers("/cds-services"))
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
