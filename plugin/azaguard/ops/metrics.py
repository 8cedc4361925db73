"""Prometheus metrics (prometheus-client, the process's default registry).

Labels are bounded: routes are templates, refusal reasons a fixed list, statuses numbers.
`install()` subscribes the FHIR client's and service's events; `/metrics` access is ops.http's job.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

from azaguard import events

_LATENCY = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUESTS = Counter("azaguard_http_requests", "HTTP requests served", ["method", "route", "status"])
REQUEST_SECONDS = Histogram("azaguard_http_request_duration_seconds", "HTTP request latency", ["route"],
                            buckets=_LATENCY)
HOOK_SECONDS = Histogram("azaguard_cds_hook_duration_seconds", "CDS Hooks evaluation latency", ["service"],
                         buckets=_LATENCY)
CDS_REFUSALS = Counter("azaguard_cds_refusals", "CDS Hooks calls refused", ["reason"])
FHIR_REQUESTS = Counter("azaguard_fhir_upstream_requests", "Requests to FHIR servers", ["method", "status"])
FHIR_SECONDS = Histogram("azaguard_fhir_upstream_duration_seconds", "FHIR server latency", ["method"],
                         buckets=_LATENCY)
ALERT_WRITES = Counter("azaguard_alert_writes", "Alert resources written to the chart", ["resource", "outcome"])
LAUNCHES = Counter("azaguard_launches", "SMART launches", ["outcome"])
ACTIVE_SESSIONS = Gauge("azaguard_active_sessions", "Sessions held by this process's session store")
AUDIT_FAILURES = Counter("azaguard_audit_failures", "Audit records that could not be stored")
REFUSALS = Counter("azaguard_refusals", "Requests refused by the app", ["reason"])


def _fhir(*, method: str, status: int | None, seconds: float, **_: Any) -> None:
    FHIR_REQUESTS.labels(method, str(status) if status is not None else "no-answer").inc()
    FHIR_SECONDS.labels(method).observe(seconds)


def _alert(*, resource_type: str, outcome: str, **_: Any) -> None:
    ALERT_WRITES.labels(resource_type, outcome).inc()


def install() -> None:
    events.listen(events.FHIR_RESPONSE, _fhir)
    events.listen(events.ALERT_WRITE, _alert)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST


def refused(logger: logging.Logger, event: str, reason: str, **fields: Any) -> None:
    """A refusal: one WARNING line saying why (`reason`, from a fixed list) and the refusals counter."""
    REFUSALS.labels(reason).inc()
    logger.warning(event, extra={"reason": reason, **fields})
