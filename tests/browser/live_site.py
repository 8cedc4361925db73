"""A sandbox site (EHR simulator + azaguard) on a free port, with both clocks in the test's hands:
the simulator's (token expiry) and the app's (refresh decisions), so expiry is crossed without waiting."""

from __future__ import annotations

import socket
import threading
import time
from datetime import datetime, timedelta
from typing import Any

import uvicorn

from azaguard.config import load_app_config
from azaguard.mappings import load_mappings
from azaguard.sandbox.site import create_site


class Clocks:
    def __init__(self, start: datetime) -> None:
        self.now = start

    def app(self) -> datetime:
        return self.now

    def sim(self) -> float:
        return self.now.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class LiveSite:
    def __init__(self, upstream: str, start: datetime, **options: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.base = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.clocks = Clocks(start)
        self.site = create_site(
            fhir_upstream=upstream, public_base=self.base, app_config=load_app_config(public_base=self.base),
            mappings=load_mappings(), clock=self.clocks.sim, now=self.clocks.app, **options,
        )
        self.server = uvicorn.Server(uvicorn.Config(self.site, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:  # bounded wait for the socket
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the sandbox site did not start")
            time.sleep(0.02)

    @property
    def ehr(self) -> Any:
        return self.site.state.ehr

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
