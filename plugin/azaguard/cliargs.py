"""Argument types for the command line: each refuses a malformed value with one sentence.

argparse turns the ArgumentTypeError into `azaguard: error: argument --x: <sentence>` and exit 2,
so a wrong URL, date, path, id or number never reaches the code that would trip over it. Values are
returned as given (strings, Paths): the commands keep reading them as before. Light to import: the
CLI builds its parser on every run.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from azaguard.errors import InputError
from azaguard.fhirtypes import dates

FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id syntax
_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")
_TOKEN = re.compile(r"[\x21-\x7e]{1,255}")  # printable ASCII, no spaces: client ids, key ids


def _show(text: str) -> str:
    """The value as quoted back: short, without control characters."""
    shown = "".join(c if c.isprintable() else "?" for c in text[:80])
    return repr(shown + ("…" if len(text) > 80 else ""))


def _bad(text: str, what: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(f"{_show(text)} is not {what}")


def iso_datetime(text: str) -> str:
    """An ISO-8601 date or date-time within fhirtypes.dates.SUPPORTED (the command reads it with dates.moment)."""
    try:
        dates.moment(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(f"{_show(text)} is {exc}") from exc
    return text


def http_url(text: str) -> str:
    """An absolute http(s) URL with a host (and a valid port, if any)."""
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise _bad(text, "an http(s) URL") from exc
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or len(text) > 2000
        or any(c.isspace() or not c.isprintable() for c in text)
    ):
        raise _bad(text, "an http(s) URL (e.g. https://fhir.example.org/r4)")
    return text


def fhir_id(text: str) -> str:
    if not FHIR_ID.fullmatch(text):
        raise _bad(text, "a FHIR id (1-64 letters, digits, '-' or '.')")
    return text


def token(text: str) -> str:
    if not _TOKEN.fullmatch(text):
        raise _bad(text, "an identifier (1-255 printable characters, no spaces)")
    return text


def host(text: str) -> str:
    """An IP address or a DNS host name."""
    try:
        ipaddress.ip_address(text)
        return text
    except ValueError:
        pass
    labels = text.rstrip(".").split(".")
    if not text or len(text) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels) or labels[-1].isdigit():
        raise _bad(text, "a host name or IP address")
    return text


def schedule_name(text: str) -> str:
    """A monitoring schedule's name (which names exist is the mappings' to say)."""
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,39}", text):
        raise _bad(text, "a monitoring schedule name (us-label, bsr-2017, eu-smpc)")
    return text


def number(low: int, high: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text) if len(text) <= 12 else None
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise _bad(text, f"a whole number from {low} to {high}")
        return value

    parse.__name__ = "number"
    return parse


port = number(1, 65535)
port_or_any = number(0, 65535)


def existing_file(text: str) -> Path:
    path = Path(text)
    if not path.is_file():
        raise argparse.ArgumentTypeError(
            f"{_show(text)} is not a readable file"
            + (" (it is a folder)" if path.is_dir() else " (no such file)" if not path.exists() else "")
        )
    return path


def existing_dir(text: str) -> Path:
    path = Path(text)
    if not path.is_dir():
        raise argparse.ArgumentTypeError(
            f"{_show(text)} is not a folder" + ("" if path.exists() else " (no such folder)")
        )
    return path


def output_dir(text: str) -> Path:
    """A folder to write into: an existing folder, or one that can be made under an existing folder."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{_show(text)} exists and is not a folder")
    parent = path.absolute()
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"{_show(text)} cannot be a folder ({parent} is a file)")
    return path


def link_template(text: str) -> str:
    """A link to a patient in the app: an http(s) URL holding {id} and no other placeholder."""
    rest = text.replace("{id}", "")
    if "{id}" not in text or "{" in rest or "}" in rest:
        raise argparse.ArgumentTypeError(f"{_show(text)} must hold {{id}} (the patient id) and no other {{...}}")
    http_url(text.replace("{id}", "x"))
    return text


def database_url(text: str) -> str:
    """A SQLAlchemy database URL whose driver is installed."""
    # SQLAlchemy only when --database is given: the CLI builds its parser on every run.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        make_url(text).get_dialect()
    except (ArgumentError, NoSuchModuleError, ValueError, ImportError) as exc:
        raise _bad(text, "a database URL with an installed driver (e.g. sqlite:///feedback.db)") from exc
    return text


def scheduler_address(text: str) -> str:
    """A Dask scheduler address: [tcp|tls|ws|wss|inproc|ucx://]host:port."""
    address = text.split("://", 1)[1] if "://" in text else text
    scheme = text.split("://", 1)[0] if "://" in text else "tcp"
    hostpart, _, portpart = address.rpartition(":")
    if scheme not in ("tcp", "tls", "ws", "wss", "inproc", "ucx") or not hostpart or not portpart.isdigit():
        raise _bad(text, "a Dask scheduler address (tcp://host:port)")
    try:
        host(hostpart.strip("[]"))
        port(portpart)
    except argparse.ArgumentTypeError as exc:
        raise _bad(text, "a Dask scheduler address (tcp://host:port)") from exc
    return text
