"""Prefetch → resources; what the prefetch left out is fetched with fhirAuthorization in one batch.

A key sent as null means "no data"; a key left out (or answered with an OperationOutcome, or a
Bundle with a next page) means "not fetched". Without a way to fetch it: PreconditionFailed (412).
Resources that cannot be tied to this patient are left out and named, as the gatherer does; what is
fetched comes only from a server the caller may name (fhirserver.FetchPolicy), within its deadline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx

from azaguard.cds.discovery import PATIENT_KEY, date_bounded_keys, key_labels, key_searches, prefetch_templates
from azaguard.cds.drafts import listify
from azaguard.cds.fhirserver import FetchPolicy
from azaguard.cds.request import BadRequest, CdsRequest
from azaguard.fhir.client import PROCESS_POOLS, FhirClient
from azaguard.fhir.errors import FhirError, FhirUnavailable
from azaguard.fhir.gather import Gathered, Search, gather, gather_linked, named, of_patient, patient_links, refers_to
from azaguard.fhirtypes import dates
from azaguard.fhirtypes.reference import ref_of
from azaguard.mappings import Mappings
from azaguard.resources import InputError, ResourceSet, resource_set_from_json


class PreconditionFailed(InputError):
    """The data the rules need is neither in the prefetch nor fetchable: answered 412."""

    http_status = 412
    http_error = "precondition-failed"


@dataclass
class Assembled:
    resources: ResourceSet
    fetched: list[str] = field(default_factory=list)  # prefetch keys fetched from fhirServer
    requests: int = 0
    notes: list[str] = field(default_factory=list)


ClientFactory = Callable[[str, str, FetchPolicy], FhirClient]  # (fhirServer, access token, the caller's policy)

# The hooks' FHIR fetches, each waited for at most its policy's deadline (a thread left behind ends at
# the client's own per-read timeout).
_FETCHES = ThreadPoolExecutor(max_workers=16, thread_name_prefix="cds-fetch")


def default_client_factory(transport: httpx.BaseTransport | None = None) -> ClientFactory:
    def make(base_url: str, token: str, policy: FetchPolicy) -> FhirClient:
        # A hook call has ~500 ms in all: short timeout, one retry; the process's kept-alive connections
        # spare it the handshake with an EHR it has called before. Unlisted servers: public addresses only,
        # checked by the connection itself (DNS rebinding).
        return FhirClient(base_url, token=token, timeout=5.0, max_retries=1, transport=transport,
                          pools=PROCESS_POOLS, only_public=policy.only_public)

    return make


class Templates:
    """The prefetch templates and their gatherer labels, computed once per mappings."""

    def __init__(self, mappings: Mappings) -> None:
        self.templates = prefetch_templates(mappings)
        self.labels = key_labels(mappings)
        self.lookback = {k: timedelta(days=d) for k, d in date_bounded_keys(mappings).items()}
        self.searches = key_searches(mappings)


def assemble(
    request: CdsRequest, templates: Templates, mappings: Mappings, now: datetime, clients: ClientFactory,
    policy: FetchPolicy | None = None,
) -> Assembled:
    out = Assembled(ResourceSet())
    missing: list[str] = []
    for key in templates.templates:
        if key not in request.prefetch:
            missing.append(key)
            continue
        value = request.prefetch[key]
        if value is None:
            continue  # the client has no data for this template
        # As the gatherer's `ge<date>`: from the start of that day.
        bound = now - templates.lookback[key] if key in templates.lookback else None
        since = bound.replace(hour=0, minute=0, second=0, microsecond=0) if bound is not None else None
        search = templates.searches.get(key)
        if not _add(out, key, value, request.patient_id, since, search, request.fhir_server):
            missing.append(key)
    unknown = sorted(set(request.prefetch) - set(templates.templates))
    if unknown:
        out.notes.append(f"prefetch keys not requested by this service were ignored: {', '.join(unknown)}")
    if missing:
        _fetch(out, request, missing, templates, mappings, now, clients, policy or FetchPolicy())
    else:  # (a fetch follows Patient.link itself, see gather)
        _linked(out, request, mappings, now, clients, policy or FetchPolicy())
    return out


def _within_deadline(
    policy: FetchPolicy, server: str, token: str, clients: ClientFactory, what: str,
    read: Callable[[FhirClient], Gathered],
) -> Gathered:
    """`read` over a client of fhirServer, within the policy's deadline (FutureTimeout past it; the work is
    cancelled if not started). The allow-list is checked inside the deadline: a slow DNS answer counts against it;
    a server the policy refuses raises FhirUnavailable with the policy's words for `what`."""

    def fetch() -> Gathered:
        if not policy.allows(server):
            raise FhirUnavailable(policy.refusal(what))
        client = clients(server, token, policy)
        try:
            return read(client)
        finally:
            client.close()

    running = _FETCHES.submit(fetch)
    try:
        return running.result(timeout=policy.deadline)
    except FutureTimeout:
        running.cancel()
        raise


def _linked(
    out: Assembled, request: CdsRequest, mappings: Mappings, now: datetime, clients: ClientFactory,
    policy: FetchPolicy,
) -> None:
    """The records Patient.link joins to the patient (a merged record's other ids) hold this patient's data, which a
    prefetch (templated on the launched id) does not: fetched from fhirServer; when they cannot be, no check can
    clear (the data filed under them is unknown), and the note says why."""
    patient = next((p for p in out.resources.patients() if p.get("id") == request.patient_id), None)
    links = patient_links(patient, request.fhir_server)[0] if patient is not None else []
    if not links or patient is None:
        return
    names = ", ".join(f"Patient/{other} ({kind})" for kind, other in links)
    server, token = request.fhir_server, request.access_token
    problem = None
    if not server or not token:
        problem = "the request has no fhirServer with fhirAuthorization to fetch them"
    else:
        try:
            gathered = _within_deadline(policy, server, token, clients, names,
                                        lambda client: gather_linked(client, patient, mappings, now))
        except FutureTimeout:
            problem = "fetching them took longer than the deadline"
        except (FhirError, InputError, ValueError) as exc:
            problem = f"fetching them failed: {exc}"
        else:
            for resource in gathered.resources.resources:
                if ref_of(resource) not in out.resources.index:
                    out.resources.add(resource)
            out.resources.failures += gathered.resources.failures
            out.requests += gathered.requests
            out.notes.extend(gathered.warnings)
    if problem is not None:
        out.resources.failures.append((f"the records Patient.link joins to the patient ({names})", None, problem))
        out.notes.append(f"The patient's record is linked to {names} (Patient.link): the data filed there was not "
                         f"read ({problem}), so no check can clear")


def _add(
    out: Assembled, key: str, value: object, patient_id: str, since: datetime | None, search: Search | None,
    base: str | None,
) -> bool:
    """Add one prefetch value; False when it does not count as fetched."""
    if not isinstance(value, dict) or not isinstance(value.get("resourceType"), str):
        out.notes.append(f"prefetch {key!r} is not a FHIR resource; fetched instead")
        return False
    if key == PATIENT_KEY:
        if value["resourceType"] != "Patient" or value.get("id") != patient_id:
            raise BadRequest(
                f"prefetch 'patient' is {ref_of(value)}, "
                f"but context.patientId is {patient_id}"
            )
        out.resources.add(value)
        return True
    if value["resourceType"] == "Bundle" and _has_next(value):
        out.notes.append(f"prefetch {key!r} has more pages (not allowed in a prefetch); fetched instead")
        return False
    try:
        found = resource_set_from_json(value) if value["resourceType"] == "Bundle" else ResourceSet.from_resources(
            [value]
        )
    except InputError as exc:
        out.notes.append(f"prefetch {key!r} could not be read ({exc}); fetched instead")
        return False
    foreign: list[Mapping[str, Any]] = []
    for resource in found.resources:
        if not _tied(resource, search, patient_id, base):
            foreign.append(resource)
        elif since is not None and _before(resource, since):
            continue  # what the gatherer's date bound would not have fetched
        elif resource.get("resourceType") != "Patient":
            out.resources.add(listify(resource))
    if foreign:
        out.notes.append(f"prefetch {key!r} held {len(foreign)} resource(s) of another patient or not tied to "
                         f"this one ({named(foreign)}); they were left out")
    return True


def _fetch(
    out: Assembled,
    request: CdsRequest,
    missing: list[str],
    templates: Templates,
    mappings: Mappings,
    now: datetime,
    clients: ClientFactory,
    policy: FetchPolicy,
) -> None:
    if not request.fhir_server or not request.access_token:
        raise PreconditionFailed(
            f"the prefetch lacks {', '.join(missing)} and the request has no fhirServer with fhirAuthorization "
            "to fetch them"
        )
    only = {templates.labels[k] for k in missing if k in templates.labels}
    server, token = request.fhir_server, request.access_token
    refused = PreconditionFailed(policy.refusal(", ".join(missing)))

    try:
        gathered = _within_deadline(policy, server, token, clients, ", ".join(missing),
                                    lambda client: gather(client, request.patient_id, mappings, now, only=only,
                                                          alerts=False))
    except FutureTimeout:
        raise refused from None
    except (FhirUnavailable, PreconditionFailed):  # refused, closed, timed out, unknown host: the same words
        raise refused from None
    except (FhirError, InputError, ValueError) as exc:
        raise PreconditionFailed(f"fetching {', '.join(missing)} from fhirServer failed: {exc}") from exc
    have = set(out.resources.index)
    patient_given = PATIENT_KEY not in missing
    for resource in gathered.resources.resources:
        key = ref_of(resource)
        if key in have or (patient_given and resource.get("resourceType") == "Patient"):
            continue
        out.resources.add(resource)
    out.fetched = missing
    out.requests = gathered.requests
    out.notes.extend(gathered.warnings)


def _before(resource: Mapping[str, Any], since: datetime) -> bool:
    """Recorded as effective before `since` (an undated or unreadable date is kept)."""
    period = resource.get("effectivePeriod")
    value = (resource.get("effectiveDateTime") or resource.get("effectiveInstant")
             or (period.get("end") or period.get("start") if isinstance(period, dict) else None)
             or resource.get("whenHandedOver") or resource.get("issued"))
    if not isinstance(value, str) or len(value) < 10:  # a partial date may fall on either side: kept
        return False
    when = dates.earliest(value)
    return when is not None and when < since


def _has_next(bundle: Mapping[str, Any]) -> bool:
    links = bundle.get("link")
    return isinstance(links, list) and any(isinstance(x, dict) and x.get("relation") == "next" for x in links)


def _tied(resource: Mapping[str, Any], search: Search | None, patient_id: str, base: str | None) -> bool:
    """The key's matches must point at the patient (gather.of_patient); any other resource that names a
    patient must name this one."""
    if search is not None and resource.get("resourceType") == search.resource_type:
        return of_patient(resource, search, patient_id, base)
    for element in ("subject", "patient"):
        if element in resource:
            return refers_to(resource[element], patient_id, base)
    return True
