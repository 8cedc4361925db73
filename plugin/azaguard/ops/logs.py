"""Logging set-up: one line per event on stderr, as readable text or JSON (python-json-logger).

Every line carries time, level, event (the message), the logger and, inside an HTTP request, its
request id; anything passed as `extra={...}` becomes a field. Secrets never reach a line: fields
named like a secret are replaced, and the finished line is scrubbed of JWTs, bearer tokens, private
keys and secret-bearing query parameters, whatever logger wrote it (ours, uvicorn's, a library's).
Patient identifiers go through `patient()`: plain, hashed or left out, as configured.
"""

from __future__ import annotations

import contextvars
import hashlib
import logging
import re
import signal
import sys
import time
from typing import Any, Literal, TextIO

LogFormat = Literal["text", "json"]
PatientIds = Literal["plain", "hashed", "none"]

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("azaguard_request_id", default=None)
_patient_ids: PatientIds = "hashed"

# Field names whose values are secrets, whatever they hold.
SECRET_FIELDS = frozenset({
    "authorization", "token", "access_token", "refresh_token", "id_token", "client_secret", "secret",
    "password", "private_key", "code", "code_verifier", "state", "jwt", "assertion", "client_assertion",
    "cookie", "set_cookie",
})  # fmt: skip
REDACTED = "[redacted]"
_SCRUB = [
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.S), "[private key]"),
    (re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.?[A-Za-z0-9_-]*"), "[jwt]"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+"), r"\1 [redacted]"),
    (re.compile(r"(?i)\b(code|state|access_token|refresh_token|id_token|client_secret|code_verifier|token"
                r"|client_assertion|launch)=[^&\s'\"\\]+"), r"\1=[redacted]"),
    (re.compile(r"(?i)(\\?\"(?:access_token|refresh_token|id_token|client_secret|code|code_verifier)\\?\"\s*:\s*)"
                r"\\?\"[^\"\\]*\\?\""), r'\1"[redacted]"'),
]  # fmt: skip
# LogRecord's own attributes: anything else on a record is a field someone passed in `extra`.
# (uvicorn adds `color_message`, its message with terminal colours: never a field.)
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "request_id", "color_message"}


def scrub(text: str) -> str:
    """The text with every secret pattern replaced."""
    for pattern, replacement in _SCRUB:
        text = pattern.sub(replacement, text)
    return text


def patient(patient_id: str | None) -> str | None:
    """A patient identifier as the logs may carry it (log_patient_ids: plain, hashed or none)."""
    if not patient_id or _patient_ids == "none":
        return None
    if _patient_ids == "plain":
        return patient_id
    return "sha256:" + hashlib.sha256(patient_id.encode()).hexdigest()[:16]


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class _Context(logging.Filter):
    """Adds the request id; replaces the values of fields named like secrets; scrubs the message and the
    string fields (before any formatter serialises them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        rid = request_id.get()
        if rid is not None:
            record.request_id = rid
        record.msg, record.args = scrub(record.getMessage()), None
        for key, value in fields_of(record).items():
            if key.lower() in SECRET_FIELDS:
                setattr(record, key, REDACTED)
            elif isinstance(value, str):
                setattr(record, key, scrub(value))
        return True


def _utc(created: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)) + f".{int(created % 1 * 1000):03d}Z"


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id] event key=value …`, scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        rid = getattr(record, "request_id", None)
        parts = [_utc(record.created), record.levelname, record.name]
        if rid:
            parts.append(f"[{rid}]")
        parts.append(record.getMessage())
        parts += [f"{k}={v}" for k, v in fields_of(record).items() if v is not None]
        line = " ".join(str(p) for p in parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return scrub(line)


def _scrub_any(text: str | list[str]) -> str | list[str]:
    return scrub(text) if isinstance(text, str) else [scrub(t) for t in text]


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter  # only JSON log lines need it (check logs none by default)

    class Json(JsonFormatter):
        def add_fields(
            self, log_record: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
        ) -> None:
            super().add_fields(log_record, record, message_dict)
            log_record["time"] = _utc(record.created)
            log_record.pop("color_message", None)

        def formatException(self, ei: Any) -> Any:
            return _scrub_any(super().formatException(ei))

        def formatStack(self, stack_info: str) -> Any:
            return _scrub_any(super().formatStack(stack_info))

    return Json(
        "%(levelname)s %(name)s %(message)s",
        rename_fields={"levelname": "level", "name": "logger", "message": "event"},
        json_ensure_ascii=False,
    )


_handler: logging.Handler | None = None


def configure(
    fmt: LogFormat = "text", *, level: str = "INFO", patient_ids: PatientIds = "hashed", stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record (root logger) to stderr in `fmt`; replaces an earlier configure()."""
    global _handler, _patient_ids
    _patient_ids = patient_ids
    root = logging.getLogger()
    if _handler is not None:
        root.removeHandler(_handler)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_json_formatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_Context())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # httpx logs every request URL at INFO (search parameters name patients): its warnings only.
    for noisy in ("httpx", "httpcore", "hpack", "multipart"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _handler = handler
    return handler


def exit_0_on_sigterm() -> None:
    """uvicorn drains the requests in flight on SIGTERM, then raises the signal again for whatever handler
    was there before it: make that handler a clean exit (0), as process managers expect after a drain."""
    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def uvicorn_options() -> dict[str, Any]:
    """uvicorn.run options that leave logging to configure() (uvicorn's loggers propagate to the root)
    and its own access log off (ops.http writes one line per request, without the query string)."""
    return {"log_config": None, "access_log": False}
