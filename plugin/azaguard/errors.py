"""One exception tree: what went wrong, and how each way out reports it.

    AzaguardError              exit 1, HTTP 500: a failure with nothing more specific to say
    ├── InputError             exit 2, HTTP 400: what we were given is unusable (a file, a value, a request)
    │   └── FhirDataError      an element of a FHIR resource is not valid FHIR R4 (a reader's data error)
    ├── ConfigError            exit 2, HTTP 500: the site's configuration (smart_launch.json, settings)
    ├── KnowledgeError         exit 2, HTTP 500: the clinical knowledge (mappings/) is missing or invalid
    ├── FhirError              exit 3, HTTP 502: a FHIR server failed or refused (its tree: fhir/errors.py)
    └── AuthError              exit 3, HTTP 401: an authorisation step failed (discovery, token, backend)

Each class carries its exit code and HTTP status; the CLI (`exit_code`) and the web services
(`http_status`) read them here and nowhere else. Subclasses near their raisers (a FHIR server's
statuses, a CDS request's 400/412) narrow the status, never the tree. Nothing here subclasses
ValueError: a data error and a programming error are told apart by class, never by accident.
"""

from __future__ import annotations

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
# takes a crash for an answer about the patient or their record. Documented with the others (README, cli.py).
INTERNAL_EXIT = 1


def describe(exc: BaseException) -> str:
    """The failure as a command says it on one line (after "azaguard: ")."""
    if isinstance(exc, AzaguardError):
        return f"{exc.what}{exc}"
    return f"internal error ({type(exc).__name__}): nothing was evaluated; the traceback is logged"


def exit_code(exc: BaseException) -> int:
    """The CLI's exit code for a failure (2 for usage, as argparse; INTERNAL_EXIT for anything unforeseen)."""
    return exc.exit_code if isinstance(exc, AzaguardError) else INTERNAL_EXIT


def http_status(exc: BaseException) -> int:
    """The HTTP status a web service answers for a failure."""
    return exc.http_status if isinstance(exc, AzaguardError) else 500


def http_body(exc: BaseException) -> dict[str, str]:
    """The JSON body a web service answers for a failure: a short code and the message (never a traceback)."""
    if isinstance(exc, AzaguardError):
        return {"error": exc.http_error, "message": str(exc)}
    return {"error": "internal-error", "message": "internal error"}
