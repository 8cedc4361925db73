"""A check-in counts as saved only when each entry came back as the resource sent, under its id."""

from __future__ import annotations

from typing import Any

from azaguard.fhir.client import BatchResult
from azaguard.web.patient import stored_as_sent

ENTRIES: list[dict[str, Any]] = [
    {"resource": {"resourceType": "QuestionnaireResponse", "id": "azg-checkin-1"}},
    {"resource": {"resourceType": "Observation", "id": "azg-checkin-1-temp"}},
]


def _result(status: int, resource: dict[str, Any] | None) -> BatchResult:
    return BatchResult(status=status, resource=resource, outcome=None, location=None)


def test_saved_only_as_sent() -> None:
    same = [_result(201, e["resource"]) for e in ENTRIES]
    assert stored_as_sent(ENTRIES, same)
    assert stored_as_sent(ENTRIES, [_result(200, None), _result(201, None)])  # nothing returned: the status says
    assert not stored_as_sent(ENTRIES, [same[0], _result(422, None)])
    assert not stored_as_sent(ENTRIES, [same[0], _result(201, {"resourceType": "Observation", "id": "other"})])
    assert not stored_as_sent(ENTRIES, same[:1])
