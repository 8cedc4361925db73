"""One exception tree: what went wrong, and how each way out reports it.

    AzaguardError              exit 1, HTTP 500: a failure with nothing more specific to say
    ├── InputError             exit 2, HTTP 400: what we were given is unusable (a file, a value, a request)
    │   └── FhirDataError      an element of a FHIR resource is not valid FHIR R4 (a reader's data error)
    ├── ConfigError            exit 2, HTTP 500: the site's configuration (smart_launch.json, settings)
    ├── KnowledgeError         exit 2, HTTP 500: the clinical knowledge (mappings/) is missing or invalid
    ├── FhirError              exit 3, HTTP 502: a FHIR server failed or refused (its tree: fhir/errors.py)
    └── AuthError              exit 3, HTTP 401: an authorisation step failed (discovery: 502, token, backend)

Each class carries its exit code and HTTP status; the CLI (`exit_code`, in cli.main) and the web services
(`http_status`, in one exception handler per app) read them here and nowhere else. Subclasses near their
raisers (a FHIR server's statuses, a CDS request's 400/412) narrow the status, never the tree. Nothing here
subclasses ValueError: a data error and a programming error are told apart by class, never by accident.
"""

from __future__ import annotations

import logging
from typing import ClassVar


class AzaguardError(Exception):
    """Any failure azaguard itself reports."""

    exit_code: ClassVar[int] = 1
    http_status: ClassVar[int] = 500
    http_error: ClassVar[str] = "internal-error"  # the short code a JSON error body names
    what: ClassVar[str] = ""  # how a command's one line introduces the message ("FHIR server error: ")


class InputError(AzaguardError):
    """What we were given is unusable: a malformed file or value, a request that cannot be read."""

    exit_code = 2
    http_status = 400
    http_error = "bad-request"


class FhirDataError(InputError):
    """An element of a FHIR resource is not valid FHIR R4 JSON (raised by the readers: fhirview, fhirtypes)."""


class ConfigError(AzaguardError):
    """The site's configuration is missing, malformed, or names a secret that is not set."""

    exit_code = 2


class KnowledgeError(AzaguardError):
    """The clinical knowledge (the mappings folder) is missing or does not validate."""

    exit_code = 2


class AuthError(AzaguardError):
    """An authorisation step failed: SMART discovery, a token exchange, a backend-services grant."""

    exit_code = 3
    http_status = 401
    http_error = "unauthorized"
    what = "authorization failed: "


# A bug (any exception outside the tree): never 0 (evaluated) nor 2 (unusable input), so no script or clinician
# takes a crash for an answer about the patient or their record. Documented with the others (README, cli/__init__.py).
INTERNAL_EXIT = 1


def describe(exc: BaseException) -> str:
    """The failure as a command says it on one line (after "azaguard: ")."""
    if isinstance(exc, AzaguardError):
        return f"{exc.what}{exc}"
    return f"internal error ({type(exc).__name__}): nothing was evaluated; the traceback is logged"


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for a failure (2 for usage, as argparse; INTERNAL_EXIT for anything unforeseen)."""
    return exc.exit_code if isinstance(exc, AzaguardError) else INTERNAL_EXIT


# Every status a web service answers for a failure, with what it tells the caller (tests/web/test_one_way_out.py
# fails on a class whose status is not here).
STATUSES = {
    400: "the request cannot be read (a CDS call's body, its context, its prefetch)",
    401: "not authorised: the caller's token, or the user's session with the EHR, is missing, invalid or over",
    403: "the EHR refused access (scope, patient, policy); asking again will not help",
    412: "a CDS call whose data is neither in its prefetch nor fetchable in time",
    500: "azaguard failed (its configuration, its knowledge, or a bug): nothing was evaluated",
    502: "a server behind azaguard (the FHIR server, the EHR's authorization server) failed or gave unusable data",
}


def http_status(exc: BaseException, *, gateway: bool = False) -> int:
    """The HTTP status a web service answers for a failure. `gateway`: the service answers for data a server
    behind it gave (the SMART app reads the EHR's record), so data that cannot be read is that server's failure
    (502), never the caller's (400, 412)."""
    if not isinstance(exc, AzaguardError):
        return 500
    if gateway and isinstance(exc, InputError):
        return 502
    return exc.http_status


def log_failure(log: logging.Logger, event: str, exc: BaseException, status: int) -> None:
    """A failure a web service answered, in its log: azaguard's own 500s (configuration, knowledge) with their
    sentence for hospital IT (the page sends them here); the rest by class and status only (a FHIR error's sentence
    names the patient's resources); a bug with its traceback."""
    if not isinstance(exc, AzaguardError):
        log.error("%s: internal error", event, exc_info=exc)
    elif status >= 500 and status != 502:
        log.error(event, extra={"error": type(exc).__name__, "status": status, "detail": str(exc)})
    else:
        log.info(event, extra={"error": type(exc).__name__, "status": status})


def http_body(exc: BaseException) -> dict[str, str]:
    """The JSON body a web service answers for a failure: a short code and the message (never a traceback)."""
    if isinstance(exc, AzaguardError):
        return {"error": exc.http_error, "message": str(exc)}
    return {"error": "internal-error", "message": "internal error"}
