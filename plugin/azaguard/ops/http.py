"""The operations edge of every HTTP app azaguard serves (serve, demo).

`Operations` wraps the ASGI app once, outermost:
- the client address: taken from X-Forwarded-For only when the peer is one of `trusted_proxies`
  (the rightmost address that is not itself a trusted proxy), so rate limits and the audit trail see
  the real client behind a reverse proxy and nobody else can choose their own address;
- a request id: an incoming X-Request-ID is reused when it looks like one, else a new one; echoed on
  the response and carried by every log line of the request (logs.request_id);
- one access line per request (method, route template — never the path's values or the query
  string, which may carry a code, a state or a patient id —, status, duration, request id) and the
  request metrics;
- `GET /healthz` (alive), `GET /readyz` (each readiness check: 200, or 503 naming what fails) and
  `GET /metrics` (Prometheus text; only to loopback, configured networks or a configured bearer token).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from azaguard.ops import logs, metrics

log = logging.getLogger("azaguard.access")
ops_log = logging.getLogger("azaguard.ops")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Check = Callable[[], str | None]  # None: fine; else one sentence saying what is wrong
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))
OPS_PATHS = ("/healthz", "/readyz", "/metrics")


def networks(cidrs: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)


def in_networks(address: str, nets: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in nets)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[Network]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy and says whom it forwards."""
    if not forwarded_for or not in_networks(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not in_networks(hop, trusted):
            return hop if _is_ip(hop) else peer
    return hops[0] if hops and _is_ip(hops[0]) else peer


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def route_template(routes: Sequence[BaseRoute], scope: Scope) -> str | None:
    """The template of the route that serves `scope` ('/cds-services/{service_id}'), never its values."""
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match == Match.NONE:
            continue
        if isinstance(route, Mount):
            inner = route_template(route.routes, {**scope, **child}) if route.routes else None
            template = route.path + (inner or "/{path}")
        else:
            template = getattr(route, "path", None) or "unmatched"
        if match == Match.FULL:
            return template
        partial = partial or template
    return partial


class Operations:
    """Outermost middleware; `routes` are the app's routes (for the templates), `checks` the readiness ones."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute] = (),
        checks: dict[str, Check] | None = None,
        trusted_proxies: Iterable[str] = (),
        metrics_networks: Iterable[str] = (),
        metrics_token: str | None = None,
    ) -> None:
        self.app = app
        self.routes = routes
        self.checks = checks or {}
        self.trusted = networks(trusted_proxies)
        self.metrics_networks = (*_LOOPBACK, *networks(metrics_networks))
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        peer = (scope.get("client") or ("", 0))[0]
        address = client_address(peer, headers.get("x-forwarded-for"), self.trusted)
        if address != peer:
            scope = {**scope, "client": (address, 0)}
        incoming = headers.get("x-request-id", "")
        rid = incoming if _REQUEST_ID.fullmatch(incoming) else uuid.uuid4().hex
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid.encode())]
            await send(message)

        path = scope.get("path", "")
        try:
            if path in OPS_PATHS and scope.get("method") in ("GET", "HEAD"):
                await self.ops_endpoint(path, scope, headers, address, send_with_id)
            else:
                await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - started
            route = path if path in OPS_PATHS else (route_template(self.routes, scope) or "unmatched")
            method = scope.get("method", "")
            metrics.REQUESTS.labels(method, route, str(status)).inc()
            metrics.REQUEST_SECONDS.labels(route).observe(seconds)
            level = logging.DEBUG if route in ("/healthz", "/readyz") else logging.INFO
            log.log(level, "request", extra={
                "method": method, "route": route, "status": status,
                "duration_ms": round(seconds * 1000, 1), "client": address,
            })  # fmt: skip
            logs.request_id.reset(token)

    async def ops_endpoint(self, path: str, scope: Scope, headers: dict[str, str], address: str, send: Send) -> None:
        if path == "/healthz":
            await _respond(send, 200, {"status": "alive"})
        elif path == "/readyz":
            problems = await run_in_threadpool(self.readiness)
            body: dict[str, Any] = {
                "status": "not ready" if problems else "ready",
                "checks": {name: problems.get(name, "ok") for name in self.checks},
            }
            if problems:
                ops_log.warning("not ready", extra={"failing": ", ".join(problems)})
            await _respond(send, 503 if problems else 200, body)
        elif self.metrics_allowed(address, headers.get("authorization")):
            payload, content_type = metrics.exposition()
            await _raw(send, 200, payload, content_type)
        else:
            ops_log.warning("metrics refused", extra={"reason": "address not allowed and no valid token",
                                                      "client": address})
            await _respond(send, 403, {"error": "forbidden",
                                       "message": "/metrics is served to loopback, metrics_networks or the token"})

    def readiness(self) -> dict[str, str]:
        problems = {}
        for name, check in self.checks.items():
            try:
                problem = check()
            except Exception as exc:  # a check that crashes is a failing check
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                problems[name] = logs.scrub(problem)
        return problems

    def metrics_allowed(self, address: str, authorization: str | None) -> bool:
        if in_networks(address, self.metrics_networks):
            return True
        if self.metrics_token and authorization:
            scheme, _, sent = authorization.partition(" ")
            return scheme.lower() == "bearer" and hmac.compare_digest(sent.strip(), self.metrics_token)
        return False


async def _respond(send: Send, status: int, body: dict[str, Any]) -> None:
    await _raw(send, status, json.dumps(body).encode(), "application/json")


async def _raw(send: Send, status: int, payload: bytes, content_type: str) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()), (b"content-length", str(len(payload)).encode()),
        (b"cache-control", b"no-store"),
    ]})  # fmt: skip
    await send({"type": "http.response.body", "body": payload})
