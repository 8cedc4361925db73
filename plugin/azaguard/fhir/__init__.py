"""Talking to FHIR servers: the pooled client, its error tree, and gathering one patient's record."""

from __future__ import annotations

from azaguard.fhir.client import BatchResult, FhirClient, WriteResult
from azaguard.fhir.errors import (
    AuthDenied,
    AuthExpired,
    FhirConflict,
    FhirError,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
    FhirUnavailable,
)
from azaguard.fhir.gather import Gathered, gather

__all__ = [
    "AuthDenied",
    "AuthExpired",
    "BatchResult",
    "FhirClient",
    "FhirConflict",
    "FhirError",
    "FhirNotFound",
    "FhirProtocolError",
    "FhirRejected",
    "FhirUnavailable",
    "Gathered",
    "WriteResult",
    "gather",
]
