"""Logs (JSON/text, secrets scrubbed, patient ids), the access line and request id, /healthz /readyz /metrics,
trusted proxies, refusals at WARNING."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from azaguard.ops import logs
from azaguard.ops.http import client_address, networks
from azaguard.web.app import served_app
from tests.sandbox_ehr.helpers import FHIR, PUBLIC, app_config

JWT = "eyJhbGciOiJFUzM4NCJ9.eyJpc3MiOiJ4In0.c2lnbmF0dXJl"
PEM = "-----BEGIN PRIVATE KEY-----\nMIGkAgEBBDA\n-----END PRIVATE KEY-----"


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    logs.configure("json", level="DEBUG", stream=stream)
    yield stream
    logging.getLogger().removeHandler(logs.configure("text", level="WARNING", stream=io.StringIO()))


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_have_time_level_event_and_fields_and_never_a_secret(captured: io.StringIO) -> None:
    log = logging.getLogger("azaguard.test")
    log.warning("launch refused", extra={"reason": "iss-not-allowed", "access_token": "tok-123", "iss": "x"})
    log.info(f"sent Authorization: Bearer {JWT} to /token?code=abc123&state=st456&x=1 with {PEM}")
    log.info('body {"access_token": "tok-xyz", "refresh_token": "r-1"}')
    first, second, _ = lines(captured)
    assert first["level"] == "WARNING" and first["event"] == "launch refused" and first["reason"] == "iss-not-allowed"
    assert first["access_token"] == "[redacted]" and str(first["time"]).endswith("Z")
    text = captured.getvalue()
    for secret in ("tok-123", JWT, "abc123", "st456", "MIGkAgEBBDA", "tok-xyz", "r-1"):
        assert secret not in text
    assert "code=[redacted]" in str(second["event"]) and "x=1" in str(second["event"])


def test_text_format_is_the_same_readable() -> None:
    stream = io.StringIO()
    logs.configure("text", stream=stream)
    token = logs.request_id.set("req-1")
    try:
        logging.getLogger("azaguard.test").warning("CDS call refused", extra={"reason": "aud", "token": "t0k"})
    finally:
        logs.request_id.reset(token)
    line = stream.getvalue().strip()
    assert " WARNING azaguard.test [req-1] CDS call refused reason=aud token=[redacted]" in line


@pytest.mark.parametrize(("mode", "expected"), [("plain", "p-42"), ("none", None)])
def test_patient_identifiers_plain_or_none(mode: logs.PatientIds, expected: str | None) -> None:
    logs.configure("text", patient_ids=mode, stream=io.StringIO())
    assert logs.patient("p-42") == expected


def test_patient_identifiers_hashed() -> None:
    logs.configure("text", patient_ids="hashed", stream=io.StringIO())
    hashed = logs.patient("p-42")
    assert hashed is not None and hashed.startswith("sha256:") and "p-42" not in hashed
    assert hashed == logs.patient("p-42") != logs.patient("p-43")


def test_client_address_from_forwarded_for_only_behind_a_trusted_proxy() -> None:
    proxies = networks(["10.0.0.0/8"])
    assert client_address("10.1.1.1", "203.0.113.9", proxies) == "203.0.113.9"
    assert client_address("10.1.1.1", "198.51.100.1, 203.0.113.9, 10.2.2.2", proxies) == "203.0.113.9"
    assert client_address("192.0.2.5", "203.0.113.9", proxies) == "192.0.2.5"  # not a proxy: ignored
    assert client_address("10.1.1.1", "not-an-ip", proxies) == "10.1.1.1"
    assert client_address("10.1.1.1", None, proxies) == "10.1.1.1"


def _site(tmp_path: Path, **changes: object) -> TestClient:
    config = app_config().model_copy(update={"cds_database_url": f"sqlite:///{tmp_path / 'db.sqlite'}", **changes})
    return TestClient(served_app(config), base_url=PUBLIC, follow_redirects=False)


def test_access_line_per_request_with_route_template_and_request_id(tmp_path: Path, captured: io.StringIO) -> None:
    with _site(tmp_path) as client:
        response = client.get("/app/launch", params={"iss": FHIR + "-other", "launch": "L-secret"},
                              headers={"X-Request-ID": "lb-7f3a"})
        assert response.status_code == 400 and response.headers["x-request-id"] == "lb-7f3a"
        fresh = client.get("/app/launch", headers={"X-Request-ID": "bad id with spaces"})
        assert fresh.headers["x-request-id"] != "bad id with spaces" and len(fresh.headers["x-request-id"]) == 32
        client.post("/cds-services/azaguard-patient-view", json={})
    records = lines(captured)
    access = [r for r in records if r["logger"] == "azaguard.access"]
    assert [(r["method"], r["route"], r["status"]) for r in access] == [
        ("GET", "/app/launch", 400), ("GET", "/app/launch", 400), ("POST", "/cds-services/{service_id}", 401),
    ]
    assert access[0]["request_id"] == "lb-7f3a" and float(str(access[0]["duration_ms"])) >= 0
    refusals = [r for r in records if r["level"] == "WARNING"]
    assert refusals[0]["reason"] == "iss-not-allowed" and refusals[0]["request_id"] == "lb-7f3a"
    assert any(r["event"] == "CDS call refused" and r["reason"] == "no-token" for r in refusals)
    assert "L-secret" not in captured.getvalue()


def test_health_readiness_and_metrics_access(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T_METRICS_TOKEN", "m-token")
    with _site(tmp_path, metrics_token_env="T_METRICS_TOKEN") as client:
        assert client.get("/healthz").json() == {"status": "alive"}
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json() == {"status": "ready", "checks": {"config": "ok", "mappings": "ok", "database": "ok",
                                                              "session_store": "ok"}}
        assert client.get("/metrics").status_code == 403  # the test client is not on loopback
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
        metrics = client.get("/metrics", headers={"Authorization": "Bearer m-token"})
        assert metrics.status_code == 200
        assert 'azaguard_http_requests_total{method="GET",route="/healthz",status="200"}' in metrics.text
        for name in ("azaguard_cds_refusals", "azaguard_fhir_upstream_requests", "azaguard_alert_writes",
                     "azaguard_launches", "azaguard_active_sessions", "azaguard_cds_hook_duration_seconds"):
            assert f"# TYPE {name}" in metrics.text


def test_metrics_for_configured_networks_through_a_trusted_proxy(tmp_path: Path) -> None:
    config = app_config().model_copy(update={"cds_database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
                                             "trusted_proxies": ("10.0.0.0/8",),
                                             "metrics_networks": ("198.51.100.0/24",)})
    with TestClient(served_app(config), base_url=PUBLIC, client=("10.9.9.9", 4000)) as client:
        assert client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.20"}).status_code == 200
        assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.20"}).status_code == 403


def test_readiness_names_the_failing_check(tmp_path: Path) -> None:
    config = app_config().model_copy(update={"cds_database_url": "sqlite:////nonexistent-dir/x/db.sqlite"})
    with TestClient(served_app(config), base_url=PUBLIC) as client:
        ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "not ready" and body["checks"]["database"].startswith("the database does not answer")
    assert body["checks"]["mappings"] == "ok"


def test_every_cds_refusal_has_a_reason_label() -> None:
    import re as _re

    from azaguard.cds.app import refusal_reason

    source = (Path(__file__).resolve().parents[2] / "plugin/azaguard/cds/trust.py").read_text()
    messages = _re.findall(r'raise Untrusted\(f?"([^"]+)"', source)
    assert len(messages) >= 12
    labels = {m: refusal_reason(m) for m in messages}
    assert "other" not in labels.values(), labels
    assert labels["the JWT was already used (replayed jti)"] == "replay"
    assert labels["the JWT's aud is not this endpoint"] == "aud"
    assert labels["the JWT issuer is not a registered CDS client"] == "iss"
