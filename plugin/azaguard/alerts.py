"""Findings → FHIR alerts in the chart (DetectedIssue + Flag), written idempotently.

Planning is pure (`plan_alerts`); writing (`write_alerts`) is the only I/O.
Idempotency: every alert carries a deterministic identifier derived from
(patient, rule, finding code, evidence set) and a deterministic resource id
derived from it, and is written with PUT (update-as-create): a retry, a re-run
or any number of concurrent runs converge on that one resource. Conditional
create is not atomic on every server, so it is only the fallback for servers
that refuse client-assigned ids; there, and for copies left by older versions,
duplicates are tolerated: the oldest is adopted, later copies are marked
entered-in-error, and the run says so. Only azaguard's own alerts count
(`is_own`): a resource carrying azaguard's identifier system but not written by
azaguard is reported, never adopted. Lifecycle: an active hold keeps one active
Flag per (rule, finding code); when the hold clears the Flag is set inactive
with a period end, never deleted; a later episode gets a new Flag id and identifier (`<identifier>-<n>`),
so a conditional create on a server that refuses client ids never matches the earlier, inactive episode.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from fhir.resources.R4B.detectedissue import DetectedIssue
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.flag import Flag

from azaguard import __version__
from azaguard.fhir.client import FhirClient
from azaguard.fhir.errors import (
    AuthDenied,
    AuthExpired,
    FhirConflict,
    FhirError,
    FhirNotFound,
    FhirProtocolError,
    FhirRejected,
)
from azaguard.fhirtypes.concept import raw_codings
from azaguard.fhirtypes.reference import parse_reference, ref_of
from azaguard.findings import Evidence, Finding, Severity, Status
from azaguard.outcomes import ExistingAlert as ExistingAlert  # re-exported: what the writes return
from azaguard.outcomes import WriteOutcome as WriteOutcome
from azaguard.outcomes import WriteOutcomeKind
from azaguard.verdict import ACTION_STATUSES

if TYPE_CHECKING:
    from azaguard.verdict import Action, Verdict

ALERT_ID_SYSTEM = "urn:azaguard:alert-id"
FLAG_ID_SYSTEM = "urn:azaguard:flag-id"
DEVICE_ID_SYSTEM = "urn:azaguard:device"
RULE_SYSTEM = "urn:azaguard:rule"
FINDING_SYSTEM = "urn:azaguard:finding"
MAPPINGS_TAG_SYSTEM = "urn:azaguard:mappings-version"
# Marks a resource as written by azaguard (with the author Device): what `is_own` looks for.
SOURCE_TAG = {"system": "urn:azaguard:source", "code": "azaguard"}
META_SOURCE = "urn:azaguard"
ID_PREFIX = "azg-"  # deterministic resource ids: azg-<identifier>[-<episode>], azg-device-<hash>
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


@dataclass(frozen=True)
class PlannedWrite:
    """create: PUT the new resource; close: set a Flag inactive; exists: already there (no request);
    retire: mark a duplicate copy entered-in-error."""

    action: Literal["create", "close", "exists", "retire"]
    resource_type: Literal["DetectedIssue", "Flag"]
    identifier: str
    rule: str
    resource: dict[str, Any]
    version: str | None = None  # for close/retire: the version to update (If-Match)
    note: str | None = None


def alert_identifier(patient_ref: str, finding: Finding) -> str:
    """Deterministic per (patient, rule, finding code, evidence set): the idempotency key."""
    evidence = sorted({e.reference for e in finding.evidence})
    key = "|".join([patient_ref, finding.rule, finding.code, *evidence])
    return hashlib.sha256(key.encode()).hexdigest()[:40]


def episode_identifier(identifier: str, episode: int = 0) -> str:
    """A Flag's identifier value: the alert's for its first episode, `-1`, `-2`, ... after (as its id)."""
    return identifier + (f"-{episode}" if episode else "")


def resource_id(identifier: str, episode: int = 0) -> str:
    """The deterministic resource id of an alert (a Flag's later episodes get -1, -2, ...)."""
    return f"{ID_PREFIX}{identifier}" + (f"-{episode}" if episode else "")


def device_id(device: dict[str, Any]) -> str:
    value = str(device["identifier"][0]["value"])
    return f"{ID_PREFIX}device-" + hashlib.sha256(value.encode()).hexdigest()[:32]


def device_resource(mappings_version: str) -> dict[str, Any]:
    """The Device that authors azaguard's alerts: names the software and mappings versions."""
    resource: dict[str, Any] = {
        "resourceType": "Device",
        "meta": {"source": META_SOURCE, "tag": [dict(SOURCE_TAG)]},
        "identifier": [{"system": DEVICE_ID_SYSTEM, "value": f"azaguard-{__version__}-mappings-{mappings_version}"}],
        "status": "active",
        "manufacturer": "azaguard",
        "deviceName": [{"name": "azaguard azathioprine safety checks", "type": "user-friendly-name"}],
        "version": [
            {"type": {"text": "software"}, "value": __version__},
            {"type": {"text": "mappings"}, "value": mappings_version},
        ],
    }
    resource["id"] = device_id(resource)
    Device.model_validate(resource)
    return resource


def logical_author(device: dict[str, Any]) -> dict[str, Any]:
    """azaguard's Device named by identifier (when it is not, or cannot be, on the server)."""
    return {"identifier": dict(device["identifier"][0]), "display": "azaguard"}


def is_own(resource: dict[str, Any]) -> bool:
    """Written by azaguard: authored by azaguard's Device, and marked as ours (tag or meta.source) or
    carrying azaguard's alert identifier (a server may drop `meta` on write: the body survives).

    A resource carrying azaguard's identifier system without azaguard's author is someone else's:
    it is reported, never adopted, closed or retired.
    """
    meta = resource.get("meta") if isinstance(resource.get("meta"), dict) else {}
    tags = [t for t in (meta or {}).get("tag") or [] if isinstance(t, dict)]
    marked = any(t.get("system") == SOURCE_TAG["system"] and t.get("code") == SOURCE_TAG["code"] for t in tags)
    marked = marked or str((meta or {}).get("source") or "").startswith(META_SOURCE)
    marked = marked or _has_identifier(resource, ALERT_ID_SYSTEM) or _has_identifier(resource, FLAG_ID_SYSTEM)
    author = resource.get("author")
    if not marked or not isinstance(author, dict):
        return False
    ident = author.get("identifier")
    by_identifier = isinstance(ident, dict) and ident.get("system") == DEVICE_ID_SYSTEM
    by_reference = str(author.get("reference") or "").startswith(f"Device/{ID_PREFIX}device-")
    return by_identifier or by_reference


def plan_alerts(
    patient_ref: str,
    findings: Sequence[Finding],
    existing_flags: Iterable[dict[str, Any]],
    now: datetime,
    author: dict[str, Any],
    existing_issues: Iterable[dict[str, Any]] = (),
    *,
    verdict: Verdict,
) -> list[PlannedWrite]:
    """What to write for these findings, given azaguard's own alerts already in the chart. Pure.

    `existing_*` must be azaguard's own (see `is_own`). Duplicates among them (left by a server
    whose conditional create is not atomic, or by older versions) are resolved here: the oldest
    copy is kept, later copies are retired (entered-in-error).
    `verdict` (verdict.build_verdict, absolute dates) words the alerts as the clinician reads them
    on the page: the one wording (a finding carries no text of its own).
    """
    wording = {(a.rule, a.code): a for a in verdict.actions}
    plan: list[PlannedWrite] = []
    issues_by_id = _group(existing_issues, ALERT_ID_SYSTEM)
    for f in findings:
        if f.status not in ACTION_STATUSES:
            continue
        ident = alert_identifier(patient_ref, f)
        copies = [r for r in issues_by_id.get(ident, []) if r.get("status") != "entered-in-error"]
        if copies:
            plan += _keep_oldest("DetectedIssue", ident, f.rule, copies, now)
        else:
            plan.append(_detected_issue(patient_ref, f, now, author, wording[(f.rule, f.code)]))
    holds = {(f.rule, f.code): f for f in findings if f.status is Status.HOLD}
    flags = list(existing_flags)
    flags_by_id = _group(flags, FLAG_ID_SYSTEM)
    active: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for flag in flags:
        key = _flag_key(flag)
        if key is None or flag.get("status") != "active":
            continue
        if key in holds:
            active[key].append(flag)
        else:
            plan.append(_close_flag(flag, now))
    for key, f in holds.items():
        if active.get(key):
            plan += _keep_oldest("Flag", alert_identifier(patient_ref, f), f.rule, active[key], now)
        else:
            episode = _next_episode(flags_by_id, alert_identifier(patient_ref, f))
            plan.append(_flag(patient_ref, f, now, author, wording[(f.rule, f.code)], episode=episode))
    return plan


def write_alerts(client: FhirClient, plan: Sequence[PlannedWrite], device: dict[str, Any]) -> list[WriteOutcome]:
    """Write the plan; every write's outcome is reported and a failure never stops the others."""
    outcomes: list[WriteOutcome] = []
    for item in plan:
        try:
            if item.action == "create":
                outcomes.append(_create(client, item))
            elif item.action == "close":
                outcomes.append(_close(client, item))
            elif item.action == "retire":
                outcomes.append(_retire(client, item))
            else:
                ref = f"{item.resource_type}/{item.resource.get('id')}"
                kind: WriteOutcomeKind = "exists"
                outcomes.append(WriteOutcome(item.resource_type, item.identifier, item.rule, kind, ref, note=item.note))
        except FhirError as exc:
            outcomes.append(_failed(item.resource_type, item.identifier, item.rule, exc))
    return outcomes


def ensure_device(client: FhirClient, device: dict[str, Any]) -> tuple[dict[str, Any], WriteOutcome]:
    """The author reference for azaguard's alerts, and what happened to the Device.

    The Device has a deterministic id: read it, else PUT it (concurrent runs converge on one
    Device). When the server will not have it (a patient token may not write shared resources,
    or the server is unavailable), the alerts name the Device by identifier instead, so they are
    still written and still recognisably azaguard's.
    """
    ident = str(device["identifier"][0]["value"])
    rid = str(device["id"])
    reference = {"reference": f"Device/{rid}", "identifier": dict(device["identifier"][0]), "display": "azaguard"}
    try:
        try:
            client.read("Device", rid)
            return reference, WriteOutcome("Device", ident, None, "exists", reference=f"Device/{rid}")
        except FhirNotFound:
            pass
        result = client.update(device)
        kind: WriteOutcomeKind = "created" if result.created else "exists"
        written = _reference("Device", result.location, result.resource) or f"Device/{rid}"
        if written != f"Device/{rid}":  # the server ignored the id: the alerts name the Device it stored
            reference = {**reference, "reference": written}
        return reference, WriteOutcome("Device", ident, None, kind, reference=written)
    except FhirError as exc:
        why = f"the author Device is not on the server ({exc}); the alerts name it by identifier"
        return logical_author(device), WriteOutcome("Device", ident, None, "skipped", error=why, retryable=False)


_EXPECTED = {"created": "live", "exists": "live", "closed": "inactive", "retired": "entered-in-error"}


def confirm_writes(
    outcomes: Sequence[WriteOutcome], chart: Iterable[dict[str, Any]] | None, why_unread: str | None = None
) -> list[WriteOutcome]:
    """The outcomes held against the chart as read back after writing (`chart`: every DetectedIssue and
    Flag of the patient; None when it could not be read, `why_unread` says why). A write the chart does
    not show as reported failed, whatever the server answered; without a read-back, a write whose answer
    did not show the resource is unconfirmed, hence failed. Pure."""
    by_ref = {ref_of(r): r for r in chart or ()}
    out: list[WriteOutcome] = []
    for w in outcomes:
        want = _EXPECTED.get(w.outcome)
        if w.resource_type == "Device" or want is None or w.reference is None:
            out.append(w)
            continue
        if chart is None:
            if w.confirmed:
                out.append(w)
            else:
                out.append(_unconfirmed(w, f"the server's answer did not show {w.reference} and the chart could "
                                           f"not be read back to confirm it ({why_unread})"))
            continue
        found = by_ref.get(w.reference)
        status = found.get("status") if found is not None else None
        if want == "live":
            ok = found is not None and _live(w.resource_type, found)
        else:
            ok = status == want or (want == "entered-in-error" and found is None)
        if not ok:
            seen = "does not hold it" if found is None else f"shows it {status}"
            out.append(_unconfirmed(w, f"the server answered the write of {w.reference} as done ({w.outcome}), "
                                       f"but the chart read back {seen}: the write did not happen"))
        else:
            out.append(w)
    return out


def _unconfirmed(w: WriteOutcome, why: str) -> WriteOutcome:
    return WriteOutcome(w.resource_type, w.identifier, w.rule, "failed", w.reference, error=why, retryable=True,
                        note=w.note, confirmed=False)


def dry_run(plan: Sequence[PlannedWrite]) -> list[WriteOutcome]:
    return [
        WriteOutcome(
            p.resource_type,
            p.identifier,
            p.rule,
            "exists" if p.action == "exists" else "would-write",
            reference=f"{p.resource_type}/{p.resource.get('id')}" if p.action != "create" else None,
            note=p.note,
        )
        for p in plan
    ]


def fetch_alert_resources(client: FhirClient, patient_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """DetectedIssues and Flags for this patient carrying azaguard's identifier systems (own or not:
    split them with `is_own`)."""
    issues = client.search("DetectedIssue", {"patient": f"Patient/{patient_id}", "_count": "200"})
    flags = client.search("Flag", {"patient": f"Patient/{patient_id}", "_count": "200"})
    return own_alerts(issues, flags)


def own_alerts(
    issues: Iterable[dict[str, Any]], flags: Iterable[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The DetectedIssues and Flags carrying azaguard's identifier systems among a patient's (e.g. those
    gather() pre-fetched); own or not: split them with `is_own`."""
    return (
        [r for r in issues if _has_identifier(r, ALERT_ID_SYSTEM)],
        [r for r in flags if _has_identifier(r, FLAG_ID_SYSTEM)],
    )


def summarise_existing(issues: Iterable[dict[str, Any]], flags: Iterable[dict[str, Any]]) -> list[ExistingAlert]:
    out = []
    for r in issues:
        out.append(
            ExistingAlert(
                ref_of(r),
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
                ref_of(r),
                "Flag",
                _rule_of(r),
                str(r.get("status")),
                str((r.get("code") or {}).get("text") or ""),
                (r.get("period") or {}).get("start"),
            )
        )
    return sorted(out, key=lambda a: a.date or "", reverse=True)


# --- building resources ------------------------------------------------------------


def _detected_issue(
    patient_ref: str, f: Finding, now: datetime, author: dict[str, Any], action: Action
) -> PlannedWrite:
    identifier = alert_identifier(patient_ref, f)
    detail = _detail_text(f, action)
    resource: dict[str, Any] = {
        "resourceType": "DetectedIssue",
        "id": resource_id(identifier),
        "meta": _meta(f),
        "identifier": [{"system": ALERT_ID_SYSTEM, "value": identifier}],
        "status": "final",
        "code": {
            "coding": [
                {"system": RULE_SYSTEM, "code": f.rule},
                {"system": FINDING_SYSTEM, "code": f"{f.rule}/{f.code}", "display": f.status.value},
            ],
            "text": action.summary,
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
        rows = action.evidence
        shown = [_row_display(rows[i]) if i < len(rows) else _evidence_display(e) for i, e in enumerate(f.evidence)]
        resource["evidence"] = [
            {"detail": [{"reference": e.reference, "display": d} for e, d in zip(f.evidence, shown, strict=True)]}
        ]
    DetectedIssue.model_validate(resource)
    return PlannedWrite("create", "DetectedIssue", identifier, f.rule, resource)


def _meta(f: Finding) -> dict[str, Any]:
    return {"source": META_SOURCE, "tag": [{"system": MAPPINGS_TAG_SYSTEM, "code": f.mappings_version}, SOURCE_TAG]}


def _flag(
    patient_ref: str,
    f: Finding,
    now: datetime,
    author: dict[str, Any],
    action: Action,
    *,
    episode: int = 0,
) -> PlannedWrite:
    base = alert_identifier(patient_ref, f)
    identifier = episode_identifier(base, episode)
    resource: dict[str, Any] = {
        "resourceType": "Flag",
        "id": resource_id(base, episode),
        "meta": _meta(f),
        "identifier": [{"system": FLAG_ID_SYSTEM, "value": identifier}],
        "status": "active",
        "category": [{"coding": [FLAG_CATEGORY]}],
        "code": {
            "coding": [
                {"system": RULE_SYSTEM, "code": f.rule},
                {"system": FINDING_SYSTEM, "code": f"{f.rule}/{f.code}"},
            ],
            "text": action.summary,
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


# A 409/412 (someone else wrote the resource in between) is tried again this many times in all.
CONFLICT_ATTEMPTS = 4


def _close(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    resource, version = item.resource, item.version
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            result = client.update(resource, if_match=f'W/"{version}"' if version else None)
            break
        except FhirConflict:
            if attempt + 1 == CONFLICT_ATTEMPTS:
                raise
            # Someone changed the Flag since we read it: re-read, and close it only if still active.
            client.pause(attempt)
            current = client.read("Flag", str(item.resource["id"]))
            if current.get("status") != "active":
                ref = f"Flag/{current.get('id')}"
                return WriteOutcome("Flag", item.identifier, item.rule, "exists", reference=ref)
            resource = {**current, "status": "inactive", "period": item.resource["period"]}
            version = (current.get("meta") or {}).get("versionId")
    return WriteOutcome(
        "Flag",
        item.identifier,
        item.rule,
        "closed",
        reference=_reference("Flag", result.location, result.resource) or f"Flag/{item.resource['id']}",
        confirmed=result.resource is not None,
    )


# PUT of a new id refused this way: the server does not accept client-assigned ids.
_NO_CLIENT_IDS = frozenset({400, 405, 422, 501})


def _create(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    """PUT with the deterministic id (race-free); conditional create where client ids are refused."""
    ref = f"{item.resource_type}/{item.resource['id']}"
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            result = client.update(item.resource)
            break
        except FhirConflict:  # a concurrent writer of the same id: try again (bounded)
            if attempt + 1 == CONFLICT_ATTEMPTS:
                raise
            client.pause(attempt)
        except FhirRejected as exc:
            if exc.status not in _NO_CLIENT_IDS or isinstance(exc, FhirNotFound):
                raise
            return _conditional_create(client, item)
    written = _reference(item.resource_type, result.location, result.resource)
    if written is not None and written != ref:
        # The server stored it under an id of its own (client ids ignored on PUT): find every copy.
        return _adopt_copies(client, item, f"the server ignored the id {item.resource['id']} and stored {written}")
    # 200: a concurrent run (or a retried request) created it first; still exactly one.
    kind: WriteOutcomeKind = "created" if result.created else "exists"
    return WriteOutcome(item.resource_type, item.identifier, item.rule, kind, reference=ref,
                        confirmed=result.resource is not None)


def _adopt_copies(client: FhirClient, item: PlannedWrite, why: str) -> WriteOutcome:
    """After a write that landed under another id: azaguard's copies of this alert, the oldest kept and
    the rest retired (concurrent runs all converge on the same one); none → the conditional create."""
    system = ALERT_ID_SYSTEM if item.resource_type == "DetectedIssue" else FLAG_ID_SYSTEM
    found = client.search(item.resource_type, {"identifier": f"{system}|{item.identifier}"})
    mine = [r for r in found if is_own(r) and _live(item.resource_type, r)]
    if not mine:
        return _conditional_create(client, item)
    keep, *extra = _oldest_first(mine)
    for copy in extra:
        _retire(client, _retire_item(item.resource_type, item.identifier, item.rule, copy))
    note = why + (f"; {len(extra)} concurrent cop(y/ies) marked entered-in-error" if extra else "")
    return WriteOutcome(item.resource_type, item.identifier, item.rule, "created",
                        reference=f"{item.resource_type}/{keep.get('id')}", note=note)


def _live(rtype: str, resource: dict[str, Any]) -> bool:
    """A copy that still alerts: a DetectedIssue not entered-in-error, an active Flag."""
    status = resource.get("status")
    return status == "active" if rtype == "Flag" else status != "entered-in-error"


def _conditional_create(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    """POST If-None-Exist (not atomic everywhere): several matches are resolved, never a jam."""
    resource = {k: v for k, v in item.resource.items() if k != "id"}
    try:
        result = client.create(resource, if_none_exist=_identifier_query(item))
    except FhirConflict:
        return _resolve_matches(client, item)
    kind: WriteOutcomeKind = "created" if result.created else "exists"
    reference = _reference(item.resource_type, result.location, result.resource)
    if kind == "exists" and result.resource is not None and not is_own(result.resource):
        raise FhirRejected(
            f"{reference} carries azaguard's identifier but its author is not azaguard's Device; the server "
            "will not create azaguard's own alert beside it (remove or correct that resource)",
            status=412,
        )
    return WriteOutcome(item.resource_type, item.identifier, item.rule, kind, reference=reference,
                        confirmed=result.resource is not None)


def _resolve_matches(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    """The conditional create matched several resources: adopt azaguard's oldest copy, retire the rest."""
    system = ALERT_ID_SYSTEM if item.resource_type == "DetectedIssue" else FLAG_ID_SYSTEM
    found = client.search(item.resource_type, {"identifier": f"{system}|{item.identifier}"})
    mine = [r for r in found if is_own(r) and r.get("status") != "entered-in-error"]
    if not mine:
        raise FhirRejected(
            f"{len(found)} resources not written by azaguard carry its identifier for this alert, so the "
            "server refuses to create it; re-running will not help (remove or correct them)",
            status=412,
        )
    keep, *extra = _oldest_first(mine)
    retired = 0
    for copy in extra:
        _retire(client, _retire_item(item.resource_type, item.identifier, item.rule, copy))
        retired += 1
    note = f"adopted the oldest of {len(mine)} copies; {retired} later cop(y/ies) marked entered-in-error"
    return WriteOutcome(
        item.resource_type, item.identifier, item.rule, "exists", reference=f"{item.resource_type}/{keep.get('id')}",
        note=note,
    )


def _retire(client: FhirClient, item: PlannedWrite) -> WriteOutcome:
    """Mark a duplicate copy entered-in-error (If-Match: only the version that was judged a copy)."""
    resource, version = item.resource, item.version
    ref = f"{item.resource_type}/{item.resource['id']}"
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            client.update(resource, if_match=f'W/"{version}"' if version else None)
            break
        except FhirConflict:  # changed since: a concurrent run may have retired it already
            if attempt + 1 == CONFLICT_ATTEMPTS:
                raise
            client.pause(attempt)
            current = client.read(item.resource_type, str(item.resource["id"]))
            if current.get("status") == "entered-in-error":
                break
            resource = {**current, "status": "entered-in-error"}
            version = (current.get("meta") or {}).get("versionId")
    return WriteOutcome(item.resource_type, item.identifier, item.rule, "retired", reference=ref, note=item.note)


def _retire_item(
    rtype: Literal["DetectedIssue", "Flag"], identifier: str, rule: str, copy: dict[str, Any]
) -> PlannedWrite:
    retired = {**copy, "status": "entered-in-error"}
    version = (copy.get("meta") or {}).get("versionId")
    return PlannedWrite("retire", rtype, identifier, rule, retired, version=version, note="duplicate copy")


def _group(resources: Iterable[dict[str, Any]], system: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in resources:
        for i in r.get("identifier") or []:
            if isinstance(i, dict) and i.get("system") == system and isinstance(i.get("value"), str):
                groups[i["value"]].append(r)
                break
    return groups


def _next_episode(flags_by_id: dict[str, list[dict[str, Any]]], identifier: str) -> int:
    """The episode number after every Flag of this alert in the chart (by identifier, and by id for
    episodes written by older versions under the first episode's identifier)."""
    seen = [-1]
    for value, flags in flags_by_id.items():
        if value == identifier:
            for flag in flags:
                suffix = str(flag.get("id") or "").removeprefix(resource_id(identifier) + "-")
                seen.append(int(suffix) if suffix.isdigit() else 0)
        elif value.startswith(identifier + "-") and value[len(identifier) + 1:].isdigit():
            seen.append(int(value[len(identifier) + 1:]))
    return max(seen) + 1


def _oldest_first(copies: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The copy to keep first: the deterministic id if present, else the earliest written."""

    def key(r: dict[str, Any]) -> tuple[bool, str, str]:
        rid = str(r.get("id") or "")
        written = str((r.get("meta") or {}).get("lastUpdated") or r.get("identifiedDateTime") or "")
        return (not rid.startswith(ID_PREFIX), written, rid)

    return sorted(copies, key=key)


def _keep_oldest(
    rtype: Literal["DetectedIssue", "Flag"], identifier: str, rule: str, copies: Sequence[dict[str, Any]],
    now: datetime,
) -> list[PlannedWrite]:
    keep, *extra = _oldest_first(copies)
    note = f"adopted the oldest of {len(copies)} copies" if extra else None
    plan = [PlannedWrite("exists", rtype, identifier, rule, keep, note=note)]
    return plan + [_retire_item(rtype, identifier, rule, c) for c in extra]


def _failed(rtype: Literal["DetectedIssue", "Flag", "Device"], identifier: str, rule: str | None,
            exc: FhirError) -> WriteOutcome:
    # Refusals (4xx other than 401/429 and the 409/412 of a concurrent writer) come back the same on
    # every run; say so.
    retryable = isinstance(exc, AuthExpired | FhirProtocolError | FhirConflict) or not isinstance(
        exc, FhirRejected | AuthDenied
    )
    return WriteOutcome(rtype, identifier, rule, "failed", error=str(exc), retryable=retryable)


def _identifier_query(item: PlannedWrite) -> str:
    """The conditional-create criteria: the identifier, within the patient (a compartment-checking
    EHR refuses criteria that could match another patient's resources)."""
    if item.resource_type == "DetectedIssue":
        system, patient = ALERT_ID_SYSTEM, f"patient={(item.resource.get('patient') or {}).get('reference')}"
    else:
        system, patient = FLAG_ID_SYSTEM, f"subject={(item.resource.get('subject') or {}).get('reference')}"
    return f"identifier={system}|{item.identifier}&{patient}"


def _reference(rtype: str, location: str | None, resource: dict[str, Any] | None) -> str | None:
    if resource and resource.get("id"):
        return f"{rtype}/{resource['id']}"
    found = parse_reference(location)
    return found.relative if found is not None else None


def _has_identifier(resource: dict[str, Any], system: str) -> bool:
    return any(i.get("system") == system for i in resource.get("identifier") or [] if isinstance(i, dict))


def _codes(resource: dict[str, Any], system: str) -> list[str]:
    return [code for in_system, code in raw_codings(resource.get("code")) if in_system == system]


def _rule_of(resource: dict[str, Any]) -> str | None:
    codes = _codes(resource, RULE_SYSTEM)
    return codes[0] if codes else None


def _flag_key(flag: dict[str, Any]) -> tuple[str, str] | None:
    codes = _codes(flag, FINDING_SYSTEM)
    if not codes or "/" not in codes[0]:
        return None
    rule, code = codes[0].split("/", 1)
    return rule, code


def _detail_text(f: Finding, action: Action) -> str:
    """The DetectedIssue detail: what to do and why, what is missing, and which rule said so."""
    detail = f"{action.summary} {action.detail}"
    if action.todo:
        detail += " To record: " + "; ".join(action.todo) + "."
    return detail + f" (azaguard rule {f.rule}, mappings {f.mappings_version})"


def _row_display(row: Any) -> str:
    return ", ".join(p for p in (row.what, row.value, row.date) if p)


def _evidence_display(e: Evidence) -> str:
    return e.description + (f" on {e.date[:10]}" if e.date else "")
