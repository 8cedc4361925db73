"""A FHIR Bulk Data export: kick-off, polling, download of the NDJSON files to disk.

Kick-off `GET [base]/$export` (or `[base]/Group/[id]/$export`) with `_type` limited to what the
rules read, `Prefer: respond-async`; poll the Content-Location honouring Retry-After (and 429s) with a
floor, backing off when the server says 0 or nothing, showing X-Progress (control characters
cleaned); then stream each output file to disk (gzip accepted), sending the access token only when
the manifest says `requiresAccessToken` and only to the FHIR server's own origin.

Kick-off answered 429 ("too many requests": no export was started) is retried by the client's transport,
honouring Retry-After (httpretry); the status polling's 202 (and 429: "polling too often") set the polling
cadence, a protocol loop here that reads Retry-After through the same one reader.

Bounded: status and manifest answers by their client's bound (httpbound); each download has a total deadline
and a cap on its decoded bytes (content-encoding gzip, and a file that is itself gzip, are counted
as they unpack), and the export a cap on them all. Output URLs must be http(s); a `type` that is
not a resource type is refused. Every failure is a FhirError with one sentence (scan exit 3).
"""

from __future__ import annotations

import json
import os
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from azaguard.fhir.client import check_id
from azaguard.fhir.errors import FhirError, FhirProtocolError, FhirUnavailable, error_for_status, outcome_text
from azaguard.httpauth import BearerAuth, Renew
from azaguard.httpbound import (
    ERROR_BYTES,
    SMALL_DEADLINE,
    Bound,
    ResponseTooLarge,
    ResponseTooSlow,
    read_bounded,
    within,
)
from azaguard.httpclient import client as outbound_client
from azaguard.httpretry import RETRY, RetryPolicy, retry_after
from azaguard.privatefiles import private_dir
from azaguard.report import clean
from azaguard.scan.ndjson import EXPORT_TYPES, ExportFile
from azaguard.scan.progress import ScanProgress

DEFAULT_POLL = 1.0
MIN_POLL = 1.0  # a Retry-After below this (or a 429 storm) is not a reason to poll faster
MAX_POLL = 60.0
MANIFEST_BYTES = 16 << 20  # status answers and the manifest (a very large export lists thousands of files)
STATUS_DEADLINE = 60.0
MAX_FILE_BYTES = 16 << 30  # decoded bytes of one output file
MAX_EXPORT_BYTES = 256 << 30  # decoded bytes of the whole export
DOWNLOAD_DEADLINE = 3 * 3600.0  # one file, from request to last byte
EXPORT_TIMEOUT = 6 * 3600.0  # a night's export at most
TokenFn = Callable[[], str | None]
# A kick-off answered 429 started nothing: sent again after its Retry-After (else a doubling wait), a few times.
KICK_OFF_RETRY = RetryPolicy(frozenset({429}), max_retries=3, backoff=DEFAULT_POLL, max_backoff=MAX_POLL)


@dataclass
class ExportResult:
    files: list[ExportFile]
    transaction_time: str | None
    polls: int
    seconds: float
    bytes: int
    errors: list[str] = field(default_factory=list)


class BulkExport:
    def __init__(
        self,
        base_url: str,
        *,
        token: TokenFn | None = None,
        renew: Renew | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = EXPORT_TIMEOUT,
        max_file_bytes: int | None = None,
        max_export_bytes: int | None = None,
        download_deadline: float | None = None,
    ) -> None:
        self.max_file_bytes = max_file_bytes or MAX_FILE_BYTES
        self.max_export_bytes = max_export_bytes or MAX_EXPORT_BYTES
        self.download_deadline = download_deadline or DOWNLOAD_DEADLINE
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._bearer = BearerAuth(token, renew) if token is not None else None
        self._sleep = sleep
        self._timeout = timeout
        # Status, manifest and DELETE answers: bounded by the client. Downloads: a client of their own, unbounded
        # by it (a file may be gigabytes), each capped and timed as it streams to disk (`download`).
        self._http = outbound_client(bound=Bound(MANIFEST_BYTES, STATUS_DEADLINE), transport=transport, sleep=sleep,
                                     timeout=60.0)  # fmt: skip
        self._files = outbound_client(bound=None, transport=transport, timeout=60.0)

    def close(self) -> None:
        self._http.close()
        self._files.close()

    def run(self, out_dir: Path, *, group: str | None, progress: ScanProgress,
            types: Sequence[str] = EXPORT_TYPES) -> ExportResult:  # fmt: skip
        started = time.monotonic()
        status_url = self.kick_off(group, types)
        manifest, polls = self.poll(status_url, progress, started)
        private_dir(out_dir)
        files: list[ExportFile] = []
        total = 0
        outputs = manifest.get("output") or []
        progress.note(f"export ready: {len(outputs)} files to download")
        needs_token = bool(manifest.get("requiresAccessToken"))
        if not isinstance(outputs, list):
            raise FhirProtocolError("the export manifest's output is not a list")
        for index, item in enumerate(outputs):
            rtype, url = (item.get("type"), item.get("url")) if isinstance(item, dict) else (None, None)
            if not isinstance(rtype, str) or not isinstance(url, str):
                raise FhirProtocolError(f"the export manifest's output {index} has no type or url")
            if not _TYPE.fullmatch(rtype):
                raise FhirProtocolError(f"the export manifest's output {index} has type {clean(rtype[:60])!r}, "
                                        "not a resource type")  # fmt: skip
            if urlsplit(url).scheme not in ("http", "https"):
                raise FhirProtocolError(f"the export manifest's output {index} is not an http(s) URL "
                                        f"({clean(url[:80])!r}); not fetched")  # fmt: skip
            path = out_dir / f"{rtype}.{index:03d}.ndjson"
            total += self.download(url, path, needs_token, budget=self.max_export_bytes - total)
            gz = path.with_name(path.name + ".gz")
            files.append(ExportFile(gz if gz.exists() else path, rtype))
        errors = [f"{e.get('type')}: {e.get('url')}" for e in manifest.get("error") or [] if isinstance(e, dict)]
        self._delete(status_url)
        when = manifest.get("transactionTime")
        return ExportResult(files, when if isinstance(when, str) else None, polls, time.monotonic() - started,
                            total, errors)  # fmt: skip

    def kick_off(self, group: str | None, types: Sequence[str]) -> str:
        path = f"Group/{check_id(group)}/$export" if group else "$export"
        url = f"{self.base_url}/{path}?{urlencode({'_type': ','.join(types)}, safe=',')}"
        response = self._get(url, {"Accept": "application/fhir+json", "Prefer": "respond-async"}, token=True,
                             retry=KICK_OFF_RETRY)  # fmt: skip
        if response.status_code != 202:
            raise self._error(response, f"the Bulk Data kick-off ({path})")
        location = response.headers.get("Content-Location")
        if not location:
            raise FhirProtocolError("the Bulk Data kick-off answered 202 without a Content-Location")
        return str(urljoin(self.base_url + "/", location))

    def poll(self, status_url: str, progress: ScanProgress, started: float) -> tuple[dict[str, Any], int]:
        polls = 0
        while True:
            polls += 1
            response = self._get(status_url, {"Accept": "application/json"}, token=True)
            if response.status_code == 200:
                try:
                    manifest = json.loads(response.content)
                except (ValueError, RecursionError) as exc:
                    raise FhirProtocolError("the Bulk Data manifest is not JSON") from exc
                if not isinstance(manifest, dict):
                    raise FhirProtocolError("the Bulk Data manifest is not a JSON object")
                return manifest, polls
            if response.status_code not in (202, 429):
                raise self._error(response, "the Bulk Data export")
            if response.headers.get("X-Progress"):
                progress.note(f"export: {clean(response.headers['X-Progress'][:100])}")
            if time.monotonic() - started > self._timeout:
                raise FhirUnavailable(f"the Bulk Data export did not finish within {self._timeout:.0f} s")
            self._sleep(poll_delay(retry_after(response, time.time()), polls))

    def download(self, url: str, path: Path, needs_token: bool, *, budget: int | None = None) -> int:
        """Stream one file to disk (never whole in memory); gzip content-encoding is decoded on the way.
        Returns its decoded size; over the file's cap, the export's remaining `budget` or the deadline: a
        FhirProtocolError/FhirUnavailable naming the file."""
        headers = {"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"}
        if needs_token:
            self._check_own(url)
        limit = min(self.max_file_bytes, budget if budget is not None else self.max_export_bytes)
        which = "the export's cap" if limit < self.max_file_bytes else "the cap per file"
        start = time.monotonic()
        size = 0
        tmp = path.with_suffix(".part")
        tmp.unlink(missing_ok=True)  # a leftover of an earlier run, or a planted link: removed, not followed
        try:
            with self._files.stream("GET", url, headers=headers, auth=self._auth_for(needs_token),
                                   timeout=httpx.Timeout(min(60.0, self.download_deadline))) as response:  # fmt: skip
                if response.status_code != 200:  # its body read only as far as an error page goes
                    raise self._error(_error_page(response), f"downloading {path.name}")
                with os.fdopen(os.open(tmp, _NEW_FILE, 0o600), "wb") as fh:
                    unpack: _Gunzip | None = None
                    for chunk in response.iter_bytes():  # as it arrives: a drip meets the deadline
                        if size == 0 and unpack is None and chunk[:2] == b"\x1f\x8b":
                            unpack = _Gunzip()  # served as a gzip file: count what it unpacks to
                        fh.write(chunk)
                        size += unpack.count(chunk, limit - size) if unpack is not None else len(chunk)
                        if size > limit:
                            raise FhirProtocolError(f"the export file {path.name} is larger than {which} "
                                                    f"({limit} bytes decoded); not read further", url=url)  # fmt: skip
                        if time.monotonic() - start > self.download_deadline:
                            raise FhirUnavailable(f"downloading {path.name} took longer than "
                                                  f"{self.download_deadline:g} s; stopped", url=url)  # fmt: skip
                    if unpack is not None and not unpack.complete:
                        raise FhirProtocolError(f"the export file {path.name} is a gzip file cut short", url=url)
        except zlib.error as exc:
            raise FhirProtocolError(f"the export file {path.name} is not valid gzip ({exc})", url=url) from exc
        except httpx.TimeoutException as exc:
            raise FhirUnavailable(f"downloading {path.name}: the server stopped sending", url=url) from exc
        except httpx.HTTPError as exc:
            raise FhirUnavailable(f"downloading {path.name} failed ({type(exc).__name__})", url=url) from exc
        tmp.replace(path.with_name(path.name + ".gz") if unpack is not None else path)
        return size

    # -- helpers -------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str], *, token: bool,
             retry: RetryPolicy | None = None) -> httpx.Response:  # fmt: skip
        if token:
            self._check_own(url)
        try:
            return self._http.get(url, headers=headers, auth=self._bearer if token else None,
                                  extensions={RETRY: retry})  # fmt: skip
        except (ResponseTooLarge, ResponseTooSlow) as exc:
            raise FhirProtocolError(f"the Bulk Data status answer: {exc}", url=url) from exc
        except httpx.HTTPError as exc:
            raise FhirUnavailable(f"the FHIR server did not answer the Bulk Data request ({type(exc).__name__})",
                                  url=url) from exc  # fmt: skip

    def _delete(self, status_url: str) -> None:
        try:  # tell the server it may delete the files; not needed for the scan (its answer read bounded)
            self._http.delete(status_url, auth=self._bearer or httpx.USE_CLIENT_DEFAULT,
                              extensions={**within(ERROR_BYTES, SMALL_DEADLINE), RETRY: None})  # fmt: skip
        except httpx.HTTPError:
            return

    def _auth_for(self, needs_token: bool) -> httpx.Auth | None:
        return self._bearer if needs_token else None  # the token only where the manifest asks for it

    def _check_own(self, url: str) -> None:
        if urlsplit(url)[:2] != self._origin:
            raise FhirProtocolError(
                f"the export points to another address ({urlsplit(url).netloc}); the access token is not sent there"
            )

    def _error(self, response: httpx.Response, action: str) -> FhirError:
        try:
            outcome = outcome_text(json.loads(response.content))
        except (ValueError, RecursionError):
            outcome = None
        outcome = clean(outcome[:300]) if outcome else None
        return error_for_status(response.status_code, action, outcome=outcome, url=str(response.request.url))


def _error_page(response: httpx.Response) -> httpx.Response:
    """An error answer's body, read bounded; too long or too slow, the status alone says it."""
    try:
        return read_bounded(response)
    except (ResponseTooLarge, ResponseTooSlow):
        return httpx.Response(response.status_code, request=response.request)


_TYPE = re.compile(r"[A-Z][A-Za-z]{1,63}")
# A download's temporary file: made new (a leftover .part is removed first), never through a link, 0600.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def poll_delay(retry_after: float | None, polls: int) -> float:
    """Seconds until the next status request: the server's Retry-After, at least MIN_POLL; when it says 0
    or nothing, a backoff doubling from DEFAULT_POLL (a server answering 'now' every time is not polled in
    a loop); at most MAX_POLL."""
    if retry_after is not None and retry_after > 0:
        return min(MAX_POLL, max(MIN_POLL, retry_after))
    return min(MAX_POLL, DEFAULT_POLL * 2.0 ** min(max(polls - 1, 0), 10))


class _Gunzip:
    """Counts the bytes a gzip file unpacks to as it streams in (every member), up to a limit."""

    def __init__(self) -> None:
        self._member = zlib.decompressobj(wbits=31)

    def count(self, chunk: bytes, limit: int) -> int:
        size = 0
        while chunk:
            size += len(self._member.decompress(chunk, limit + 1))
            if size > limit or not (self._member.eof and self._member.unused_data):
                break
            chunk = self._member.unused_data  # a file of several gzip members: the next one
            self._member = zlib.decompressobj(wbits=31)
        return size

    @property
    def complete(self) -> bool:
        return self._member.eof
