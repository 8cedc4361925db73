"""Never hammer the server: one back-off shared by every worker of a scan.

When the server answers 429 or 503, every worker waits (Retry-After when given, honoured for the
whole scan, not just the request that got it) and the number of patients in flight is halved; it
is eased back up by one after each run of successes. `SharedBackoff` is the Gate the scan's client's
retrying transport (httpretry.RetryTransport) consults around every attempt, retries included: it
holds requests back while the pause lasts and is told every answer (with its Retry-After, read there).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CONGESTED = frozenset({429, 503})
DEFAULT_PAUSE = 1.0  # seconds, when the server says "busy" without a Retry-After
MAX_PAUSE = 120.0  # a Retry-After beyond this is capped: the scan keeps control of its own time
EASE_AFTER = 8  # successful patients before one more may be in flight again


class SharedBackoff:
    """An adaptive limit on patients in flight plus a scan-wide pause."""

    def __init__(
        self,
        concurrency: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        ease_after: int = EASE_AFTER,
        max_pause: float = MAX_PAUSE,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.max_concurrency = concurrency
        self.limit = concurrency
        self.active = 0
        self.paused_until = 0.0
        self.congestions = 0  # how many 429/503 answers were seen
        self.paused_seconds = 0.0  # scan-wide pause requested in total
        self.lowest_limit = concurrency
        self._ease_after = ease_after
        self._max_pause = max_pause
        self._successes = 0
        self._clock = clock
        self._cond = threading.Condition()

    def acquire(self) -> None:
        """Wait for a slot (and for any pause to end) before starting a patient."""
        with self._cond:
            while True:
                wait = self.paused_until - self._clock()
                if wait <= 0 and self.active < self.limit:
                    self.active += 1
                    return
                self._cond.wait(timeout=wait if wait > 0 else None)

    def release(self, *, ok: bool) -> None:
        with self._cond:
            self.active -= 1
            if ok:
                self._successes += 1
                if self._successes >= self._ease_after and self.limit < self.max_concurrency:
                    self.limit += 1
                    self._successes = 0
            self._cond.notify_all()

    def wait_open(self) -> None:
        """Block while the scan-wide pause lasts (called before every HTTP request)."""
        with self._cond:
            while (wait := self.paused_until - self._clock()) > 0:
                self._cond.wait(timeout=wait)

    def answered(self, status: int, after: float | None) -> None:
        """Every answer of the scan's client (the Gate's side): 429/503 pause everyone."""
        if status in CONGESTED:
            self.congested(after)

    def congested(self, after: float | None) -> None:
        """The server said it is busy (`after`: its Retry-After in seconds): pause everyone, halve what is in flight."""
        pause = min(self._max_pause, DEFAULT_PAUSE if after is None else after)
        with self._cond:
            self.congestions += 1
            until = self._clock() + pause
            if until > self.paused_until:
                self.paused_seconds += until - max(self.paused_until, self._clock())
                self.paused_until = until
            self.limit = max(1, self.limit // 2)
            self.lowest_limit = min(self.lowest_limit, self.limit)
            self._successes = 0
            self._cond.notify_all()
