"""What azaguard learnt about a FHIR server, so the next patient does not pay to learn it again.

Reading a patient tries one batch first and falls back to concurrent searches when the server
refuses batch; a refusal is remembered here (per base URL) so later reads go straight to the
fallback. Nothing is learnt from the CapabilityStatement: fetching it (hundreds of kB on some
servers) costs more than the one refused batch it could save.

The process keeps one memory for every client (the app, a scan); the CLI, a new process per
patient, also keeps it on disk for a short while. Entries expire so that a server that gains
batch is noticed.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_TTL_S = 15 * 60.0
CACHE_FILE = "fhir-servers.json"


class ServerMemory:
    """Base URLs whose servers refused a batch, each with when that was learnt."""

    def __init__(
        self, path: Path | None = None, *, ttl: float = DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        self.path = path
        self.ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._refused: dict[str, float] = {}
        self._loaded = path is None

    def batch_refused(self, base_url: str) -> bool:
        with self._lock:
            self._load()
            when = self._refused.get(_key(base_url))
            return when is not None and self._clock() - when < self.ttl

    def remember_batch_refused(self, base_url: str) -> None:
        with self._lock:
            self._load()
            self._refused[_key(base_url)] = self._clock()
            self._save()

    def forget(self, base_url: str) -> None:
        with self._lock:
            self._load()
            if self._refused.pop(_key(base_url), None) is not None:
                self._save()

    # -- disk: best effort; a cache that cannot be read or written only costs a round trip --

    def _load(self) -> None:
        if self._loaded or self.path is None:
            return
        self._loaded = True
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        refused = data.get("batch_refused") if isinstance(data, dict) else None
        if isinstance(refused, dict):
            now = self._clock()
            self._refused.update(
                {k: float(v) for k, v in refused.items() if isinstance(v, int | float) and now - v < self.ttl}
            )

    def _save(self) -> None:
        if self.path is None:
            return
        now = self._clock()
        live = {k: v for k, v in self._refused.items() if now - v < self.ttl}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps({"batch_refused": live}), encoding="utf-8")
            tmp.replace(self.path)  # atomic: a concurrent CLI reads the old or the new file, never half
        except OSError:
            pass


def _key(base_url: str) -> str:
    return base_url.rstrip("/")


# The memory shared by every client of this process.
PROCESS_MEMORY = ServerMemory()
