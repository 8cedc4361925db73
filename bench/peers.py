"""How other FHIR clients read the same patient: the same GETs, each client in its usual style.

Every reader returns the set of "Type/id" it received (matches and includes, OperationOutcomes left
out), so the benchmark can check that every client read the same resources.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from azaguard.fhir.client import ConnectionPools, FhirClient
from azaguard.fhir.gather import Search, gather, plan_alert_searches, plan_searches
from azaguard.fhir.memory import ServerMemory
from azaguard.mappings import Mappings

Reader = Callable[[str], set[str]]


def all_searches(patient_id: str, m: Mappings, now: datetime) -> list[Search]:
    return plan_searches(patient_id, m, now) + plan_alert_searches(patient_id)


def _ids(resources: Any) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in resources if r["resourceType"] != "OperationOutcome"}


# --- azaguard -------------------------------------------------------------------------------------


class Azaguard:
    """This branch: one batch (record + existing alerts), no metadata; a refusal remembered."""

    def __init__(self, base_url: str, m: Mappings, now: datetime) -> None:
        self.base_url, self.m, self.now = base_url, m, now
        self.client = FhirClient(base_url)
        self.memory = ServerMemory()

    def read(self, patient_id: str, *, cold: bool) -> set[str]:
        if cold:
            self.close()
            self.client, self.memory = FhirClient(self.base_url), ServerMemory()
        got = gather(self.client, patient_id, self.m, self.now, memory=self.memory)
        return _ids(got.resources.resources) | _ids(got.alert_issues or []) | _ids(got.alert_flags or [])

    def close(self) -> None:
        self.client.close()


class AzaguardPooled(Azaguard):
    """The app and the CDS Hooks service: a new FhirClient (and memory) per read, over keep-alive
    connections the process shares (fhir.client.ConnectionPools; this peer's own, so no other row
    warms it). Only the first read of the run pays a connection; "cold" here means a cold client."""

    def __init__(self, base_url: str, m: Mappings, now: datetime) -> None:
        self.pools = ConnectionPools()
        super().__init__(base_url, m, now)
        self.client.close()
        self.client = FhirClient(base_url, pools=self.pools)

    def read(self, patient_id: str, *, cold: bool) -> set[str]:
        if cold:
            self.client.close()  # leaves the shared connections open
            self.client, self.memory = FhirClient(self.base_url, pools=self.pools), ServerMemory()
        return super().read(patient_id, cold=False)

    def close(self) -> None:
        super().close()
        self.pools.close()


class AzaguardBefore(Azaguard):
    """azaguard before this branch: GET metadata (once per client), the record batch, then the
    DetectedIssue and Flag searches of alerts.fetch_alert_resources one after the other
    (check_on_server's reads before, replayed; unfiltered so the resources compare)."""

    def read(self, patient_id: str, *, cold: bool) -> set[str]:
        if cold:
            self.close()
            self.client, self.memory = FhirClient(self.base_url), ServerMemory()
        self.client.supports_batch()
        got = gather(self.client, patient_id, self.m, self.now, alerts=False, memory=self.memory,
                     planned=before_searches(patient_id, self.m, self.now))
        issues = self.client.search("DetectedIssue", {"patient": f"Patient/{patient_id}", "_count": "200"})
        flags = self.client.search("Flag", {"patient": f"Patient/{patient_id}", "_count": "200"})
        return _ids(got.resources.resources) | _ids(issues) | _ids(flags)


def before_searches(patient_id: str, m: Mappings, now: datetime) -> list[Search]:
    """The record searches as azaguard sent them before issue 9: the lab search sorted newest first
    (`_sort=-date`, since dropped: every page is read and the record orders results itself)."""
    return [
        replace(s, params=(*s.params[:-1], ("_sort", "-date"), s.params[-1]))
        if s.label == "lab results and vital signs" and ("_sort", "-date") not in s.params else s
        for s in plan_searches(patient_id, m, now)
    ]


# --- fhirpy ---------------------------------------------------------------------------------------


class Fhirpy:
    """fhirpy's AsyncFHIRClient, every GET at once with asyncio.gather, pages followed."""

    def __init__(self, base_url: str, m: Mappings, now: datetime) -> None:
        from fhirpy import AsyncFHIRClient

        self._make = lambda: AsyncFHIRClient(base_url)
        self.base_url, self.m, self.now = base_url, m, now
        self.client = self._make()

    def read(self, patient_id: str, *, cold: bool) -> set[str]:
        if cold:
            self.client = self._make()
        return asyncio.run(self._read(patient_id))

    async def _read(self, patient_id: str) -> set[str]:
        client = self.client

        async def search(s: Search) -> set[str]:
            bundle = await client.execute(s.resource_type, method="get", params=dict(s.params))
            found = _ids(e["resource"] for e in bundle.get("entry", []))
            while (nxt := _next(bundle)) is not None:
                bundle = await client.execute(nxt, method="get")
                found |= _ids(e["resource"] for e in bundle.get("entry", []))
            return found

        patient, *found = await asyncio.gather(
            client.execute(f"Patient/{patient_id}", method="get"),
            *(search(s) for s in all_searches(patient_id, self.m, self.now)),
        )
        return {f"Patient/{patient['id']}"}.union(*found)

    def close(self) -> None:
        pass


# --- fhirclient -----------------------------------------------------------------------------------


class Fhirclient:
    """SMART's fhirclient: one search after the other, each page parsed into its R4 models."""

    def __init__(self, base_url: str, m: Mappings, now: datetime) -> None:
        self.base_url, self.m, self.now = base_url, m, now
        self.client = self._make()

    def _make(self) -> Any:
        from fhirclient import client

        return client.FHIRClient(settings={"app_id": "azaguard-bench", "api_base": self.base_url})

    def read(self, patient_id: str, *, cold: bool) -> set[str]:
        from fhirclient.models.bundle import Bundle
        from fhirclient.models.patient import Patient

        if cold:
            self.client = self._make()
        server = self.client.server
        found = {f"Patient/{Patient.read(patient_id, server).id}"}
        for s in all_searches(patient_id, self.m, self.now):
            bundle = Bundle.read_from(s.url, server)
            while True:
                found |= {f"{e.resource.resource_type}/{e.resource.id}" for e in bundle.entry or []
                          if e.resource.resource_type != "OperationOutcome"}  # fmt: skip
                nxt = next((lk.url for lk in bundle.link or [] if lk.relation == "next"), None)
                if nxt is None:
                    break
                bundle = Bundle.read_from(nxt.removeprefix(self.base_url + "/"), server)
        return found

    def close(self) -> None:
        pass


def _next(bundle: Any) -> str | None:
    for link in bundle.get("link", []):
        if link.get("relation") == "next":
            return str(link["url"])
    return None
