"""The sandbox EHR launch simulator: SMART authorization server, token-checking FHIR proxy, launcher page."""

from __future__ import annotations

from azaguard.sandbox.ehr.app import create_ehr_app

__all__ = ["create_ehr_app"]
