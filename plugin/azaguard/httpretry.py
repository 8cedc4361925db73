"""Temporary failures retried, honouring Retry-After: one httpx transport, the one Retry-After reader.

`RetryTransport` wraps the transport of an outbound client (httpclient.client). A request is retried
when its policy allows: by default idempotent methods under the client's policy; a request may carry its
own policy, or None (never retried), in the `RETRY` extension (the FHIR client retries a batch of reads,
a conditional create or a transaction of PUTs, never a plain POST). What is retried: the statuses the
policy names and transport failures (timeouts, connection errors, a body cut short or slower than the
client's bound); never a body over the size cap (it will be as large next time). The wait: Retry-After
(delta-seconds or HTTP-date) when the answer gives one, else exponential backoff with full jitter (spreads
many clients so they do not return in step), capped at `max_backoff` either way.

A `Gate` (scan/backoff.SharedBackoff) is consulted around every attempt: it may hold a request back (a
pause shared by every worker of a scan) and is told each answer. Bulk Data's 202 polling cadence is
protocol, not a retry: it stays a loop there and reads Retry-After here (`retry_after`).
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Protocol

import httpx

from azaguard.httpbound import ResponseTooLarge, decoded_headers

log = logging.getLogger(__name__)

RETRY = "azaguard.retry"  # request extension: this request's RetryPolicy, or None: not retried
ATTEMPT = "azaguard.attempt"  # request extension: called after every attempt (Attempted)
IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
Attempted = Callable[[httpx.Request, int | None, float], None]  # (request, status or None: no answer, seconds)


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date, from `now` in epoch seconds);
    None if absent or unreadable. A date in the past is 0."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def retry_after(response: httpx.Response, now: float) -> float | None:
    """The seconds a response's Retry-After header asks for (see parse_retry_after)."""
    return parse_retry_after(response.headers.get("Retry-After"), now)


@dataclass(frozen=True)
class RetryPolicy:
    statuses: frozenset[int]  # answers meaning "busy or briefly down"
    max_retries: int = 3  # attempts = 1 + max_retries
    backoff: float = 0.5  # seconds: the first backoff's ceiling, doubled per attempt
    max_backoff: float = 10.0  # no wait is longer, Retry-After included

    def delay(self, attempt: int, after: float | None, uniform: Callable[[float, float], float]) -> float:
        """The wait before retry number `attempt + 1`: Retry-After when given, else full jitter; both capped."""
        if after is not None:
            return min(after, self.max_backoff)
        return uniform(0.0, min(self.max_backoff, self.backoff * 2**attempt))


class Gate(Protocol):
    """Shared by the clients of one run (scan): may hold requests back; told every answer."""

    def wait_open(self) -> None: ...

    def answered(self, status: int, after: float | None) -> None: ...


class RetryTransport(httpx.BaseTransport):
    def __init__(
        self,
        inner: httpx.BaseTransport,
        policy: RetryPolicy | None = None,
        *,
        gate: Gate | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        uniform: Callable[[float, float], float] | None = None,
    ) -> None:
        """`policy`: for idempotent requests that carry none; `clock`: epoch seconds (for HTTP-dates)."""
        self.inner, self.policy, self.gate = inner, policy, gate
        self._sleep, self._clock = sleep, clock
        self._uniform = uniform or random.SystemRandom().uniform

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        policy = self._policy_for(request)
        attempted: Attempted | None = request.extensions.get(ATTEMPT)
        attempt = 0
        while True:
            if self.gate is not None:
                self.gate.wait_open()
            started = time.perf_counter()
            try:
                response = self.inner.handle_request(request)
                if policy is not None and response.is_success:
                    response = _read(response, request)  # a body cut short or too slow is retried too
            except ResponseTooLarge:
                if attempted is not None:
                    attempted(request, None, time.perf_counter() - started)
                raise
            except httpx.TransportError:
                if attempted is not None:
                    attempted(request, None, time.perf_counter() - started)
                if policy is None or attempt >= policy.max_retries:
                    raise
                delay = policy.delay(attempt, None, self._uniform)
            else:
                if attempted is not None:
                    attempted(request, response.status_code, time.perf_counter() - started)
                after = retry_after(response, self._clock())
                if self.gate is not None:
                    self.gate.answered(response.status_code, after)
                if policy is None or response.status_code not in policy.statuses or attempt >= policy.max_retries:
                    return response
                response.close()
                delay = policy.delay(attempt, after, self._uniform)
            # The host only: a path names patients.
            log.info("retrying %s %s in %.2f s (attempt %d)", request.method, request.url.host, delay, attempt + 2)
            self._sleep(delay)
            attempt += 1

    def _policy_for(self, request: httpx.Request) -> RetryPolicy | None:
        if RETRY in request.extensions:
            given = request.extensions[RETRY]
            return given if isinstance(given, RetryPolicy) else None
        return self.policy if request.method in IDEMPOTENT else None

    def close(self) -> None:
        self.inner.close()


def _read(response: httpx.Response, request: httpx.Request) -> httpx.Response:
    """The response with its body read (decoded), as a new response holding it."""
    response.request = request
    try:
        body = response.read()
    finally:
        response.close()
    return httpx.Response(response.status_code, headers=decoded_headers(response), content=body,
                          extensions=response.extensions)
