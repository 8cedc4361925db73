"""What the server path adds to a check's result: each alert write's outcome, and azaguard's alerts already in
the chart. Plain values, below the evaluation core (evaluate.CheckResult carries them) and alerts.py (which
makes them), so the core names them without importing the write stack."""

from __future__ import annotations

from typing import Literal

from msgspec import Struct

WriteOutcomeKind = Literal[
    "created", "exists", "updated", "closed", "retired", "skipped", "failed", "would-write"
]


class WriteOutcome(Struct, frozen=True):
    """What happened to one alert resource azaguard wanted in the chart.

    `retired`: a duplicate copy marked entered-in-error. `skipped`: not written, on purpose
    (e.g. the author Device when the token may not write it; the alerts then name azaguard's
    Device by identifier). `retryable` (for `failed`): whether running again can complete it.
    """

    resource_type: Literal["DetectedIssue", "Flag", "Device"]
    identifier: str  # the deterministic identifier value (idempotency key)
    rule: str | None
    outcome: WriteOutcomeKind
    reference: str | None = None  # "DetectedIssue/123" once on the server
    error: str | None = None
    retryable: bool = True
    note: str | None = None  # e.g. "adopted the oldest of 2 copies"
    # False: the server's answer did not show the resource written (no body): only the read-back can confirm it.
    confirmed: bool = True


class ExistingAlert(Struct, frozen=True):
    """An azaguard alert already in the chart (written by an earlier run)."""

    reference: str
    resource_type: Literal["DetectedIssue", "Flag"]
    rule: str | None
    status: str
    summary: str
    date: str | None
