"""Loading a test's resources into the real local FHIR server (sekmet-fhir, the `fhir_server` fixture): one
transaction of PUTs with the test's own ids, so each test module sets up its patients the same way."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from azaguard.fhir import FhirClient


def put(client: FhirClient, resources: Iterable[dict[str, Any]]) -> None:
    """Every resource written under its own id (update-as-create), in one transaction that must succeed."""
    results = client.transaction([{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
                                  for r in resources])
    assert all(r.ok for r in results), [(r.status, r.outcome) for r in results if not r.ok]


@contextmanager
def loaded(fhir_server: Any, resources: Iterable[dict[str, Any]] = ()) -> Iterator[FhirClient]:
    """A client of the test server (two retries), the resources already on it."""
    with FhirClient(fhir_server.base_url, max_retries=2) as client:
        put(client, resources)
        yield client
