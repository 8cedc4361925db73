"""Shared fixtures. `fhir_server`: one real sekmet-fhir for the whole session. The first use on a fresh
machine installs sekmet-fhir into its own venv (about 30 s); set AZAGUARD_SANDBOX_HOME to choose where.

A test is marked by the fixtures it uses (directly or through others), so `make test-fast` (no server, no
browser: `-m "not integration and not browser and not services"`) needs no marking by hand: `fhir_server`
makes it `integration`, the browser fixtures `browser`, a real Redis or PostgreSQL `services`."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from azaguard.sandbox.server import SandboxServer


MARK_OF_FIXTURE = {
    "fhir_server": "integration",
    "playwright": "browser",
    "browser": "browser",
    "redis_url": "services",
    "postgres_url": "services",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, mark in MARK_OF_FIXTURE.items():
            if fixture in used:
                item.add_marker(mark)
        callspec = getattr(item, "callspec", None)  # a database chosen by parameter (tests/ops: database_url)
        if callspec is not None and callspec.params.get("database_url") == "postgresql":
            item.add_marker("services")


@pytest.fixture(scope="session", autouse=True)
def _own_state_dir() -> Iterator[None]:
    """The default database (CDS store, audit trail) in a temporary state directory, never the user's."""
    with tempfile.TemporaryDirectory(prefix="azaguard-state-") as state:
        previous = os.environ.get("XDG_STATE_HOME")
        os.environ["XDG_STATE_HOME"] = state
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("XDG_STATE_HOME", None)
            else:
                os.environ["XDG_STATE_HOME"] = previous


@pytest.fixture(scope="session")
def fhir_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxServer]:
    """A running, empty sekmet-fhir on 127.0.0.1 (free port, temporary data).

    Yields the SandboxServer: .base_url, .console_url, .reset()."""
    # Imported here so collecting tests never depends on the sandbox being usable.
    from azaguard.sandbox.server import SandboxError, SandboxServer

    server = SandboxServer(data_dir=tmp_path_factory.mktemp("sekmet-data"))
    try:
        server.start()
        server.reset()
    except (SandboxError, OSError) as exc:
        server.stop()
        raise RuntimeError(
            f"the local FHIR server (sekmet-fhir) could not be started for the integration tests: {exc}"
        ) from exc
    try:
        yield server
    finally:
        server.stop()
