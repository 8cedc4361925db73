from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from azaguard.config import AppConfig, ConfigError, default_config_path, load_app_config

REPO_CONFIG = Path(__file__).resolve().parents[2] / "smart_launch.json"


def _write(tmp_path: Path, **overrides: Any) -> Path:
    data = json.loads(REPO_CONFIG.read_text())
    data.update(overrides)
    for key, value in list(data.items()):
        if value is None:
            del data[key]
    path = tmp_path / "smart_launch.json"
    path.write_text(json.dumps(data))
    return path


def test_the_repository_registration_loads() -> None:
    config = load_app_config(REPO_CONFIG)
    assert config.client_id == "azaguard"
    assert config.client_type == "public"
    assert config.redirect_uri == "http://127.0.0.1:8400/app/callback"
    assert config.allowed_iss == ("http://127.0.0.1:8400/ehr/fhir",)
    assert "patient/DetectedIssue.crus" in config.scopes.v2.split()
    assert "patient/DetectedIssue.write" in config.scopes.v1.split()
    assert config.client_secret() is None
    assert not config.secure_cookies  # loopback demo over plain http


def test_default_path_is_the_repository_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AZAGUARD_SMART_CONFIG", raising=False)
    assert default_config_path() == REPO_CONFIG


def test_public_base_rewrites_the_app_origin_everywhere() -> None:
    config = load_app_config(REPO_CONFIG, public_base="http://127.0.0.1:8401/")
    assert config.launch_uri == "http://127.0.0.1:8401/app/launch"
    assert config.redirect_uris == ("http://127.0.0.1:8401/app/callback",)
    assert config.allowed_iss == ("http://127.0.0.1:8401/ehr/fhir",)


def test_confidential_client_reads_its_secret_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, client_type="confidential-symmetric", client_secret_env="AZAGUARD_TEST_SECRET")
    monkeypatch.delenv("AZAGUARD_TEST_SECRET", raising=False)
    with pytest.raises(ConfigError, match="AZAGUARD_TEST_SECRET"):
        load_app_config(path)
    monkeypatch.setenv("AZAGUARD_TEST_SECRET", "s3cret")
    config = load_app_config(path)
    assert config.client_secret() == "s3cret"
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_secret": "oops"}, "must not be written"),
        ({"client_type": "confidential-symmetric"}, "client_secret_env"),
        ({"client_secret_env": "X"}, "public client has no secret"),
        ({"client_type": "implicit"}, "client_type"),
        ({"redirect_uris": []}, "redirect_uris"),
        ({"redirect_uris": ["http://example.org/app/callback"]}, "https"),
        ({"allowed_iss": ["javascript:alert(1)"]}, "allowed_iss"),
        ({"launch_uri": "/app/launch"}, "launch_uri"),
        ({"scopes": {"v2": "launch"}}, "scopes.v1"),
        ({"client_id": None}, "client_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_registrations_fail_clearly(tmp_path: Path, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_app_config(_write(tmp_path, **overrides))


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_app_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_app_config(bad)


def test_iss_allow_list_and_frame_ancestors() -> None:
    config = AppConfig.model_validate(json.loads(REPO_CONFIG.read_text()))
    assert config.iss_allowed("http://127.0.0.1:8400/ehr/fhir")
    assert config.iss_allowed("http://127.0.0.1:8400/ehr/fhir/")
    assert not config.iss_allowed("http://127.0.0.1:8400/ehr/fhir/../evil")
    assert not config.iss_allowed("http://127.0.0.1:8400/ehr")
    assert not config.iss_allowed("")
    assert config.frame_ancestor_sources() == ("'self'", "http://127.0.0.1:8400")
    custom = config.model_copy(update={"frame_ancestors": ("https://ehr.example.org",)})
    assert custom.frame_ancestor_sources() == ("https://ehr.example.org",)
