"""One pooled, synchronous HTTP client for a FHIR R4 server.

read, search (every page), batch, conditional create and If-Match update, with
timeouts on every call, retries (httpretry: exponential backoff, full jitter,
Retry-After) for idempotent requests only, every answer read under a size cap and
a total deadline (httpbound), and errors from azaguard.fhir.errors that tell the
caller whether to retry. httpx.Client is thread-safe: concurrency is threads
sharing this one client (and its connection pool).
"""

from __future__ import annotations

import http.cookiejar
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

import httpx
import orjson

from azaguard.addresses import PinnedTransport, is_public
from azaguard.events import FHIR_RESPONSE, emit
from azaguard.fhir.errors import (
    RETRYABLE_STATUSES,
    FhirError,
    FhirProtocolError,
    FhirUnavailable,
    error_for_status,
    outcome_text,
)
from azaguard.httpauth import BearerAuth, Renew, TokenSource
from azaguard.httpbound import BOUND, Bound, ResponseTooLarge
from azaguard.httpclient import client as outbound_client
from azaguard.httpclient import no_cookies, tls_context
from azaguard.httpretry import ATTEMPT, RETRY, Gate, RetryPolicy

log = logging.getLogger(__name__)

Resource = dict[str, Any]
Params = Mapping[str, str] | Sequence[tuple[str, str]]

FHIR_JSON = "application/fhir+json"
_TYPE_RE = re.compile(r"[A-Z][A-Za-z]{1,63}")
_ID_RE = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # FHIR id syntax; also keeps paths from being injected
_QUERY_SAFE = ",|/:"  # FHIR's OR-commas and system|code stay literal, as servers document them
_READ_METHODS = frozenset({"GET", "HEAD"})
DEFAULT_RESPONSE_BYTES = 256 << 20
DEFAULT_RESPONSE_DEADLINE = 120.0


@dataclass(frozen=True)
class BatchResult:
    """One entry of a batch-response, in the order of the request entries."""

    status: int
    resource: Resource | None
    outcome: str | None  # the OperationOutcome text, for failed entries (and warnings when given)
    location: str | None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass(frozen=True)
class WriteResult:
    status: int
    created: bool  # False: a conditional create found the resource already there, or an update
    location: str | None
    resource: Resource | None  # None when the server answered without a body
    etag: str | None


def check_type(resource_type: str) -> str:
    if not _TYPE_RE.fullmatch(resource_type):
        raise ValueError(f"not a FHIR resource type: {resource_type!r}")
    return resource_type


def check_id(resource_id: str) -> str:
    if not _ID_RE.fullmatch(resource_id):
        raise ValueError(f"not a FHIR resource id: {resource_id!r}")
    return resource_id


def search_url(resource_type: str, params: Params) -> str:
    """A search as a URL relative to the base, usable in a GET and in a batch entry."""
    items = list(params.items()) if isinstance(params, Mapping) else list(params)
    query = urlencode(items, safe=_QUERY_SAFE)
    return f"{check_type(resource_type)}?{query}" if query else check_type(resource_type)


def searchset_entries(bundle: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The entries of a searchset page that carry a resource (matches, includes, outcomes)."""
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise FhirProtocolError("the server returned a Bundle whose entry is not a list")
    return [e for e in entries if isinstance(e, Mapping) and isinstance(e.get("resource"), Mapping)]


def searchset_resources(bundle: Mapping[str, Any]) -> list[Resource]:
    """Matched and included resources of a page, without the OperationOutcome entries."""
    entries = searchset_entries(bundle)
    return [e["resource"] for e in entries if e["resource"].get("resourceType") != "OperationOutcome"]


def searchset_warnings(bundle: Mapping[str, Any]) -> list[str]:
    """What the server said about the search in OperationOutcome entries (e.g. an ignored parameter)."""
    texts = (outcome_text(e["resource"]) for e in searchset_entries(bundle))
    return [t for t in texts if t]


def link_of(bundle: Mapping[str, Any], relation: str) -> str | None:
    links = bundle.get("link") or []
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, Mapping) and link.get("relation") == relation:
            url = link.get("url")
            return url if isinstance(url, str) else None
    return None


class FhirClient:
    """A FHIR R4 server at `base_url`, over one pooled httpx.Client."""

    def __init__(
        self,
        base_url: str,
        *,
        token: TokenSource = None,
        renew: Renew | None = None,
        timeout: float = 15.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        max_pages: int = 100,
        max_response_bytes: int = DEFAULT_RESPONSE_BYTES,
        response_deadline: float = DEFAULT_RESPONSE_DEADLINE,
        strict_search: bool = True,
        transport: httpx.BaseTransport | None = None,
        pools: ConnectionPools | None = None,
        only_public: bool = False,
        gate: Gate | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`pools`: keep-alive connections shared with the process's other clients (see ConnectionPools);
        without it (or with a `transport`) the client has connections of its own, closed by close().
        `only_public`: connect only to public addresses, checked at connect time (addresses.PinnedTransport).
        `renew`: called when the server answers 401, with the refused token; the request is then sent once
        more with the token `token` gives (httpauth.BearerAuth). `gate`: consulted around every request
        (scan/backoff.SharedBackoff: a pause shared by every worker). `sleep`, `clock` (epoch seconds):
        for the waits between retries (httpretry.RetryTransport)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the FHIR base URL must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._origin = (parts.scheme, parts.netloc)
        self._host = parts.netloc  # for logs and metrics: never the path (ids) or query
        self._auth = BearerAuth(token, renew)
        self.timeout = timeout
        self.max_pages = max_pages
        self.retry = RetryPolicy(RETRYABLE_STATUSES, max_retries=max_retries, backoff=backoff, max_backoff=max_backoff)
        # A total time and size for each response, beyond the per-read timeout: a server dripping
        # bytes or sending an endless body must not hold or exhaust the app.
        self.bound = Bound(max_response_bytes, response_deadline)
        self.strict_search = strict_search
        self._sleep = sleep
        self._jitter = random.SystemRandom()
        self._lock = threading.Lock()
        self._capabilities: Resource | None = None
        self.request_count = 0  # HTTP requests sent, retries included
        if pools is not None and transport is None and gate is None:
            self._http, self._owned = pools.client(parts.scheme, parts.netloc, only_public=only_public), False
        else:  # connections of its own, closed by close()
            if transport is None and only_public:
                transport = PinnedTransport(is_public, verify=tls_context(parts.scheme))
            self._http = _http_client(parts.scheme, transport, self.bound, self.retry, gate=gate, sleep=sleep,
                                      clock=clock, timeout=timeout)  # fmt: skip
            self._owned = True

    # -- lifecycle --------------------------------------------------------------

    def close(self) -> None:
        if self._owned:  # shared connections stay open for the process's next client
            self._http.close()

    def __enter__(self) -> FhirClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- the interactions -----------------------------------------------------------

    def read(self, resource_type: str, resource_id: str) -> Resource:
        path = f"{check_type(resource_type)}/{check_id(resource_id)}"
        response = self._send("GET", self._url(path), retry=True)
        return self._resource(response, "GET", path, expected_type=resource_type)

    def operation(self, resource_type: str, name: str, params: Params) -> Resource:
        """A read-only type-level operation by GET ([base]/[type]/$[name]?params), e.g. CodeSystem/$lookup;
        answers the Parameters resource."""
        if not name.isidentifier():
            raise ValueError(f"not an operation name: {name!r}")
        query = search_url(resource_type, params).partition("?")[2]
        path = f"{check_type(resource_type)}/${name}" + (f"?{query}" if query else "")
        response = self._send("GET", self._url(path), retry=True)
        return self._resource(response, "GET", f"{resource_type}/${name}", expected_type="Parameters")

    def search(self, resource_type: str, params: Params) -> list[Resource]:
        """Every matched and included resource, over all pages (OperationOutcome entries left out)."""
        return [r for page in self.search_pages(resource_type, params) for r in searchset_resources(page)]

    def search_pages(self, resource_type: str, params: Params) -> list[Resource]:
        """Every page (searchset Bundle) of a search; warnings stay readable via searchset_warnings()."""
        first = self._get_bundle(self._url(search_url(resource_type, params)))
        return [first, *self.next_pages(first)]

    def next_pages(self, bundle: Mapping[str, Any]) -> list[Resource]:
        """The pages after `bundle` (e.g. a searchset inside a batch-response), following `next` links."""
        pages: list[Resource] = []
        seen = {u for u in (link_of(bundle, "self"),) if u}
        current: Mapping[str, Any] = bundle
        while (link := link_of(current, "next")) is not None:
            url = self._own_url(link)
            if url in seen:
                raise FhirProtocolError("the server's paging loops: a next link repeats an earlier page")
            if len(pages) + 2 > self.max_pages:
                raise FhirProtocolError(
                    f"the search has more than {self.max_pages} pages; stopped rather than read without end",
                    url=url,
                )
            seen.add(url)
            current = self._get_bundle(url)
            pages.append(dict(current))
        return pages

    def batch(self, entries: list[Resource] | Mapping[str, Any]) -> list[BatchResult]:
        """POST a batch Bundle (entries, or a Bundle); each entry succeeds or fails on its own.
        Retried only if every entry is a GET."""
        items = _entries(entries)
        methods = {str((e.get("request") or {}).get("method", "")).upper() for e in items}
        return self._bundle_interaction("batch", items, retry=bool(items) and methods <= _READ_METHODS)

    def transaction(self, entries: list[Resource] | Mapping[str, Any]) -> list[BatchResult]:
        """POST a transaction Bundle (entries, or a Bundle): all succeed or the server rejects the
        whole (FhirRejected). Retried only if every entry is a GET or PUT (repeating changes nothing)."""
        items = _entries(entries)
        methods = {str((e.get("request") or {}).get("method", "")).upper() for e in items}
        retry = bool(items) and methods <= _READ_METHODS | {"PUT"}
        return self._bundle_interaction("transaction", items, retry=retry)

    def _bundle_interaction(self, kind: str, entries: list[Resource], *, retry: bool) -> list[BatchResult]:
        bundle = {"resourceType": "Bundle", "type": kind, "entry": entries}
        response = self._send("POST", self.base_url, body=bundle, retry=retry)
        body = self._resource(response, "POST", kind, expected_type="Bundle")
        if body.get("type") != f"{kind}-response":
            raise FhirProtocolError(f"the server answered a {kind} with a {body.get('type')!r} Bundle")
        got = body.get("entry") or []
        if not isinstance(got, list) or len(got) != len(entries):
            count = len(got) if isinstance(got, list) else "no"
            raise FhirProtocolError(f"the server answered a {kind} of {len(entries)} entries with {count}")
        return [_batch_result(i, e) for i, e in enumerate(got)]

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> WriteResult:
        """POST a resource; with if_none_exist (a search query) it is conditional, hence safe to retry."""
        rtype = check_type(str(resource.get("resourceType")))
        headers = {"Prefer": "return=representation"}
        if if_none_exist is not None:
            headers["If-None-Exist"] = if_none_exist
        conditional = if_none_exist is not None
        response = self._send("POST", self._url(rtype), body=resource, headers=headers, retry=conditional)
        return self._write_result(response, "POST", rtype)

    def update(self, resource: Resource, *, if_match: str | None = None) -> WriteResult:
        """PUT a resource by its id (update, or create with a client-chosen id)."""
        rtype = check_type(str(resource.get("resourceType")))
        rid = resource.get("id")
        if not isinstance(rid, str):
            raise ValueError("update needs a resource with an id")
        path = f"{rtype}/{check_id(rid)}"
        headers = {"Prefer": "return=representation"}
        if if_match is not None:
            headers["If-Match"] = if_match
        response = self._send("PUT", self._url(path), body=resource, headers=headers, retry=True)
        return self._write_result(response, "PUT", path)

    def pause(self, attempt: int) -> None:
        """Wait before retrying a write that met a conflict (full jitter, as for temporary failures)."""
        self._sleep(self.retry.delay(attempt, None, self._jitter.uniform))

    def capabilities(self) -> Resource:
        """The server's CapabilityStatement (GET metadata), fetched once per client."""
        with self._lock:
            cached = self._capabilities
        if cached is None:
            response = self._send("GET", self._url("metadata"), retry=True)
            cached = self._resource(response, "GET", "metadata", expected_type="CapabilityStatement")
            with self._lock:
                self._capabilities = cached
        return cached

    def supports_batch(self) -> bool:
        rests = self.capabilities().get("rest") or []
        for rest in rests if isinstance(rests, list) else []:
            if not isinstance(rest, Mapping) or rest.get("mode", "server") != "server":
                continue
            for interaction in rest.get("interaction") or []:
                if isinstance(interaction, Mapping) and interaction.get("code") == "batch":
                    return True
        return False

    # -- HTTP (retries and bounds are the client's: httpretry, httpbound) ----------------------

    def _send(
        self,
        method: str,
        url: str,
        *,
        body: Resource | None = None,
        headers: Mapping[str, str] | None = None,
        retry: bool,
    ) -> httpx.Response:
        """Send (temporary failures retried by the client's transport if `retry`); a non-error response or raises."""
        content = json.dumps(body, separators=(",", ":")).encode() if body is not None else None
        action = f"{method} {self._describe(url)}"
        request_headers = dict(headers or {})
        if content is not None:
            request_headers["Content-Type"] = FHIR_JSON
        extensions = {BOUND: self.bound, RETRY: self.retry if retry else None, ATTEMPT: self._attempted}
        request = self._http.build_request(method, url, content=content, headers=request_headers,
                                           timeout=self.timeout, extensions=extensions)  # fmt: skip
        try:
            response = self._http.send(request, auth=self._auth)
        except ResponseTooLarge as exc:
            raise FhirProtocolError(
                f"the FHIR server's answer to {action} is larger than {self.bound.max_bytes} bytes; not read",
                url=url,
            ) from exc
        except httpx.TransportError as exc:
            failure = FhirUnavailable(
                f"the FHIR server did not answer {action} within {self.timeout:g} s" if isinstance(
                    exc, httpx.TimeoutException) else
                f"could not reach the FHIR server for {action} ({type(exc).__name__})", url=url,
            )  # fmt: skip
            log.warning("FHIR server unreachable", extra={"method": method, "host": self._host,
                                                          "error_class": type(failure).__name__})
            raise failure from None
        if response.is_success:
            return response
        error = self._error(response, action, url)
        log.warning("FHIR server error", extra={"method": method, "host": self._host,
                                                "status": response.status_code, "error_class": type(error).__name__})
        raise error

    def _attempted(self, request: httpx.Request, status: int | None, seconds: float) -> None:
        """Every attempt the transport made (retries and a renewed token's resend included)."""
        with self._lock:
            self.request_count += 1
        log.debug("%s %s -> %s", request.method, self._host, status)
        emit(FHIR_RESPONSE, method=request.method, host=self._host, status=status, seconds=seconds)

    def _error(self, response: httpx.Response, action: str, url: str) -> FhirError:
        try:
            outcome = outcome_text(orjson.loads(response.content))
        except ValueError:  # orjson stops at 1,024 levels with a ValueError, never a RecursionError
            outcome = None  # an error page in HTML: the status alone has to do
        return error_for_status(response.status_code, action, outcome=outcome, url=url)


    # -- bodies -----------------------------------------------------------------------

    def _get_bundle(self, url: str) -> Resource:
        headers = {"Prefer": "handling=strict"} if self.strict_search else {}
        response = self._send("GET", url, headers=headers, retry=True)
        bundle = self._resource(response, "GET", self._describe(url), expected_type="Bundle")
        if bundle.get("type", "searchset") != "searchset":
            kind = bundle.get("type")
            raise FhirProtocolError(f"a search answered with a {kind!r} Bundle, not a searchset", url=url)
        return bundle

    def _resource(self, response: httpx.Response, method: str, what: str, *, expected_type: str) -> Resource:
        body = self._json(response, f"{method} {what}")
        if not isinstance(body, dict) or body.get("resourceType") != expected_type:
            got = body.get("resourceType") if isinstance(body, dict) else type(body).__name__
            raise FhirProtocolError(
                f"the FHIR server answered {method} {what} with {got!r} instead of a {expected_type}",
                status=response.status_code,
                url=str(response.request.url),
            )
        return body

    def _json(self, response: httpx.Response, action: str) -> object:
        try:
            return orjson.loads(response.content)  # about twice the stdlib's speed on big searchsets
        except ValueError as exc:  # orjson stops at 1,024 levels with a ValueError, never a RecursionError
            raise FhirProtocolError(
                f"the FHIR server answered {action} with a body that is not valid JSON",
                status=response.status_code,
                url=str(response.request.url),
            ) from exc

    def _write_result(self, response: httpx.Response, method: str, what: str) -> WriteResult:
        resource: Resource | None = None
        if response.content.strip():
            body = self._json(response, f"{method} {what}")
            if isinstance(body, dict) and body.get("resourceType") == "OperationOutcome" and _is_error(body):
                # 2xx with an error outcome: some servers report a refused write this way.
                raise FhirProtocolError(
                    f"the FHIR server answered {method} {what} with HTTP {response.status_code} but an "
                    "OperationOutcome of severity error: the write did not happen",
                    status=response.status_code, outcome=outcome_text(body), url=str(response.request.url),
                )
            if isinstance(body, dict) and body.get("resourceType") not in (None, "OperationOutcome"):
                resource = body
        return WriteResult(
            status=response.status_code,
            created=response.status_code == 201,
            location=response.headers.get("Location") or response.headers.get("Content-Location"),
            resource=resource,
            etag=response.headers.get("ETag"),
        )

    # -- URLs -----------------------------------------------------------------------------

    def _url(self, path: str) -> str:
        return f"{self.base_url}/{path}"

    def _own_url(self, link: str) -> str:
        """A paging link made absolute; refused if it leaves this server (the token must not follow)."""
        url = urljoin(self.base_url + "/", link)
        parts = urlsplit(url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise FhirProtocolError(
                f"the server's next-page link points to another address ({parts.scheme}://{parts.netloc}); "
                "not followed so that the access token is not sent there"
            )
        return url

    def _describe(self, url: str) -> str:
        """The URL as hospital IT reads it in a message: relative to the base, without the query."""
        path = url.split("?", 1)[0]
        if path.startswith(self.base_url):
            path = path[len(self.base_url) :].lstrip("/")
        return path or "(base)"


class ConnectionPools:
    """Keep-alive connections to FHIR servers, shared by the FhirClients of one process that are given
    this object: where a client is made per request (the app, CDS Hooks), the TCP (and TLS) handshake
    is then paid once per server and process, not on every request. One httpx.Client per origin
    (thread-safe). Nothing of one client's requests reaches another's: the Authorization header and
    timeouts are set per request, redirects are never followed, and no cookie is ever kept (a shared
    jar would carry one user's session cookie into another user's requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str, bool], httpx.Client] = {}

    def client(self, scheme: str, netloc: str, *, only_public: bool = False) -> httpx.Client:
        """`only_public`: its connections reach public addresses only (their own pool: a connection made
        to a listed private address is never lent to a caller allowed only public ones)."""
        with self._lock:
            found = self._clients.get((scheme, netloc, only_public))
            if found is None:
                pinned = PinnedTransport(is_public, verify=tls_context(scheme)) if only_public else None
                found = self._clients[(scheme, netloc, only_public)] = _http_client(
                    scheme, pinned, Bound(DEFAULT_RESPONSE_BYTES, DEFAULT_RESPONSE_DEADLINE), None,
                    cookies=no_cookies())
            return found

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()


def _http_client(
    scheme: str,
    transport: httpx.BaseTransport | None,
    bound: Bound,
    retry: RetryPolicy | None,
    *,
    gate: Gate | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    timeout: float = 15.0,
    cookies: http.cookiejar.CookieJar | None = None,
) -> httpx.Client:
    # The timeout and bound here are defaults: every request sets its own (a client's own, narrower).
    return outbound_client(bound=bound, retry=retry, transport=transport, gate=gate, sleep=sleep, clock=clock,
                           timeout=timeout, headers={"Accept": FHIR_JSON}, cookies=cookies,
                           verify=tls_context(scheme))  # fmt: skip


# The pools of this process: what the app and the CDS Hooks service pass to their per-request clients.
PROCESS_POOLS = ConnectionPools()


def _entries(entries: list[Resource] | Mapping[str, Any]) -> list[Resource]:
    if isinstance(entries, Mapping):
        if entries.get("resourceType") != "Bundle" or not isinstance(entries.get("entry", []), list):
            raise ValueError("expected a list of Bundle entries or a Bundle")
        return list(entries.get("entry", []))
    return entries


def _batch_result(index: int, entry: object) -> BatchResult:
    if not isinstance(entry, Mapping) or not isinstance(entry.get("response"), Mapping):
        raise FhirProtocolError(f"batch-response entry {index} has no response")
    response = entry["response"]
    status_text = str(response.get("status", ""))
    match = re.match(r"\s*(\d{3})\b", status_text)
    if match is None:
        raise FhirProtocolError(f"batch-response entry {index} has an unreadable status {status_text[:40]!r}")
    status = int(match.group(1))
    resource = entry.get("resource") if isinstance(entry.get("resource"), dict) else None
    outcome = outcome_text(response.get("outcome"))
    if resource is not None and resource.get("resourceType") == "OperationOutcome":
        outcome = outcome or outcome_text(resource)
        if status >= 300:
            resource = None
    location = response.get("location")
    return BatchResult(status, resource, outcome, location if isinstance(location, str) else None)


__all__ = [
    "PROCESS_POOLS",
    "BatchResult",
    "ConnectionPools",
    "FhirClient",
    "FhirError",
    "Params",
    "Resource",
    "WriteResult",
    "link_of",
    "search_url",
    "searchset_resources",
    "searchset_warnings",
]


def _is_error(outcome: Mapping[str, Any]) -> bool:
    issues = outcome.get("issue")
    return isinstance(issues, list) and any(
        isinstance(i, Mapping) and i.get("severity") in ("error", "fatal") for i in issues
    )
