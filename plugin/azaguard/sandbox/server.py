"""The local FHIR R4 server for tests and the sandbox: sekmet-fhir in its own virtual environment.

sekmet-fhir pins its own fhir.resources, FastAPI and uvicorn, so it lives in a separate venv
under `home` (installed on first use) and runs as a subprocess through `sekmet_launcher.py`,
which adds the DetectedIssue/Flag search parameters azaguard's write-back relies on.
See docs in shared/fhir-test-server.md for what the server does and does not do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import venv
import weakref
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx
import yaml

from azaguard.errors import AzaguardError
from azaguard.settings import SANDBOX_HOME, Settings, current

SEKMET_VERSION = "0.1.1"
HOME_ENV = SANDBOX_HOME
LAUNCHER = Path(__file__).with_name("sekmet_launcher.py")
# Environment that would override our settings.yaml inside sekmet, or leak this venv into its own.
_SCRUBBED_ENV = ("SEKMET_CONFIG", "SEKMET_PORT", "SEKMET_DB", "SEKMET_BASE_URL", "SEKMET_PUBLIC_URL",
                 "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
_PORT_RETRIES = 3
_LOG_MAX_AGE_S = 7 * 24 * 3600


class SandboxError(AzaguardError):
    """The sandbox server could not be installed, started, or reset (the message says why)."""

    exit_code = 2  # a usage problem (ports taken, no install): choose other ports or install it


def default_home(settings: Settings | None = None) -> Path:
    return current(settings).sandbox_home or Path.home() / ".cache" / "azaguard" / "sandbox"


def _log(message: str) -> None:
    print(f"azaguard sandbox: {message}", file=sys.stderr, flush=True)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is free
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class SandboxServer:
    """One sekmet-fhir process on 127.0.0.1 with its own data directory."""

    def __init__(
        self,
        home: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        data_dir: Path | None = None,
    ) -> None:
        self.home = (home or default_home()).resolve()
        self.host = host
        self.requested_port = port
        self._data_dir = data_dir.resolve() if data_dir is not None else None
        self._data_lock: IO[bytes] | None = None
        self.venv_dir = self.home / f"sekmet-{SEKMET_VERSION}"
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._finalizer: weakref.finalize[..., SandboxServer] | None = None

    # --- paths and URLs ---

    @property
    def python(self) -> Path:
        return self.venv_dir / "bin" / "python"

    @property
    def sekmet(self) -> Path:
        return self.venv_dir / "bin" / "sekmet"

    @property
    def data_dir(self) -> Path:
        """The data folder: given, else one per port (two servers on different ports never share, nor reset,
        one folder; a server started on any free port gets the folder of the port it got)."""
        if self._data_dir is not None:
            return self._data_dir
        return self.home / "data" / f"port-{self._port or self.requested_port}"

    @property
    def settings_path(self) -> Path:
        return self.data_dir / "settings.yaml"

    @property
    def log_path(self) -> Path:
        return self.home / "logs" / f"sekmet-{self._port or self.requested_port}.log"

    @property
    def port(self) -> int:
        if self._port is None:
            raise SandboxError("the sandbox server has not been started (no port yet)")
        return self._port

    @property
    def root_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/fhir"

    @property
    def console_url(self) -> str:
        return f"{self.root_url}/ui"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    # --- installation ---

    def installed(self) -> bool:
        """The venv is complete: the marker is written only after pip succeeded."""
        marker = self.venv_dir / ".azaguard-installed"
        return marker.is_file() and self.sekmet.is_file() and marker.read_text().strip() == SEKMET_VERSION

    def ensure_installed(self) -> None:
        """Create the venv and install sekmet-fhir on first use; safe when processes race."""
        if self.installed():
            return
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / ".install.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be installing: wait for it
            if self.installed():
                return
            if self.venv_dir.exists():
                shutil.rmtree(self.venv_dir)  # a half-finished earlier attempt
            log = self.home / "install.log"
            _log(f"installing sekmet-fhir {SEKMET_VERSION} into {self.venv_dir} (about 30 s, once)")
            try:
                venv.EnvBuilder(with_pip=True, clear=True).create(self.venv_dir)
                with open(log, "wb") as out:
                    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
                        [str(self.python), "-m", "pip", "install", "--disable-pip-version-check",
                         f"sekmet-fhir=={SEKMET_VERSION}"],
                        stdout=out, stderr=subprocess.STDOUT, env=self._env(), check=False,
                    )
                if result.returncode != 0:
                    raise SandboxError(f"pip install sekmet-fhir=={SEKMET_VERSION} failed "
                                       f"(exit {result.returncode}); see {log}:\n{_tail(log)}")
                (self.venv_dir / ".azaguard-installed").write_text(SEKMET_VERSION + "\n")
            except BaseException:
                shutil.rmtree(self.venv_dir, ignore_errors=True)
                raise
            _log("sekmet-fhir installed")

    # --- lifecycle ---

    def start(self, timeout: float = 60) -> None:
        """Install if needed, start the server, and wait until GET /metadata answers."""
        if self.running:
            return
        self.ensure_installed()
        if self.requested_port and not _port_free(self.host, self.requested_port):
            # Checked first: otherwise another server's /metadata could pass for ours.
            raise SandboxError(f"port {self.requested_port} on {self.host} is already in use")
        for attempt in range(_PORT_RETRIES):
            self._port = self.requested_port or _free_port(self.host)
            self._write_settings()
            self._lock_data()
            self._spawn()
            try:
                self._wait_ready(timeout)
                _log(f"sekmet-fhir at {self.base_url} (console {self.console_url}, log {self.log_path})")
                return
            except SandboxError:
                exited = self._process is not None and self._process.poll() is not None
                self.stop()
                # A picked port can be taken between choosing it and binding it: pick another.
                if not (exited and self.requested_port == 0 and attempt + 1 < _PORT_RETRIES):
                    raise
        raise SandboxError("unreachable")  # pragma: no cover - the loop returns or raises

    def stop(self, timeout: float = 10) -> None:
        """Terminate the server (kill it if it does not exit within `timeout`)."""
        process, self._process = self._process, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if process is not None:
            _terminate(process, timeout)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._data_lock is not None:
            self._data_lock.close()  # releases the folder's lock
            self._data_lock = None

    def _lock_data(self) -> None:
        """Hold the data folder's lock while the server runs: a second server on it is refused."""
        if self._data_lock is not None:
            return
        fh = (self.data_dir / ".lock").open("wb")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            fh.close()
            raise SandboxError(f"the data folder {self.data_dir} is in use by another sandbox server") from exc
        self._data_lock = fh

    def reset(self) -> None:
        """Delete every resource, as `sekmet reset --yes` does; works while the server runs."""
        self._run_launcher("reset")

    def reindex(self) -> None:
        """Rebuild the search index (for data stored by a server without the added parameters)."""
        self._run_launcher("reindex")

    def __enter__(self) -> SandboxServer:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- internals ---

    def _run_launcher(self, command: str) -> None:
        self.ensure_installed()
        if self._port is None:
            self._port = self.requested_port or _free_port(self.host)
        self._write_settings()
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [str(self.python), str(LAUNCHER), command, "-c", str(self.settings_path)],
            cwd=self.data_dir, env=self._env(), capture_output=True, check=False, timeout=120,
        )
        if result.returncode != 0:
            raise SandboxError(f"sekmet {command} failed (exit {result.returncode}): "
                               f"{result.stderr.decode(errors='replace')[-2000:]}")

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV}
        env["PATH"] = f"{self.venv_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        return env

    def _write_settings(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        settings = {
            "base_url": self.base_url,
            "host": self.host,
            "port": self.port,
            "data_dir": str(self.data_dir),
            "own_private_key_path": str(self.data_dir / "keys" / "sekmet_private.pem"),
            # Off: the pharmacy simulator would write a MedicationDispense after every active order.
            "simulator": {"enabled": False},
            "server_auth": {"types": ["none"]},
        }
        self.settings_path.write_text(yaml.safe_dump(settings, sort_keys=False))

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # One log per port: drop week-old ones so the folder does not grow forever.
        for old in self.log_path.parent.glob("sekmet-*.log"):
            if time.time() - old.stat().st_mtime > _LOG_MAX_AGE_S:
                old.unlink(missing_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - kept open for the process' lifetime
        # Linux: the server dies with this process even on SIGKILL (only from the main thread,
        # because the signal fires when the spawning *thread* ends).
        main_thread = threading.current_thread() is threading.main_thread()
        die_with_parent = sys.platform.startswith("linux") and main_thread
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            [str(self.python), str(LAUNCHER), "serve", "-c", str(self.settings_path)],
            cwd=self.data_dir, env=self._env(), stdin=subprocess.DEVNULL,
            stdout=self._log_file, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if die_with_parent else None,
        )
        # Never leave an orphan at interpreter exit, even if stop() is not called
        # (weakref.finalize callbacks also run at exit).
        self._finalizer = weakref.finalize(self, _terminate, self._process, 5.0)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        url = f"{self.base_url}/metadata"
        with httpx.Client(timeout=2.0, trust_env=False) as client:
            while time.monotonic() < deadline:
                if self._process is None or self._process.poll() is not None:
                    code = None if self._process is None else self._process.returncode
                    raise SandboxError(f"sekmet-fhir exited (code {code}) before answering; "
                                       f"log {self.log_path}:\n{_tail(self.log_path)}")
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == 200:
                        return
                time.sleep(0.1)
        raise SandboxError(f"sekmet-fhir did not answer {url} within {timeout:g} s; "
                           f"log {self.log_path}:\n{_tail(self.log_path)}")


def _terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout)


def _die_with_parent() -> None:
    import ctypes  # Linux's prctl, asked only when starting the server process

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)

