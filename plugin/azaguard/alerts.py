"""Findings → FHIR alerts in the chart (DetectedIssue + Flag), written idempotently.

Planning is pure (`plan_alerts`); writing (`write_alerts`) is the only I/O.
Idempotency: every alert carries a deterministic identifier derived from
(patient, rule, finding code, evidence set) and is written with conditional
create, so a retry, a re-run or a concurrent run finds it instead of adding a
copy. Lifecycle: an active hold keeps one active Flag per (rule, finding code);
when the hold clears the Flag is set inactive with a period end, never deleted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.flag import Flag

from azaguard import __version__
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import FhirConflict, FhirError
from azaguard.findings import Finding, Severity, Status

ALERT_ID_SYSTEM = "urn:azaguard:alert-id"
FLAG_ID_SYSTEM = "urn:azaguard:flag-id"
DEVICE_ID_SYSTEM = "urn:azaguard:device"
RULE_SYSTEM = "urn:azaguard:rule"
FINDING_SYSTEM = "urn:azaguard:finding"
MAPPINGS_TAG_SYSTEM = "urn:azaguard:mappings-version"
FLAG_CATEGORY = {
    "system": "http://terminology.hl7.org/CodeSystem/flag-category",
    "code": "drug",
    "display": "Drug",
}

# DetectedIssue.severity is high | moderate | low in R4.
_DI_SEVERITY = {
    Severity.CRITICAL: "high",
    Severity.HIGH: "high",
    Severity.MODERATE: "moderate",
    Severity.LOW: "low",
    Severity.INFO: "low",
}
_ALERTED = (Status.HOLD, Status.CAUTION, Status.CANNOT_EVALUATE)


WriteOutcomeKind = Literal["created", "exists", "updated", "closed", "failed", "would-write"]


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one alert resource azaguard wanted in the chart."""

    resource_type: Literal["DetectedIssue", "Flag", "Device"]
    identifier: str  # the deterministic identifier value (idempotency key)
    rule: str | None
    outcome: WriteOutcomeKind
    reference: str | None = None  # "DetectedIssue/123" once on the server
    error: str | None = None


@dataclass(frozen=True)
class ExistingAlert:
    """An azaguard alert already in the chart (written by an earlier run)."""

    reference: str
    resource_type: Literal["DetectedIssue", "Flag"]
    rule: str | None
    status: str
    summary: str
    date: str | None


@dataclass(frozen=True)
class PlannedWrite:
    action: Literal["create", "close"]
    resource_type: Literal["DetectedIssue", "Flag"]
    identifier: str
    rule: str
    resource: dict[str, Any]
    version: str | None = None  # for close: the Flag version to update (If-Match)


def alert_identifier(patient_ref: str, finding: Finding) -> str:
    """Deterministic per (patient, rule, finding code, evidence set): the idempotency key."""
    evidence = sorted({e.reference for e in finding.evidence})
    key = "|".join([patient_ref, finding.rule, finding.code, *evidence])
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def device_resource(mappings_version: str) -> dict[str, Any]:
    """The Device that authors azaguard's alerts: names the software and mappings versions."""
    resource = {
        "resourceType": "Device",
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": f"azaguard-{__version__}-mappings-{mappings_version}"}],
        "status": "active",
        "manufacturer": "azaguard",
        "deviceName": [{"name": "azaguard azathioprine safety checks", "type": "user-friendly-name"}],
        "version": [
            {"type": {"text": "software"}, "value": __version__},
            {"type": {"text": "mappings"}, "value": mappings_version},
        ],
    }
    Device.model_validate(resource)
    return resource


def plan_alerts(
    patient_ref: str,
    findings: Sequence[Finding],
    existing_flags: Iterable[dict[str, Any]],
    now: datetime,
    author: dict[str, Any],
) -> list[PlannedWrite]:
    """What to write for these findings, given azaguard's Flags already in the chart. Pure."""
    plan: list[PlannedWrite] = []
    for f in findings:
        if f.status in _ALERTED:
            plan.append(_detected_issue(patient_ref, f, now, author))
    holds = {(f.rule, f.code): f for f in findings if f.status is Status.HOLD}
    active_flags: dict[tuple[str, str], dict[str, Any]] = {}
    for flag in existing_flags:
        key = _flag_key(flag)
        if key is None or flag.get("status") != "active":
            continue
        if key in holds and key not in active_flags:
            active_flags[key] = flag
        elif key not in holds:
            plan.append(_close_flag(flag, now))
    for key, f in holds.items():
        if key not in active_flags:
            plan.append(_flag(patient_ref, f, now, author))
    return plan


def write_alerts(client: FhirClient, plan: Sequence[PlannedWrite], device: dict[str, Any]) -> list[WriteOutcome]:
    """Write the plan; every write's outcome is reported and a failure never stops the others."""
    outcomes: list[WriteOutcome] = []
    for item in plan:
        try:
            if item.action == "create":
                result = client.create(item.resource, if_none_exist=_identifier_query(item))
                outcome: Literal["created", "exists", "closed"] = "created" if result.created else "exists"
                outcomes.append(
                    WriteOutcome(
                        item.resource_type,
                        item.identifier,
                        item.rule,
                        outcome,
                        reference=_reference(item.resource_type, result.location, result.resource),
                    )
                )
            else:
                outcomes.append(_close(client, item))
        except FhirError as exc:
            outcomes.append(WriteOutcome(item.resource_type, item.identifier, item.rule, "failed", error=str(exc)))
    return outcomes


def ensure_device(client: FhirClient, device: dict[str, Any]) -> str:
    """Conditional create of the author Device; returns its reference."""
    ident = device["identifier"][0]
    result = client.create(device, if_none_exist=f"identifier={ident['system']}|{ident['value']}")
    ref = _reference("Device", result.location, result.resource)
    if ref is None:
        raise FhirError("the server did not say where the azaguard Device is")
    return ref


def dry_run(plan: Sequence[PlannedWrite]) -> list[WriteOutcome]:
    return [WriteOutcome(p.resource_type, p.identifier, p.rule, "would-write") for p in plan]


def fetch_alert_resources(client: FhirClient, patient_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """azaguard's DetectedIssues and Flags for this patient (filtered on our identifier systems)."""
    issues = client.search("DetectedIssue", {"patient": f"Patient/{patient_id}", "_count": "200"})
    flags = client.search("Flag", {"patient": f"Patient/{patient_id}", "_count": "200"})
    return own_alerts(issues, flags)


def own_alerts(
    issues: Iterable[dict[str, Any]], flags: Iterable[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """azaguard's own DetectedIssues and Flags among a patient's (e.g. those gather() pre-fetched)."""
    return (
        [r for r in issues if _has_identifier(r, ALERT_ID_SYSTEM)],
        [r for r in flags if _has_identifier(r, FLAG_ID_SYSTEM)],
    )


def summarise_existing(issues: Iterable[dict[str, Any]], flags: Iterable[dict[str, Any]]) -> list[ExistingAlert]:
    out = []
    for r in issues:
        out.append(
            ExistingAlert(
                f"DetectedIssue/{r.get('id')}",
                "DetectedIssue",
                _rule_of(r),
                str(r.get("status")),
                str((r.get("code") or {}).get("text") or ""),
                r.get("identifiedDateTime"),
            )
        )
    for r in flags:
        out.append(
            ExistingAlert(
                f"Flag/{r.get('id')}",
                "Flag",
                _rule_of(r),
                str(r.get("status")),
                str((r.get("code") or {}).get("text") or ""),
                (r.get("period") or {}).get("start"),
            )
        )
    return sorted(out, key=lambda a: a.date or "", reverse=True)


# --- building resources ------------------------------------------------------------


def _detected_issue(patient_ref: str, f: Finding, now: datetime, author: dict[str, Any]) -> PlannedWrite:
    identifier = alert_identifier(patient_ref, f)
    detail = f.detail
    if f.missing:
        detail += " Missing: " + "; ".join(f.missing) + "."
    detail += f" (azaguard rule {f.rule}, mappings {f.mappings_version})"
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "meta": {"tag": [{"system": MAPPINGS_TAG_SYSTEM, "code": f.mappings_version}]},
        "identifier": [{"system": ALERT_ID_SYSTEM, "value": identifier}],
        "status": "final",
        "code": {
            "coding": [
                {"system": RULE_SYSTEM, "code": f.rule},
                {"system": FINDING_SYSTEM, "code": f"{f.rule}/{f.code}", "display": f.status.value},
            ],
            "text": f.summary,
        },
        # cannot-evaluate is always low: it asks for data, it does not assert danger.
        "severity": "low" if f.status is Status.CANNOT_EVALUATE else _DI_SEVERITY[f.severity],
        "patient": {"reference": patient_ref},
        "identifiedDateTime": now.isoformat(),
        "author": author,
        "detail": detail,
    }
    if f.implicated:
        resource["implicated"] = [{"reference": r} for r in f.implicated]
    if f.evidence:
        resource["evidence"] = [
            {"detail": [{"reference": e.reference, "display": _evidence_display(e)} for e in f.evidence]}
        ]
    DetectedIssue.model_validate(resource)
    return PlannedWrite("create", "DetectedIssue", identifier, f.rule, resource)


def _flag(patient_ref: str, f: Finding, now: datetime, author: dict[str, Any]) -> PlannedWrite:
    identifier = alert_identifier(patient_ref, f)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "meta": {"tag": [{"system": MAPPINGS_TAG_SYSTEM, "code": f.mappings_version}]},
        "identifier": [{"system": FLAG_ID_SYSTEM, "value": identifier}],
        "status": "active",
        "category": [{"coding": [FLAG_CATEGORY]}],
        "code": {
            "coding": [
                {"system": RULE_SYSTEM, "code": f.rule},
                {"system": FINDING_SYSTEM, "code": f"{f.rule}/{f.code}"},
            ],
            "text": f.summary,
        },
        "subject": {"reference": patient_ref},
        "period": {"start": now.isoformat()},
        "author": author,
    }
    Flag.model_validate(resource)
    return PlannedWrite("create", "Flag", identifier, f.rule, resource)


def _close_flag(flag: dict[str, Any], now: datetime) -> PlannedWrite:
    closed = {k: v for k, v in flag.items() if k != "meta"}
    closed["meta"] = {"tag": (flag.get("meta") or {}).get("tag", [])}
    closed["status"] = "inactive"
    closed["period"] = {**(flag.get("period") or {}), "end": now.isoformat()}
    Flag.model_validate(closed)
    key = _flag_key(flag)
    ident = next(i["value"] for i in flag.get("identifier", []) if i.get("system") == FLAG_ID_SYSTEM)
    version = (flag.get("meta") or {}).get("versionId")
    return PlannedWrite("close", "Flag", ident, key[0] if key else "", closed, version=version)


def _close(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    try:
        result = client.update(item.resource, if_match=f'W/"{item.version}"' if item.version else None)
    except FhirConflict:
        # Someone changed the Flag since we read it: re-read, and close it only if still active.
        current = client.read("Flag", str(item.resource["id"]))
        if current.get("status") != "active":
            return WriteOutcome("Flag", item.identifier, item.rule, "exists", reference=f"Flag/{current.get('id')}")
        retry = {**current, "status": "inactive", "period": item.resource["period"]}
        version = (current.get("meta") or {}).get("versionId")
        result = client.update(retry, if_match=f'W/"{version}"' if version else None)
    return WriteOutcome(
        "Flag",
        item.identifier,
        item.rule,
        "closed",
        reference=_reference("Flag", result.location, result.resource) or f"Flag/{item.resource['id']}",
    )


def _identifier_query(item: PlannedWrite) -> str:
    system = ALERT_ID_SYSTEM if item.resource_type == "DetectedIssue" else FLAG_ID_SYSTEM
    return f"identifier={system}|{item.identifier}"


def _reference(rtype: str, location: str | None, resource: dict[str, Any] | None) -> str | None:
    if resource and resource.get("id"):
        return f"{rtype}/{resource['id']}"
    if location:
        parts = location.split("/_history/")[0].rstrip("/").split("/")
        if len(parts) >= 2:
            return f"{parts[-2]}/{parts[-1]}"
    return None


def _has_identifier(resource: dict[str, Any], system: str) -> bool:
    return any(i.get("system") == system for i in resource.get("identifier") or [] if isinstance(i, dict))


def _codes(resource: dict[str, Any], system: str) -> list[str]:
    return [c.get("code") for c in (resource.get("code") or {}).get("coding") or [] if c.get("system") == system]


def _rule_of(resource: dict[str, Any]) -> str | None:
    codes = _codes(resource, RULE_SYSTEM)
    return codes[0] if codes else None


def _flag_key(flag: dict[str, Any]) -> tuple[str, str] | None:
    codes = _codes(flag, FINDING_SYSTEM)
    if not codes or "/" not in codes[0]:
        return None
    rule, code = codes[0].split("/", 1)
    return rule, code


def _evidence_display(e: Any) -> str:
    parts = [e.description]
    if e.value:
        parts.append(e.value)
    if e.normalised and e.normalised != e.value:
        parts.append(f"= {e.normalised}")
    if e.date:
        parts.append(f"on {e.date[:10]}")
    return " ".join(parts)
