"""What can go wrong talking to a FHIR server, named by what the caller should do.

    FhirError                  base: status, outcome (the server's own words), url
    ├── FhirUnavailable        temporary (timeouts, connection errors, 429/502/503/504): retry later
    ├── FhirRejected           the server refused the request (4xx): do not retry as is
    │   ├── FhirNotFound       404/410
    │   └── FhirConflict       409/412 (version clash, several matches for a conditional create)
    ├── AuthExpired            401: refresh the token or launch again
    ├── AuthDenied             403: the token lacks the scope or the patient; retrying will not help
    └── FhirProtocolError      the answer is not usable FHIR (bad JSON, not a Bundle, paging loop)

Messages are written for hospital IT and never contain tokens or request bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from azaguard.errors import AzaguardError

# Statuses a server uses for "busy or briefly down": safe to retry an idempotent request.
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


class FhirError(AzaguardError):
    """Any failure of a FHIR interaction: exit 3, HTTP 502 (the server behind us failed)."""

    exit_code = 3
    http_status = 502
    http_error = "fhir-server-error"
    what = "FHIR server error: "

    def __init__(
        self, message: str, *, status: int | None = None, outcome: str | None = None, url: str | None = None
    ) -> None:
        self.message = message
        self.status = status
        self.outcome = outcome
        self.url = url
        super().__init__(message)

    def __str__(self) -> str:
        text = self.message
        if self.status is not None:
            text += f" (HTTP {self.status})"
        if self.outcome:
            text += f": {self.outcome}"
        return text


class FhirUnavailable(FhirError):
    """The server did not answer usefully for now; the same request may work later."""


class FhirRejected(FhirError):
    """The server refused the request; sending it again unchanged will fail again."""


class FhirNotFound(FhirRejected):
    """The resource does not exist (404) or was deleted (410)."""


class FhirConflict(FhirRejected):
    """A version conflict (409, 412 on If-Match) or an ambiguous conditional create (412)."""


class AuthExpired(FhirError):
    """401: the access token is missing, invalid or expired."""

    http_status = 401
    http_error = "unauthorized"


class AuthDenied(FhirError):
    """403: the token is valid but does not allow this (scope, patient, policy)."""

    http_status = 403
    http_error = "forbidden"


class FhirProtocolError(FhirError):
    """The server's answer does not follow the FHIR REST protocol closely enough to use."""


def error_for_status(
    status: int, action: str, *, outcome: str | None = None, url: str | None = None
) -> FhirError:
    """The exception for an HTTP error status; `action` names what was attempted ("GET Patient/1")."""
    cls: type[FhirError]
    if status == 401:
        cls, message = AuthExpired, f"the FHIR server did not accept the access token for {action}"
    elif status == 403:
        cls, message = AuthDenied, f"the access token does not allow {action} (scope or patient)"
    elif status in (404, 410):
        cls, message = FhirNotFound, f"{action}: not found on the FHIR server"
    elif status in (409, 412):
        cls, message = FhirConflict, f"{action}: conflicts with what is on the FHIR server"
    elif status in RETRYABLE_STATUSES:
        cls, message = FhirUnavailable, f"the FHIR server is busy or down for {action}; try again later"
    elif 400 <= status < 500:
        cls, message = FhirRejected, f"the FHIR server rejected {action}"
    else:  # 500, 501, an unexpected 3xx: a server fault, not known to be temporary
        cls, message = FhirError, f"the FHIR server failed on {action}"
    return cls(message, status=status, outcome=outcome, url=url)


def outcome_text(body: object) -> str | None:
    """The human text of an OperationOutcome (diagnostics, else details.text, else the code)."""
    if not isinstance(body, Mapping) or body.get("resourceType") != "OperationOutcome":
        return None
    issues: Any = body.get("issue")
    if not isinstance(issues, list):
        return None
    texts: list[str] = []
    for issue in issues:
        if not isinstance(issue, Mapping):
            continue
        details = issue.get("details")
        text = issue.get("diagnostics") or (details.get("text") if isinstance(details, Mapping) else None)
        text = text or issue.get("code")
        if isinstance(text, str) and text:
            texts.append(text)
    return "; ".join(texts) or None
