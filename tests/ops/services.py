"""Throwaway Redis and PostgreSQL for the tests: Debian's binaries (scripts/ensure-services installs
them), each on a free port under a temporary directory, stopped at the end of the session."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def ensure_installed() -> None:
    subprocess.run(["bash", str(REPO / "scripts" / "ensure-services")], check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _as_postgres(argv: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root (CI runs as root): run it as the packaged 'postgres' user then.
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@contextmanager
def postgres_server(workdir: Path) -> Iterator[str]:
    bindir = Path(sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1])
    data = workdir / "pgdata"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(workdir, "postgres")
        shutil.chown(data, "postgres")
    port = free_port()
    subprocess.run(_as_postgres([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "azaguard",
                                 "--no-sync"]), check=True, capture_output=True)
    log = workdir / "pg.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres")
    subprocess.run(_as_postgres([
        str(bindir / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start",
        "-o", f"-p {port} -k {workdir} -c listen_addresses=127.0.0.1 -c fsync=off",
    ]), check=True, capture_output=True)
    try:
        yield f"postgresql+psycopg://azaguard@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(_as_postgres([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                       capture_output=True)
