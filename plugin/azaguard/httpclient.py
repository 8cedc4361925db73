"""The one place outbound HTTP clients are made: the house's policy is in the client, not at call sites.

Every client made here: redirects never followed (a 3xx must not carry a token to another host); every
response's body read under a Bound (httpbound.BoundedTransport), unless `bound=None` for a client whose
reads have caps of their own (a Bulk Data download, streamed to disk); requests retried as a RetryPolicy
allows, honouring Retry-After (httpretry.RetryTransport, which also consults a scan's shared Gate). The
stack: httpx.Client -> RetryTransport -> BoundedTransport -> the connection (HTTPTransport, a pinned or a
given transport). Proxies from the environment (HTTPS_PROXY, NO_PROXY) are honoured as httpx would, each
through the same stack. One verifying TLS context per process (loading the CA bundle costs ~40 ms).
"""

from __future__ import annotations

import functools
import http.cookiejar
import ssl
import time
from collections.abc import Callable, Mapping

import httpx
from httpx._utils import get_environment_proxies  # httpx's own reading of HTTP(S)_PROXY/NO_PROXY

from azaguard.httpbound import Bound, BoundedTransport
from azaguard.httpretry import Gate, RetryPolicy, RetryTransport

DEFAULT_TIMEOUT = 5.0  # per socket operation (httpx's default); each Bound caps it by its deadline


def client(
    *,
    bound: Bound | None,
    retry: RetryPolicy | None = None,
    transport: httpx.BaseTransport | None = None,
    gate: Gate | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.time,
    jitter: Callable[[float, float], float] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    headers: Mapping[str, str] | None = None,
    cookies: http.cookiejar.CookieJar | None = None,
    verify: ssl.SSLContext | None = None,
) -> httpx.Client:
    """An outbound client. `transport`: the connection to wrap (tests, pinned addresses, fault proxies),
    else one of its own; `retry`: the policy for idempotent requests carrying none (None: only requests
    that carry a policy are retried); `sleep`, `clock` (epoch seconds), `jitter` (a uniform draw between two
    numbers): injectable for tests."""
    context = verify or tls_context("https")

    def stack(inner: httpx.BaseTransport) -> httpx.BaseTransport:
        bounded = BoundedTransport(inner, bound) if bound is not None else inner
        return RetryTransport(bounded, retry, gate=gate, sleep=sleep, clock=clock, uniform=jitter)

    mounts: dict[str, httpx.BaseTransport | None] = {}
    if transport is None:  # as httpx does for a client of its own: proxies from the environment
        transport = httpx.HTTPTransport(verify=context)
        mounts = {pattern: None if proxy is None else stack(httpx.HTTPTransport(verify=context, proxy=proxy))
                  for pattern, proxy in get_environment_proxies().items()}  # fmt: skip
    return httpx.Client(
        transport=stack(transport), mounts=mounts, timeout=httpx.Timeout(timeout), headers=headers,
        cookies=cookies, follow_redirects=False,
    )


def no_cookies() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: for a client shared by several users' requests."""
    return http.cookiejar.CookieJar(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


def tls_context(scheme: str) -> ssl.SSLContext:
    """One verifying TLS context per process, made once: a new client per request (the app, a CLI run) would
    otherwise pay ~40 ms each time. An http:// server never uses TLS: it gets a context that trusts nothing
    (also one per process: even an empty context costs ~0.3 ms to make)."""
    return _https_context() if scheme == "https" else _untrusting_context()


@functools.cache
def _https_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@functools.cache
def _untrusting_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
