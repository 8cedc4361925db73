"""Shared by the hardening tests: one synthetic patient under a fresh id, and what is in its chart."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from azaguard.alerts import ALERT_ID_SYSTEM, FLAG_ID_SYSTEM
from azaguard.fhir.client import FhirClient
from azaguard.sandbox.patients import build_patients

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOLD_SCENARIO = "aza-febrile-c"  # infection hold: a DetectedIssue and an active Flag


def load_patient(base_url: str, new_id: str, scenario: str = HOLD_SCENARIO) -> None:
    """The synthetic `scenario` patient loaded under `new_id` (every id rewritten), with PUTs."""
    patient = next(p for p in build_patients(NOW) if p.id == scenario)
    resources = json.loads(json.dumps(patient.resources).replace(scenario, new_id))
    entries = [{"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
               for r in resources]
    with FhirClient(base_url) as client:
        client.transaction(entries)


def _ident(resource: dict[str, Any], system: str) -> str | None:
    return next((i["value"] for i in resource.get("identifier") or [] if i.get("system") == system), None)


def chart_alerts(base_url: str, patient_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    with FhirClient(base_url) as client:
        issues = client.search("DetectedIssue", {"patient": f"Patient/{patient_id}", "_count": "200"})
        flags = client.search("Flag", {"patient": f"Patient/{patient_id}", "_count": "200"})
    return issues, flags


def live_counts(base_url: str, patient_id: str) -> tuple[Counter[str], Counter[str]]:
    """How many live (not entered-in-error) DetectedIssues per alert identifier and active Flags per
    Flag identifier the patient's chart holds."""
    issues, flags = chart_alerts(base_url, patient_id)
    di = Counter(_ident(r, ALERT_ID_SYSTEM) or "?" for r in issues if r.get("status") != "entered-in-error")
    fl = Counter(_ident(r, FLAG_ID_SYSTEM) or "?" for r in flags if r.get("status") == "active")
    return di, fl
