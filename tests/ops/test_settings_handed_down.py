"""Settings are handed down: the entry point builds them once, and the apps it builds keep their state where those
settings say, whatever the environment says when a store happens to open."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from azaguard.cds.store import CdsStore
from azaguard.ops import runtime
from azaguard.settings import CDS_DATABASE_URL, Settings
from azaguard.web.app import served_app
from tests.sandbox_ehr.helpers import PUBLIC, app_config

FEEDBACK = {"feedback": [{"card": "card-1", "outcome": "accepted", "outcomeTimestamp": "2026-11-20T09:00:00Z"}]}


def test_an_app_built_with_settings_keeps_its_state_where_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "from-the-environment.sqlite"
    chosen = tmp_path / "from-the-settings.sqlite"
    monkeypatch.setenv(CDS_DATABASE_URL, f"sqlite:///{elsewhere}")  # what the environment says now
    settings = Settings.from_environ({CDS_DATABASE_URL: f"sqlite:///{chosen}", "XDG_STATE_HOME": str(tmp_path)})
    config = app_config()
    assert config.cds_database_url is None  # the database comes from the settings
    app = served_app(config, settings=settings, insecure_cds=True)
    with TestClient(app, base_url=PUBLIC) as client:
        ready = client.get("/readyz")
        assert ready.status_code == 200, ready.text
        stored = client.post("/cds-services/azaguard-patient-view/feedback", content=json.dumps(FEEDBACK),
                             headers={"Content-Type": "application/json"})
        assert stored.status_code == 200, stored.text
    store = CdsStore(f"sqlite:///{chosen}")
    try:
        assert [row.card for row in store.feedback_since(datetime(2026, 1, 1, tzinfo=UTC))] == ["card-1"]
    finally:
        store.close()
    assert not elsewhere.exists()  # the environment was never read for it
    assert runtime.database_url(config, settings) == f"sqlite:///{chosen}"


def test_the_configuration_wins_over_the_settings(tmp_path: Path) -> None:
    settings = Settings.from_environ({CDS_DATABASE_URL: f"sqlite:///{tmp_path / 'settings.sqlite'}"})
    config = app_config().model_copy(update={"cds_database_url": f"sqlite:///{tmp_path / 'config.sqlite'}"})
    assert runtime.database_url(config, settings) == f"sqlite:///{tmp_path / 'config.sqlite'}"
