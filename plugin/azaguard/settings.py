"""Every environment variable azaguard reads, read here and nowhere else.

`Settings.from_environ()` takes one snapshot of the environment; each entry point (the CLI's `main`, hence `check`,
`scan`, `serve`, `demo`, `feedback`, `audit`, `config check`) builds it once and hands it down. A library call made
without one (a test, an embedding program) builds its own at that call: the variables mean the same either way.
`VARIABLES` documents each one; docs/configuration.md is generated from it (ops/configdoc.py). The variables the
configuration file names itself (client_secret_env, session_key_env, metrics_token_env) are read through
`Settings.named`, from the same snapshot.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from msgspec import Struct, field

SMART_CONFIG = "AZAGUARD_SMART_CONFIG"
CDS_DATABASE_URL = "AZAGUARD_CDS_DATABASE_URL"
FHIR_TOKEN = "AZAGUARD_FHIR_TOKEN"  # noqa: S105 - the variable's name, not a secret
TERMINOLOGY_SERVER = "AZAGUARD_TERMINOLOGY_SERVER"
MAPPINGS = "AZAGUARD_MAPPINGS"
SANDBOX_HOME = "AZAGUARD_SANDBOX_HOME"
LOG_FORMAT = "AZAGUARD_LOG_FORMAT"
LOG_LEVEL = "AZAGUARD_LOG_LEVEL"
LOG_PATIENT_IDS = "AZAGUARD_LOG_PATIENT_IDS"
STATE_HOME = "XDG_STATE_HOME"
CACHE_HOME = "XDG_CACHE_HOME"

# Every variable that changes behaviour, beside the configuration keys' own overrides (AppConfig's `env` extras:
# AZAGUARD_LOG_FORMAT, AZAGUARD_LOG_LEVEL, AZAGUARD_LOG_PATIENT_IDS, AZAGUARD_SESSION_STORE), with what it does.
VARIABLES = {
    SMART_CONFIG: "The configuration file `serve`, `feedback` and `audit` read when --config is not given "
                  "(default: smart_launch.json at the repository's top).",
    CDS_DATABASE_URL: "The database when cds_database_url is not set.",
    FHIR_TOKEN: "The bearer token `check --fhir-url` and `scan` send to the FHIR server.",
    TERMINOLOGY_SERVER: "A FHIR terminology server for codes the local value sets do not know (`check`, `scan`).",
    MAPPINGS: "Another mappings folder (code sets, thresholds) instead of the bundled one.",
    "AZAGUARD_METRICS_TOKEN": "The name deploy/ uses for the /metrics bearer token (any name works: the file's "
                              "metrics_token_env names it).",
    "AZAGUARD_SESSION_KEY": "The name deploy/ uses for the session encryption key(s) (the file's "
                            "session_key_env names it).",
    SANDBOX_HOME: "Where the sandbox FHIR server (sekmet-fhir) is installed (default ~/.cache/azaguard/sandbox).",
    STATE_HOME: "Base of the default SQLite database (~/.local/state).",
    CACHE_HOME: "Base of the CLI's caches: validated mappings, FHIR server memory (~/.cache).",
    "PYDANTIC_DISABLE_PLUGINS": "Set to __all__ by the CLI unless already set (no pydantic plugins are used).",
}


class Settings(Struct, frozen=True, kw_only=True):
    """The environment's say, typed: None where a variable is unset or empty."""

    smart_config: Path | None = None
    cds_database_url: str | None = None
    fhir_token: str | None = None  # never shown (__repr__)
    terminology_server: str | None = None
    mappings_dir: Path | None = None
    sandbox_home: Path | None = None
    log_format: str | None = None
    log_level: str | None = None
    log_patient_ids: str | None = None
    state_home: Path = field(default_factory=lambda: Path.home() / ".local" / "state")
    cache_home: Path = field(default_factory=lambda: Path.home() / ".cache")
    # The whole snapshot, for the variables the configuration file names (secrets: never shown).
    environ: Mapping[str, str] = field(default_factory=dict)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__struct_fields__
                          if name not in ("fhir_token", "environ"))
        return f"Settings({shown})"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)

        def text(name: str) -> str | None:
            return env.get(name) or None

        def path(name: str) -> Path | None:
            value = text(name)
            return Path(value).expanduser() if value else None

        home = Path.home()
        return cls(
            smart_config=path(SMART_CONFIG), cds_database_url=text(CDS_DATABASE_URL), fhir_token=text(FHIR_TOKEN),
            terminology_server=text(TERMINOLOGY_SERVER), mappings_dir=path(MAPPINGS), sandbox_home=path(SANDBOX_HOME),
            log_format=text(LOG_FORMAT), log_level=text(LOG_LEVEL), log_patient_ids=text(LOG_PATIENT_IDS),
            state_home=path(STATE_HOME) or home / ".local" / "state", cache_home=path(CACHE_HOME) or home / ".cache",
            environ=env,
        )

    def named(self, variable: str) -> str | None:
        """A variable the configuration names (client_secret_env, session_key_env, metrics_token_env)."""
        return self.environ.get(variable) or None


def current(settings: Settings | None) -> Settings:
    """`settings` as given by the entry point, or, for a library call made without one, the environment now."""
    return settings if settings is not None else Settings.from_environ()
