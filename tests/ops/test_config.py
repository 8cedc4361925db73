"""`azaguard config check`, docs/configuration.md kept current, every environment variable documented,
the deployment's example file valid."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from azaguard.cli import main
from azaguard.config import AppConfig, with_environment
from azaguard.ops import configdoc
from tests.ops.services import free_port

REPO = Path(__file__).resolve().parents[2]
GOOD = json.loads((REPO / "smart_launch.json").read_text())


def write(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


def test_docs_configuration_is_generated_from_the_schema() -> None:
    assert (REPO / "docs" / "configuration.md").read_text() == configdoc.markdown(), (
        "docs/configuration.md is out of date: python -m azaguard.ops.configdoc > docs/configuration.md")


def test_every_environment_variable_the_code_reads_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    used = set()
    for path in (REPO / "plugin").rglob("*.py"):
        used |= set(re.findall(r"AZAGUARD_[A-Z_]+", path.read_text()))
    assert used and sorted(v for v in used if f"`{v}`" not in text) == []


def test_the_deployment_file_is_complete_and_valid_and_shown_in_the_readme() -> None:
    data = json.loads((REPO / "deploy" / "azaguard.json").read_text())
    config = AppConfig.model_validate(data)
    # Every key but a confidential client's secret variable and the patient launch (a clinician deployment).
    assert set(data) == set(AppConfig.model_fields) - {"client_secret_env", "patient_scopes"} and config.session_store.startswith("redis://")
    readme = (REPO / "README.md").read_text()
    assert "docs/configuration.md" in readme and json.dumps(data["session_store"]) in readme


def test_environment_overrides_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZAGUARD_LOG_FORMAT", "json")
    monkeypatch.setenv("AZAGUARD_SESSION_STORE", "database")
    config = AppConfig.model_validate(with_environment({**GOOD, "log_format": "text"}))
    assert (config.log_format, config.session_store) == ("json", "database")


def test_unknown_and_misspelt_keys_and_bad_values_one_sentence_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {**GOOD, "alowed_iss": GOOD["allowed_iss"], "log_format": "xml", "session_store": "memcached://x",
           "trusted_proxies": ["10.0.0.0/33"], "cds_clients": [{"iss": "e", "jwks_uri": "https://e/jwks"}]}
    code = main(["config", "check", "--config", str(write(tmp_path, bad)), "--offline"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 2
    assert "Unknown key 'alowed_iss' (did you mean 'allowed_iss'?)." in lines
    assert "Unknown key 'jwks_uri' in cds_clients.0 (did you mean 'jwks_url'?)." in lines
    assert any(line.startswith("log_format: Input should be 'text' or 'json'") for line in lines)
    assert any(line.startswith("session_store: session_store must be 'memory'") for line in lines)
    assert any(line.startswith("trusted_proxies: '10.0.0.0/33' is not an IP network") for line in lines)
    assert all(line.endswith(".") for line in lines)


def test_a_valid_file_offline_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "--config", str(write(tmp_path, GOOD)), "--offline"]) == 0
    assert capsys.readouterr().out.strip().endswith(": valid.")


def test_what_it_names_is_tried(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens there
    data = {**GOOD, "allowed_iss": [f"http://127.0.0.1:{closed}/fhir"],
            "cds_clients": [{"iss": "ehr", "jwks_url": f"http://127.0.0.1:{closed}/jwks"}],
            "cds_database_url": "sqlite:////nonexistent-dir/x/db.sqlite",
            "session_store": f"redis://127.0.0.1:{closed}/0"}
    run = subprocess.run([sys.executable, "-m", "azaguard.cli", "config", "check", "--config",
                          str(write(tmp_path, data))], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith(f"allowed_iss http://127.0.0.1:{closed}/fhir: SMART discovery failed")
    assert lines[1].startswith(f"CDS client ehr: jwks_url http://127.0.0.1:{closed}/jwks cannot be read")
    assert lines[2].startswith("cds_database_url: the database does not answer")
    assert lines[3].startswith("session_store: the session store (Redis) does not answer")


def test_reachable_services_pass(tmp_path: Path, redis_url: str) -> None:
    data = {**GOOD, "allowed_iss": ["http://127.0.0.1:9/fhir"], "session_store": redis_url,
            "cds_database_url": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    from azaguard.ops.configcheck import reachability_problems

    config = AppConfig.model_validate(data)
    problems = reachability_problems(config)
    assert len(problems) == 1 and problems[0].startswith("allowed_iss http://127.0.0.1:9/fhir")


def test_demo_takes_a_config_and_a_log_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import azaguard.sandbox.demo as demo

    seen: dict[str, object] = {}
    monkeypatch.setattr(demo, "run_demo", lambda **kwargs: seen.update(kwargs) or 0)
    path = write(tmp_path, GOOD)
    assert main(["demo", "--config", str(path), "--no-serve", "--log-format", "json"]) == 0
    assert seen["config_path"] == path and seen["log_format"] == "json"
    monkeypatch.delenv("AZAGUARD_LOG_FORMAT", raising=False)
    assert main(["demo", "--no-serve"]) == 0
    assert seen["config_path"] is None and seen["log_format"] is None  # the config's log_format: text


def test_serve_refuses_a_bad_configuration_in_sentences_and_a_missing_session_key(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "azaguard.cli", "serve", "--config",
                          str(write(tmp_path, {**GOOD, "scopes": "x"}))], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "config check" in run.stderr
    data = {**GOOD, "session_store": "database", "session_key_env": "T_NO_SUCH_KEY_VAR"}
    code = main(["config", "check", "--config", str(write(tmp_path, data)), "--offline"])
    assert code == 2
    with pytest.MonkeyPatch.context() as env:
        env.setenv("T_NO_SUCH_KEY_VAR", "not-a-fernet-key")
        assert main(["config", "check", "--config", str(write(tmp_path, data)), "--offline"]) == 2


def test_a_mistyped_session_store_url_is_refused_without_repeating_its_password() -> None:
    from azaguard.config import valid_store_url

    with pytest.raises(ValueError, match="session_store") as refused:
        valid_store_url("redis:/:s3cret-pw@cache.example:6379/0")  # one slash short
    assert "s3cret-pw" not in str(refused.value)
    assert valid_store_url("redis://:s3cret-pw@cache.example:6379/0").startswith("redis://")
