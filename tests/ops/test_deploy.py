"""deploy/: what can be validated here (no container runtime): the compose file's services, the
container recipe's essentials, the systemd unit through systemd-analyze when it is installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from azaguard.config import AppConfig

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def test_compose_file_runs_two_replicas_postgres_redis_and_a_proxy() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"azaguard-1", "azaguard-2", "proxy", "postgres", "redis"}
    for name in ("azaguard-1", "azaguard-2"):
        replica = services[name]
        assert replica["build"]["dockerfile"] == "deploy/Containerfile"
        assert set(replica["depends_on"]) == {"postgres", "redis"}
        assert "./azaguard.json:/etc/azaguard/azaguard.json:ro" in replica["volumes"]
    assert services["postgres"]["healthcheck"] and services["redis"]["healthcheck"]
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert "azaguard-1:8400 azaguard-2:8400" in caddy and "health_uri /readyz" in caddy
    # The configuration the replicas mount names the compose services.
    config = AppConfig.model_validate(json.loads((DEPLOY / "azaguard.json").read_text()))
    assert config.session_store == "redis://redis:6379/0" and "@postgres:5432/" in (config.cds_database_url or "")


def test_container_recipe_installs_the_wheel_runs_as_non_root_with_a_health_check() -> None:
    recipe = (DEPLOY / "Containerfile").read_text()
    assert "python -m build --wheel" in recipe and "azaguard-*.whl)[postgres]" in recipe
    users = [line.split()[1] for line in recipe.splitlines() if line.startswith("USER ")]
    assert users == ["azaguard"]
    assert "HEALTHCHECK" in recipe and "/healthz" in recipe


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "azaguard"
    unit = (DEPLOY / "azaguard.service").read_text().replace("/opt/azaguard/bin/azaguard", str(executable))
    path = tmp_path / "azaguard.service"
    path.write_text(unit)
    run = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stderr.strip() == "", run.stderr
