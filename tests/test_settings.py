"""The environment is read in one place: settings.py. Everything else takes a Settings (built by the entry point)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

from azaguard.cliopts import cache_dir
from azaguard.config import ConfigError, default_config_path, load_app_config
from azaguard.mappings import default_mappings_dir
from azaguard.ops.configdoc import ENVIRONMENT
from azaguard.ops.database import default_database_url
from azaguard.settings import VARIABLES, Settings

PACKAGE = Path(__file__).resolve().parents[1] / "plugin" / "azaguard"
REPO_CONFIG = PACKAGE.parents[1] / "smart_launch.json"
# Not configuration: the sandbox server passes the environment on to its child (scrubbed), and sekmet's launcher
# runs inside sekmet's own virtual environment; the CLI sets PYDANTIC_DISABLE_PLUGINS before pydantic loads.
NOT_SETTINGS = {"sandbox/server.py", "sandbox/sekmet_launcher.py", "cli/__init__.py"}


def _environment_reads(path: Path) -> list[str]:
    """`os.environ` and `os.getenv` uses in a module, as 'line: text'."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os" and \
                node.attr in ("environ", "getenv", "environb"):
            found.append(f"{node.lineno}: {ast.unparse(node)}")
    return found


def test_only_settings_reads_the_environment() -> None:
    readers = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative == "settings.py":
            continue
        reads = _environment_reads(path)
        if reads and relative not in NOT_SETTINGS:
            readers[relative] = reads
    assert readers == {}, "read the environment through azaguard.settings.Settings"


def test_the_cli_only_sets_the_pydantic_switch() -> None:
    source = (PACKAGE / "cli" / "__init__.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Attribute) and ast.unparse(n).startswith("os.environ")]
    uses = {ast.unparse(n) for n in calls}
    assert uses <= {"os.environ", "os.environ.setdefault"}
    assert source.count("os.environ") == 1 and "os.environ.setdefault(\"PYDANTIC_DISABLE_PLUGINS\"" in source


def test_each_variable_is_typed_from_one_snapshot(tmp_path: Path) -> None:
    settings = Settings.from_environ({
        "AZAGUARD_SMART_CONFIG": str(tmp_path / "c.json"), "AZAGUARD_CDS_DATABASE_URL": "sqlite:///x.db",
        "AZAGUARD_FHIR_TOKEN": "tok", "AZAGUARD_TERMINOLOGY_SERVER": "https://tx.example/fhir",
        "AZAGUARD_MAPPINGS": str(tmp_path / "m"), "AZAGUARD_SANDBOX_HOME": str(tmp_path / "sb"),
        "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "AZAGUARD_LOG_FORMAT": "", "OTHER": "x",
    })
    assert default_config_path(settings) == tmp_path / "c.json"
    assert default_database_url(settings) == "sqlite:///x.db"
    assert default_mappings_dir(settings) == tmp_path / "m"
    assert cache_dir(settings) == tmp_path / "cache" / "azaguard"
    assert settings.fhir_token == "tok" and "tok" not in repr(settings)
    assert settings.log_format is None  # empty: unset
    assert settings.named("OTHER") == "x" and settings.named("MISSING") is None
    state = Settings.from_environ({"XDG_STATE_HOME": str(tmp_path / "state")})
    assert default_database_url(state) == f"sqlite:///{tmp_path / 'state' / 'azaguard' / 'cds.sqlite'}"


def test_the_config_reads_its_secrets_and_overrides_from_the_settings_it_was_loaded_with(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = json.loads(REPO_CONFIG.read_text())
    data.update(client_type="confidential-symmetric", client_secret_env="T_SETTINGS_SECRET")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("T_SETTINGS_SECRET", "from-the-process")
    with pytest.raises(ConfigError, match="T_SETTINGS_SECRET"):
        load_app_config(path, settings=Settings.from_environ({}))
    settings = Settings.from_environ({"T_SETTINGS_SECRET": "from-the-entry-point", "AZAGUARD_LOG_FORMAT": "json"})
    config = load_app_config(path, settings=settings)
    monkeypatch.setenv("T_SETTINGS_SECRET", "changed-later")
    assert config.client_secret() == "from-the-entry-point"  # the snapshot, not the process's later state
    assert config.model_copy(update={"allowed_iss": ("http://127.0.0.1:1/fhir",)}).client_secret() == (
        "from-the-entry-point")
    assert config.log_format == "json"


def test_the_documented_variables_are_the_settings_list() -> None:
    assert ENVIRONMENT is VARIABLES
    names = {v for k, v in vars(__import__("azaguard.settings").settings).items() if k.isupper() and
             isinstance(v, str) and (v.startswith("AZAGUARD_") or v.startswith("XDG_"))}
    assert names <= set(VARIABLES) | {"AZAGUARD_LOG_FORMAT", "AZAGUARD_LOG_LEVEL", "AZAGUARD_LOG_PATIENT_IDS"}
