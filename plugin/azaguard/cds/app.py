"""The CDS Hooks endpoints: `GET /cds-services`, `POST /cds-services/{id}`, `POST /cds-services/{id}/feedback`.

`cds_routes` gives Starlette routes with those full paths, to be included beside the SMART app
(`azaguard serve`) or the sandbox site. Every call is authenticated (trust.py) before anything is read;
`insecure=True` (the `--insecure-cds-sandbox` switch) accepts unsigned or unverifiable calls and says so
in the log and in a response header.
"""

from __future__ import annotations

import contextvars
import dataclasses
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import httpx
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from azaguard.cds.cards import Links
from azaguard.cds.discovery import SERVICES, Service, discovery_document
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.hooks import run_hook
from azaguard.cds.prefetch import ClientFactory, Templates, default_client_factory
from azaguard.cds.request import BadRequest, parse_request
from azaguard.cds.store import CdsStore, FeedbackEntry
from azaguard.cds.trust import JwksCache, KeysPending, Untrusted, Verifier
from azaguard.config import AppConfig, is_loopback, origin_of
from azaguard.errors import http_body, http_status, log_failure
from azaguard.fhirtypes import dates
from azaguard.mappings import Mappings
from azaguard.ops import audit, logs, metrics, runtime
from azaguard.resources import InputError, loads_limited
from azaguard.settings import Settings, current
from azaguard.websecurity import MAX_BODY_BYTES

if TYPE_CHECKING:
    from azaguard.terminology.server import TerminologyServer

log = logging.getLogger("azaguard.cds")
INSECURE_HEADER = "X-Azaguard-Insecure"
# Browser-based CDS clients (the CDS Hooks sandbox) need CORS. Trust rests on the signed JWT in the
# Authorization header, never on cookies, so any origin may call.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
    "Access-Control-Allow-Headers": "Authorization, Content-Type",
    "Access-Control-Max-Age": "600",
}
_OUTCOMES = frozenset({"accepted", "overridden"})


class CdsService:
    """The service's state: config, mappings, templates, store, verifier (one per process)."""

    def __init__(
        self,
        config: AppConfig,
        *,
        mappings: Mappings | None = None,
        store: CdsStore | None = None,
        now: Callable[[], datetime] | None = None,
        clients: ClientFactory | None = None,
        jwks: JwksCache | None = None,
        insecure: bool = False,
        jwt_clock: Callable[[], float] | None = None,
        terminology: TerminologyServer | None = None,
        settings: Settings | None = None,
    ) -> None:
        """`settings`: the environment as the entry point read it (a library call without them: read now)."""
        settings = current(settings)
        self.config = config
        self.terminology = terminology  # the site's terminology server, as `check --terminology-server`
        self.mappings = mappings or runtime.mappings(settings)
        self.templates = Templates(self.mappings)
        # The replay cache is in the shared store when that is Redis, else in this database.
        shared = runtime.shared_store(config, settings)
        self.store = store or CdsStore(runtime.database_url(config, settings),
                                       replay=shared if shared is not None and shared.kind == "redis" else None)
        self.audit = runtime.audit_trail(config, settings)
        self.now = now or (lambda: datetime.now(UTC))
        self.clients = clients or default_client_factory()
        self.insecure = insecure
        options: dict[str, Any] = {"jwks": jwks}
        if jwt_clock is not None:
            options["clock"] = jwt_clock
        self.verifier = Verifier(config.cds_clients, self.store, **options)
        self.base = origin_of(config.launch_uri)
        self.links = Links(smart_launch=config.launch_uri, home=self.base + "/")
        if insecure:
            log.warning(
                "INSECURE CDS SANDBOX MODE: CDS Hooks calls are accepted WITHOUT a valid signed JWT. "
                "Never use --insecure-cds-sandbox with real patients."
            )
        self.discovery = discovery_document(self.mappings)

    # -- authentication ------------------------------------------------------------------------------

    def authenticate(self, request: Request, *, may_wait: bool = False) -> Response | KeysPending | None:
        """None when the caller is trusted (or insecure mode lets it through), else the 401; with `may_wait`,
        KeysPending while the key set it needs is being fetched (the caller awaits it and asks again)."""
        audience = self.base + request.url.path
        source = request.client.host if request.client else None
        try:
            caller = self.verifier.verify(request.headers.get("authorization"), audience)
            audit.actor.set(audit.Actor(who=caller.iss, source=source))
        except KeysPending as pending:
            if may_wait and not self.insecure:
                return pending
            return self._refuse(request, pending, source)
        except Untrusted as exc:
            return self._refuse(request, exc, source)
        return None

    def _refuse(self, request: Request, exc: Untrusted, source: str | None) -> Response | None:
        """The 401 for `exc` (None in the insecure sandbox, which accepts the call and says so)."""
        audit.actor.set(audit.Actor(who="unauthenticated CDS client", source=source))
        if self.insecure:
            log.warning("INSECURE CDS SANDBOX: accepting an unauthenticated call (%s)", exc)
            return None
        metrics.CDS_REFUSALS.labels(refusal_reason(str(exc))).inc()
        metrics.refused(log, "CDS call refused", refusal_reason(str(exc)), detail=str(exc),
                        route=request.url.path)
        retry = {"Retry-After": "1"} if isinstance(exc, KeysPending) else {}  # the key set is on its way
        return JSONResponse(
            http_body(exc), status_code=http_status(exc),
            headers={"WWW-Authenticate": 'Bearer error="invalid_token"', **retry, **CORS_HEADERS},
        )

    def failure(self, exc: Exception) -> JSONResponse:
        """The service's one answer to a failure that leaves an endpoint: status and body from the error tree (a
        call that cannot be read: 400; data neither sent nor fetchable: 412; a FHIR server's failure: 502); a bug
        is logged with its traceback and answered 500 with no detail."""
        log_failure(log, "CDS call failed", exc, http_status(exc))
        return self.respond(http_body(exc), http_status(exc))

    def respond(self, body: dict[str, Any], status: int = 200) -> JSONResponse:
        headers = {INSECURE_HEADER: "unsigned CDS calls accepted (sandbox only)"} if self.insecure else {}
        return JSONResponse(body, status_code=status, headers={**headers, **CORS_HEADERS, "Cache-Control": "no-store"})

    # -- endpoints -----------------------------------------------------------------------------------

    def _service(self, request: Request, *, authenticated: bool) -> Service | Response:
        """The addressed service for an authenticated caller, else the refusal (401) or 404 to send."""
        refused = None if authenticated else self.authenticate(request)
        if isinstance(refused, Response):
            return refused
        service = SERVICES.get(request.path_params["service_id"])
        if service is None:
            return self.respond({"error": "not-found", "message": "no such CDS service"}, 404)
        return service

    def hook(self, request: Request, body: bytes, *, authenticated: bool = False) -> Response:
        service = self._service(request, authenticated=authenticated)
        if isinstance(service, Response):
            return service
        return self.respond(self._evaluate(service, body))

    def _evaluate(self, service: Service, body: bytes) -> dict[str, Any]:
        request = parse_request(body, service)
        acting = audit.actor.get()
        caller = next((c for c in self.config.cds_clients if acting is not None and c.iss == acting.who), None)
        if caller is None and request.fhir_server and not is_loopback(request.fhir_server):
            # Unauthenticated (insecure sandbox) callers must not make the service fetch from arbitrary hosts.
            request = dataclasses.replace(request, fhir_server=None, access_token=None,
                                          notes=[*request.notes, "fhirServer ignored (insecure sandbox mode)"])
        policy = FetchPolicy(caller.fhir_servers if caller is not None else _LOOPBACK, self.config.cds_fetch_seconds)
        now = self.now()
        user = request.context.get("userId")
        if acting is not None:
            access = request.access_token
            audit.actor.set(dataclasses.replace(acting, user=user if isinstance(user, str) else None,
                                                fhir_base=request.fhir_server, token=lambda: access))
        started = time.perf_counter()
        try:
            result = run_hook(
                service, request, templates=self.templates, mappings=self.mappings, now=now,
                clients=self.clients, links=self.links, terminology=self.terminology, policy=policy,
            )
        except Exception as exc:
            self.audit.record("cds." + service.id, patient=request.patient_id, outcome=type(exc).__name__)
            raise
        metrics.HOOK_SECONDS.labels(service.id).observe(time.perf_counter() - started)
        self.audit.record("cds." + service.id, patient=request.patient_id, outcome="evaluated",
                          detail=f"{len(result.cards)} card(s)")
        self.store.record_cards(service.id, result.issued, now)
        log.info("hook evaluated", extra={"service": service.id, "cards": len(result.cards),
                                          "fetched": ",".join(result.fetched) or "-",
                                          "patient": logs.patient(request.patient_id)})
        return result.response()

    def feedback(self, request: Request, body: bytes, *, authenticated: bool = False) -> Response:
        service = self._service(request, authenticated=authenticated)
        if isinstance(service, Response):
            return service
        entries = parse_feedback(body, self.now())
        self.store.add_feedback(service.id, entries, self.now())
        return self.respond({"stored": len(entries)})


_LOOPBACK = ("http://127.0.0.1", "http://localhost", "http://[::1]")  # the insecure sandbox's own servers

_REASONS = (  # (words in Untrusted's message, reason label), first match wins: a bounded label set
    ("authorization header", "no-token"), ("not a signed jwt", "malformed"), ("payload", "malformed"),
    ("alg", "alg"), ("jwk set", "jwks-unreachable"), ("jku", "jku"), ("key", "key"), ("issuer", "iss"),
    ("signature", "signature"), ("aud", "aud"), ("exp or iat", "exp"), ("expired", "exp"), ("future", "iat"),
    ("too long", "lifetime"), ("replayed", "replay"), ("jti", "jti"),
)


def refusal_reason(message: str) -> str:
    """Which check refused a CDS call, as a metrics label."""
    text = message.lower()
    return next((label for words, label in _REASONS if words in text), "other")


def parse_feedback(body: bytes, now: datetime) -> list[FeedbackEntry]:
    try:
        data = loads_limited(body, "the feedback")
    except InputError as exc:
        raise BadRequest(str(exc)) from exc
    items = data.get("feedback") if isinstance(data, dict) else None
    if not isinstance(items, list) or not items:
        raise BadRequest("the feedback must be an object with a non-empty 'feedback' array")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"feedback[{i}] is not an object")
        card, outcome = item.get("card"), item.get("outcome")
        if not isinstance(card, str) or not card:
            raise BadRequest(f"feedback[{i}] has no card uuid")
        if outcome not in _OUTCOMES:
            raise BadRequest(f"feedback[{i}].outcome must be accepted or overridden")
        accepted = item.get("acceptedSuggestions") or []
        if not isinstance(accepted, list):
            raise BadRequest(f"feedback[{i}].acceptedSuggestions must be an array")
        ids = tuple(str(a["id"]) for a in accepted if isinstance(a, dict) and a.get("id"))
        override = item.get("overrideReason")
        reason = _coding(override.get("reason")) if isinstance(override, dict) else None
        comment = override.get("userComment") if isinstance(override, dict) else None
        comment = comment if isinstance(comment, str) else None  # an object or list is no comment
        out.append(FeedbackEntry(
            card=card[:64], outcome=outcome, outcome_at=_timestamp(item.get("outcomeTimestamp"), now, i),
            reason=reason,
            user_comment=str(comment)[:2000] if comment else None, accepted_suggestions=ids,
        ))  # fmt: skip
    return out


def _coding(reason: object) -> dict[str, str] | None:
    """The override reason's Coding, its string fields only (bounded); anything else is no reason."""
    if not isinstance(reason, dict):
        return None
    kept = {k: reason[k][:200] for k in ("system", "code", "display") if isinstance(reason.get(k), str)}
    return kept or None


def _timestamp(value: object, now: datetime, i: int) -> datetime:
    if value is None:
        return now  # required by the spec, but a missing one is no reason to lose the feedback
    if not isinstance(value, str):
        raise BadRequest(f"feedback[{i}].outcomeTimestamp is not a string")
    try:
        return dates.moment(value)  # years 1900-2999: the edges of the calendar overflow in arithmetic
    except InputError as exc:
        raise BadRequest(f"feedback[{i}].outcomeTimestamp is {exc}") from exc


def cds_routes(service: CdsService) -> list[Route]:
    """The endpoints, each answering its failures through `service.failure` (the routes join a host's app, so
    the service's way out travels with them rather than in the host's exception handlers)."""

    def answered(endpoint: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            try:
                return await endpoint(request)
            except Exception as exc:
                return service.failure(exc)

        return guarded

    async def discover(request: Request) -> Response:
        refused, _ = await authenticate(request)
        return refused or service.respond(service.discovery)

    # Authenticated first, then the body read (bounded: websecurity.BodyLimit wraps every app that
    # serves these routes, and read_body holds the same cap): an unauthenticated caller never makes the
    # service read or hold its body.
    async def hook(request: Request) -> Response:
        return await authenticated(request, service.hook)

    async def feedback(request: Request) -> Response:
        return await authenticated(request, service.feedback)

    async def authenticated(request: Request, handler: Callable[..., Response]) -> Response:
        refused, context = await authenticate(request)
        if refused is not None:
            return refused
        body = await read_body(request)
        if isinstance(body, Response):
            return body
        # In the context the authentication left (who is calling, for the audit trail).
        return await run_in_threadpool(context.run, functools.partial(handler, request, body, authenticated=True))

    # A key set being fetched is awaited here, on the event loop: no worker thread waits for a JWKS host
    # (smart/jwks.py). At most two sets per call (a jwks_url, then an allow-listed jku), then verified once more.
    async def authenticate(request: Request) -> tuple[Response | None, contextvars.Context]:
        for _ in range(2):
            refused, context = await run_in_threadpool(verify, request, True)
            if not isinstance(refused, KeysPending):
                return refused, context
            try:
                await refused.ready()
            except TimeoutError:
                break
        refused, context = await run_in_threadpool(verify, request, False)
        return cast("Response | None", refused), context  # may_wait=False: a 401 rather than KeysPending

    def verify(request: Request, may_wait: bool) -> tuple[Response | KeysPending | None, contextvars.Context]:
        return service.authenticate(request, may_wait=may_wait), contextvars.copy_context()

    async def read_body(request: Request) -> bytes | Response:
        too_large = service.respond({"error": "too-large", "message": f"the request body is larger than "
                                     f"{MAX_BODY_BYTES} bytes"}, 413)  # fmt: skip
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
            return too_large
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return too_large
            chunks.append(chunk)
        return b"".join(chunks)

    async def preflight(request: Request) -> Response:
        return Response(status_code=204, headers=CORS_HEADERS)

    return [
        Route("/cds-services", answered(discover), methods=["GET"]),
        Route("/cds-services/{service_id}", answered(hook), methods=["POST"]),
        Route("/cds-services/{service_id}/feedback", answered(feedback), methods=["POST"]),
        Route("/cds-services", preflight, methods=["OPTIONS"]),
        Route("/cds-services/{service_id}", preflight, methods=["OPTIONS"]),
        Route("/cds-services/{service_id}/feedback", preflight, methods=["OPTIONS"]),
    ]


def create_cds_service(
    config: AppConfig, *, insecure: bool = False, transport: httpx.BaseTransport | None = None, **options: Any
) -> CdsService:
    """The service with HTTP clients on `transport` (tests), else the network."""
    if transport is not None:
        options.setdefault("clients", default_client_factory(transport))
        options.setdefault("jwks", JwksCache(transport))
    return CdsService(config, insecure=insecure, **options)
