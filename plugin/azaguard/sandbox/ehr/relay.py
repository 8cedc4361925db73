"""What the sandbox EHR's two FHIR proxies share (patient tokens: proxy.py; system tokens: backend.py):
the request body read within limits, OperationOutcome answers, URL rewriting between the public and the
upstream base, and which headers pass."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from azaguard.resources import InputError, loads_limited

# Forwarded as sent. If-None-Exist is forwarded after its criteria are checked and confined to the
# compartment; If-None-Match / If-Modified-Since / Prefer are answered by the proxy itself, after the
# compartment check of the full answer, so a bodiless 304/HEAD/return=minimal is never an oracle.
FORWARD_REQUEST_HEADERS = ("accept", "content-type", "if-match")
MAX_REQUEST_BYTES = 16 << 20
FORWARD_RESPONSE_HEADERS = ("location", "content-location", "etag", "last-modified")


def outcome(status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}],
    }
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/fhir+json")


def rewrite_urls(value: Any, old_bases: Sequence[str], new_base: str) -> Any:
    """Strings starting with one of `old_bases` (then `/`, `?` or the end) now start with `new_base`."""
    if isinstance(value, str):
        for old in old_bases:
            if value == old or value.startswith((f"{old}/", f"{old}?")):
                return new_base + value[len(old) :]
        return value
    if isinstance(value, list):
        return [rewrite_urls(v, old_bases, new_base) for v in value]
    if isinstance(value, tuple):
        return tuple(rewrite_urls(v, old_bases, new_base) for v in value)
    if isinstance(value, dict):
        return {k: rewrite_urls(v, old_bases, new_base) for k, v in value.items()}
    return value


async def json_body(request: Request) -> tuple[object, bytes, str | None]:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_REQUEST_BYTES:
        return None, b"", f"the request body is larger than {MAX_REQUEST_BYTES} bytes"
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_REQUEST_BYTES:
            return None, b"", f"the request body is larger than {MAX_REQUEST_BYTES} bytes"
    if not raw:
        return None, raw, None
    content_type = request.headers.get("content-type", "")
    if "json" not in content_type:
        return None, raw, None
    try:
        return loads_limited(raw, "the request body"), raw, None
    except InputError as exc:
        return None, raw, str(exc)
