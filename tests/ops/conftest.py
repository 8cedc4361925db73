"""Real Redis and PostgreSQL, started once per test session (only when a test asks for them)."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.ops import services


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    services.ensure_installed()
    with tempfile.TemporaryDirectory(prefix="azaguard-redis-") as work, services.redis_server(Path(work)) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    services.ensure_installed()
    with tempfile.TemporaryDirectory(prefix="azaguard-pg-") as work, services.postgres_server(Path(work)) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The service's database, as SQLite and as PostgreSQL (each test runs on both)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'azaguard.sqlite'}"
    return fresh_database(request.getfixturevalue("postgres_url"))


def fresh_database(server: str) -> str:
    """A new, empty database on the session's PostgreSQL cluster (each test its own)."""
    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server.replace("postgresql+psycopg", "postgresql"), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    return server.rsplit("/", 1)[0] + "/" + name
