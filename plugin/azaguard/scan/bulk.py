"""A FHIR Bulk Data export: kick-off, polling, download of the NDJSON files to disk.

Kick-off `GET [base]/$export` (or `[base]/Group/[id]/$export`) with `_type` limited to what the
rules read, `Prefer: respond-async`; poll the Content-Location honouring Retry-After (and 429s),
showing X-Progress; then stream each output file to disk (gzip accepted), sending the access token
only when the manifest says `requiresAccessToken` and only to the FHIR server's own origin.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx

from azaguard.fhir.client import check_id, parse_retry_after
from azaguard.fhir.errors import FhirError, FhirProtocolError, FhirUnavailable, error_for_status, outcome_text
from azaguard.scan.ndjson import EXPORT_TYPES, ExportFile
from azaguard.scan.progress import ScanProgress

DEFAULT_POLL = 1.0
MAX_POLL = 60.0
EXPORT_TIMEOUT = 6 * 3600.0  # a night's export at most
TokenFn = Callable[[], str | None]


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
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = EXPORT_TIMEOUT,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._token = token
        self._sleep = sleep
        self._timeout = timeout
        self._http = httpx.Client(transport=transport, timeout=httpx.Timeout(60.0), follow_redirects=False)

    def close(self) -> None:
        self._http.close()

    def run(self, out_dir: Path, *, group: str | None, progress: ScanProgress,
            types: Sequence[str] = EXPORT_TYPES) -> ExportResult:  # fmt: skip
        started = time.monotonic()
        status_url = self.kick_off(group, types)
        manifest, polls = self.poll(status_url, progress, started)
        out_dir.mkdir(parents=True, exist_ok=True)
        files: list[ExportFile] = []
        total = 0
        outputs = manifest.get("output") or []
        progress.note(f"export ready: {len(outputs)} files to download")
        needs_token = bool(manifest.get("requiresAccessToken"))
        for index, item in enumerate(outputs):
            rtype, url = item.get("type"), item.get("url")
            if not isinstance(rtype, str) or not isinstance(url, str):
                raise FhirProtocolError("the export manifest has an output without type or url")
            path = out_dir / f"{check_id(rtype)}.{index:03d}.ndjson"
            total += self.download(url, path, needs_token)
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
        response = self._get(url, {"Accept": "application/fhir+json", "Prefer": "respond-async"}, token=True)
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
                except ValueError as exc:
                    raise FhirProtocolError("the Bulk Data manifest is not JSON") from exc
                if not isinstance(manifest, dict):
                    raise FhirProtocolError("the Bulk Data manifest is not a JSON object")
                return manifest, polls
            if response.status_code not in (202, 429):
                raise self._error(response, "the Bulk Data export")
            if response.headers.get("X-Progress"):
                progress.note(f"export: {response.headers['X-Progress'][:100]}")
            if time.monotonic() - started > self._timeout:
                raise FhirUnavailable(f"the Bulk Data export did not finish within {self._timeout:.0f} s")
            wait = parse_retry_after(response.headers.get("Retry-After"), time.time())
            self._sleep(min(MAX_POLL, max(0.1, DEFAULT_POLL if wait is None else wait)))

    def download(self, url: str, path: Path, needs_token: bool) -> int:
        """Stream one file to disk (never whole in memory); gzip content-encoding is decoded on the way."""
        headers = {"Accept": "application/fhir+ndjson", "Accept-Encoding": "gzip"}
        if needs_token:
            self._check_own(url)
            headers.update(self._auth())
        size = 0
        tmp = path.with_suffix(".part")
        with self._http.stream("GET", url, headers=headers) as response:
            if response.status_code != 200:
                response.read()
                raise self._error(response, f"downloading {path.name}")
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes(1 << 16):
                    fh.write(chunk)
                    size += len(chunk)
        with tmp.open("rb") as fh:
            packed = fh.read(2) == b"\x1f\x8b"  # served gzipped as a file, not as a content-encoding
        tmp.replace(path.with_name(path.name + ".gz") if packed else path)
        return size

    # -- helpers -------------------------------------------------------------------------------

    def _get(self, url: str, headers: dict[str, str], *, token: bool) -> httpx.Response:
        if token:
            self._check_own(url)
            headers = {**headers, **self._auth()}
        try:
            return self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise FhirUnavailable(f"the FHIR server did not answer the Bulk Data request ({type(exc).__name__})",
                                  url=url) from exc  # fmt: skip

    def _delete(self, status_url: str) -> None:
        try:  # tell the server it may delete the files; not needed for the scan
            self._http.delete(status_url, headers=self._auth())
        except httpx.HTTPError:
            return

    def _auth(self) -> dict[str, str]:
        token = self._token() if self._token else None
        return {"Authorization": f"Bearer {token}"} if token else {}

    def _check_own(self, url: str) -> None:
        if urlsplit(url)[:2] != self._origin:
            raise FhirProtocolError(
                f"the export points to another address ({urlsplit(url).netloc}); the access token is not sent there"
            )

    def _error(self, response: httpx.Response, action: str) -> FhirError:
        try:
            outcome = outcome_text(json.loads(response.content))
        except ValueError:
            outcome = None
        return error_for_status(response.status_code, action, outcome=outcome, url=str(response.request.url))
