"""A sandbox site (EHR simulator + azaguard) on a free port, with both clocks in the test's hands:
the simulator's (token expiry) and the app's (refresh decisions), so expiry is crossed without waiting."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from azaguard.config import load_app_config
from azaguard.mappings import load_mappings
from azaguard.sandbox.site import create_site
from tests.browser.servers import Late, ThreadedServer


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
        late = Late()
        self.server = ThreadedServer(late)
        self.base = self.server.base
        self.clocks = Clocks(start)
        self.site = create_site(
            fhir_upstream=upstream, public_base=self.base, app_config=load_app_config(public_base=self.base),
            mappings=load_mappings(), clock=self.clocks.sim, now=self.clocks.app, **options,
        )
        late.app = self.site
        self.server.start()

    @property
    def ehr(self) -> Any:
        return self.site.state.ehr

    def close(self) -> None:
        self.server.stop()
