"""Everything the rules need about one patient, in as few round trips as the server allows.

ONE batch Bundle of GETs: the Patient, one search per kind of data (Medications
pulled in with _include) and the alerts azaguard already wrote (DetectedIssue,
Flag); extra requests only for further pages or a Medication the server did not
include. No CapabilityStatement first: the batch is simply tried, and a server
that refuses it gets the same searches concurrently (and is remembered, see
memory.py, so the next patient goes straight there).

Safety: a search that fails is an error naming it, never an empty result (the
rules would read "no data" and could answer ok); resources the server returns
for another patient (a patient filter it ignored) are dropped with a warning.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import azaguard.fhir.memory as _memory  # read at call time (tests replace PROCESS_MEMORY)
from azaguard.fhir.client import (
    FhirClient,
    Resource,
    check_id,
    search_url,
    searchset_entries,
    searchset_warnings,
)
from azaguard.fhir.errors import (
    RETRYABLE_STATUSES,
    AuthDenied,
    FhirError,
    FhirProtocolError,
    error_for_status,
)
from azaguard.fhir.memory import ServerMemory
from azaguard.fhirtypes.reference import parse_reference, ref_of, reference_in
from azaguard.mappings import Mappings
from azaguard.naming import resource_name
from azaguard.resources import ResourceSet, Unfetched

# Page sizes: big enough that a typical record is one page per search, small enough for servers' caps.
PAGE_SIZE = 200
OBSERVATION_PAGE_SIZE = 1000
# Threads for the no-batch path: one per search (all at once), bounded so a scan cannot flood the server.
MAX_THREADS = 24
# Statuses with which a server says "I do not do batch" (rather than "your batch is wrong").
_NO_BATCH_STATUSES = frozenset({400, 404, 405, 501})
# Statuses with which a server says it cannot answer one search (not "busy", not "your token expired").
_UNANSWERABLE = frozenset({400, 403, 404, 405, 422, 501})

T = TypeVar("T")


@dataclass(frozen=True)
class Search:
    """One search of the patient's data."""

    label: str  # what it fetches, for messages: "lab results and vital signs"
    resource_type: str
    params: tuple[tuple[str, str], ...]
    patient_element: str  # the reference that must point at the patient ("subject" or "patient")
    # The existing alerts: a token not allowed to read them (403) leaves them out with a problem
    # named, rather than hiding the findings.
    optional: bool = False
    # A search some servers cannot answer (a parameter or type they do not support: 400/403/404/405/422/501):
    # its data is then unread, never "none" — the rules that read it say cannot-evaluate, the others go on.
    tolerant: bool = False

    @property
    def url(self) -> str:
        return search_url(self.resource_type, self.params)


@dataclass
class Gathered:
    resources: ResourceSet
    requests: int  # HTTP requests this gather sent (the client's counter: pages, retries, follow-ups)
    method: Literal["batch", "concurrent"]
    warnings: list[str] = field(default_factory=list)
    # The patient's DetectedIssues and Flags (every author; alerts.own_alerts picks azaguard's),
    # None when not asked for or not readable (then alerts_problem says why).
    alert_issues: list[Resource] | None = None
    alert_flags: list[Resource] | None = None
    alerts_problem: str | None = None
    # Resources referred to but not given (a Medication not on the server): the ids, for programs only.
    unfetched: list[Unfetched] = field(default_factory=list)


def observation_lookback_days(mappings: Mappings) -> int:
    """How far back results are fetched: the longest window a rule reads, plus the longest
    monitoring interval so the result just before that window (a baseline) is there too."""
    policy = mappings.policy
    windows = (
        policy.labs.creatinine_rise.months_window_days,
        policy.labs.result_max_age_days.value,
        policy.dose.weight_max_age_days.value,
        policy.infection.neutropenia_window_days.value,
        policy.infection.fever_window_hours.value / 24,
    )
    interval = max(p.interval_days for s in policy.monitoring.schedules.values() for p in s.phases)
    return math.ceil(max(windows) + interval)


# The longest supply one dispense is taken to cover (a 90-day fill, renewed up to a year's supply).
MAX_DISPENSE_SUPPLY_DAYS = 365


def therapy_lookback_days(mappings: Mappings) -> int:
    """How far back dispenses and administrations are fetched: the recent-therapy window plus the longest
    supply a single dispense may cover."""
    return math.ceil(mappings.policy.therapy.recent_window_days.value + MAX_DISPENSE_SUPPLY_DAYS)


def plan_searches(
    patient_id: str,
    mappings: Mappings,
    now: datetime,
    *,
    page_size: int = PAGE_SIZE,
    observation_page_size: int = OBSERVATION_PAGE_SIZE,
) -> list[Search]:
    """The searches that fetch everything the rules read for this patient."""
    patient = f"Patient/{check_id(patient_id)}"
    # The canonical LOINC URI only: the OID (accepted in records handed over) would double a long query.
    systems = mappings.systems.loinc[:1]

    def loinc(codes: Sequence[str]) -> str:
        return ",".join(f"{system}|{code}" for code in codes for system in systems)

    measured = [c for a in mappings.analytes.analytes.values() for c in (*a.loinc, *a.percent_loinc)]
    measured += mappings.pancreatitis.lipase.loinc  # read against the lab's own limit, like any lab result
    snomed = mappings.systems.snomed[0]
    measured_codes = loinc(measured) + "".join(
        f",{snomed}|{c}" for a in mappings.analytes.analytes.values() for c in a.snomed)
    coded = [c for a in mappings.analytes.coded_analytes.values() for c in a.loinc]
    # TPMT/NUDT15 enzyme activity, measured once before therapy like a phenotype: no date bound either.
    coded += [c for a in mappings.analytes.activity_analytes.by_key.values() for c in a.loinc]
    pathogens = [c for p in mappings.lab_infections.pathogens.values() for c in p.loinc]
    recent_days = max(mappings.signs.window_days.value, mappings.lab_infections.window_days.value,
                      mappings.infections.encounter_diagnosis_window_days.value)
    since_recent = (now - timedelta(days=math.ceil(recent_days))).date().isoformat()
    since_history = (now - timedelta(days=math.ceil(mappings.lab_infections.history_days.value))).date().isoformat()
    since = (now - timedelta(days=observation_lookback_days(mappings))).date().isoformat()
    count, obs_count = str(page_size), str(observation_page_size)
    transfusion_codes = mappings.meaning.context.transfusion.codes
    transfusions = ",".join(
        f"{uri}|{code}" for name, uri in (("snomed", mappings.systems.snomed[0]), ("cpt", mappings.systems.cpt[0]))
        for code in sorted(transfusion_codes.get(name, ())))
    since_therapy = (now - timedelta(days=therapy_lookback_days(mappings))).date().isoformat()
    dialysis_days = math.ceil(mappings.meaning.context.dialysis.recent_days.value)
    since_dialysis = (now - timedelta(days=dialysis_days)).date().isoformat()
    return [
        # Every status: a stopped order still counts within the recent-therapy window.
        Search("medication orders", "MedicationRequest", (
            ("subject", patient), ("_include", "MedicationRequest:medication"), ("_count", count),
        ), "subject"),
        # No _sort: every page is read and the record orders results itself; a sort only costs the
        # server (on sekmet about a third of the whole batch's time).
        Search("lab results and vital signs", "Observation", (
            ("subject", patient), ("code", measured_codes), ("date", f"ge{since}"), ("_count", obs_count),
        ), "subject"),
        # Symptoms, nursing assessments and lab tests under codes no list can hold (a lab's own codes): the
        # recent ones of these categories, whatever their code; the record reads those it recognises.
        Search("recent symptoms and lab tests", "Observation", (
            ("subject", patient), ("category", "laboratory,exam,survey"), ("date", f"ge{since_recent}"),
            ("_count", obs_count),
        ), "subject", tolerant=True),
        # Infection tests over a year: an earlier viral load is the baseline a rise is measured from.
        Search("infection tests", "Observation", (
            ("subject", patient), ("code", loinc(pathogens)), ("date", f"ge{since_history}"), ("_count", count),
        ), "subject", tolerant=True),
        Search("recent lab reports", "DiagnosticReport", (
            ("subject", patient), ("date", f"ge{since_recent}"), ("_count", count),
        ), "subject", tolerant=True),
        Search("symptom check-ins", "QuestionnaireResponse", (
            ("subject", patient), ("authored", f"ge{since_recent}"), ("_count", count),
        ), "subject", tolerant=True),
        # Genotype/phenotype results stay valid for life: no date bound.
        Search("TPMT and pharmacogenomic results", "Observation", (
            ("subject", patient), ("code", loinc(coded)), ("_count", count),
        ), "subject"),
        Search("active conditions", "Condition", (
            ("subject", patient), ("clinical-status", "active,recurrence,relapse"), ("_count", count),
        ), "subject"),
        # Encounter diagnoses often carry no clinical status: judged by their date (signs, infections).
        Search("recent diagnoses", "Condition", (
            ("subject", patient), ("recorded-date", f"ge{since_recent}"), ("_count", count),
        ), "subject", tolerant=True),
        Search("immunizations", "Immunization", (("patient", patient), ("_count", count)), "patient"),
        Search("immunization recommendations", "ImmunizationRecommendation", (
            ("patient", patient), ("_count", count),
        ), "patient"),
        # Therapy also shows in statements, dispenses and administrations (clinical-rules.md section 8).
        # Statements: every status, no date bound (a long-running "active" statement has an old date).
        Search("medication statements", "MedicationStatement", (
            ("subject", patient), ("_include", "MedicationStatement:medication"), ("_count", count),
        ), "subject"),
        # Dispenses and administrations pile up over years: those that can still show current or recent
        # therapy (the recent window plus the longest supply a dispense may cover).
        Search("medication dispenses", "MedicationDispense", (
            ("subject", patient), ("_include", "MedicationDispense:medication"),
            ("whenhandedover", f"ge{since_therapy}"), ("_count", count),
        ), "subject"),
        Search("medication administrations", "MedicationAdministration", (
            ("subject", patient), ("_include", "MedicationAdministration:medication"),
            ("effective-time", f"ge{since_therapy}"), ("_count", count),
        ), "subject"),
        Search("open service requests", "ServiceRequest", (
            ("subject", patient), ("status", "active,on-hold,draft"), ("_count", count),
        ), "subject"),
        # Read by the reading pass (record_meaning): a relative's history (a parent's TPMT deficiency is a
        # reason to test, never the patient's phenotype), red-cell transfusions (a TPMT phenotype soon after one may
        # be the donor's) and dialysis (the kidney thresholds do not apply).
        Search("family history", "FamilyMemberHistory", (("patient", patient), ("_count", count)), "patient",
               tolerant=True),
        # Transfusions by code at any date: a TPMT phenotype stays on file for life, so an old one may still have
        # followed a transfusion.
        Search("transfusions", "Procedure", (
            ("subject", patient), ("code", transfusions), ("_count", count),
        ), "subject", tolerant=True),
        # Every procedure over the results' lookback, whatever its code: a transfusion or a dialysis session known
        # only by its name is read by the same recogniser as in a record in hand. (Not `code:text`: many servers do
        # not support the modifier, and a refusal would leave the TPMT check unable to say ok for every patient.)
        Search("recent procedures", "Procedure", (
            ("subject", patient), ("date", f"ge{since}"), ("_count", count),
        ), "subject", tolerant=True),
        # Encounters of the dialysis window, whatever their type: dialysis shows in Encounter.class, type or
        # serviceType, coded or named (few encounters in two weeks; the class has no standard dialysis code).
        Search("recent encounters", "Encounter", (
            ("subject", patient), ("date", f"ge{since_dialysis}"), ("_count", count),
        ), "subject", tolerant=True),
    ]  # fmt: skip


def plan_alert_searches(patient_id: str, *, page_size: int = PAGE_SIZE) -> list[Search]:
    """The searches for the alerts already in the chart (azaguard's are picked out by identifier later)."""
    patient = f"Patient/{check_id(patient_id)}"
    count = str(page_size)
    return [
        Search("existing alerts", "DetectedIssue", (("patient", patient), ("_count", count)), "patient", True),
        Search("existing alert flags", "Flag", (("patient", patient), ("_count", count)), "subject", True),
    ]


def gather(
    client: FhirClient,
    patient_id: str,
    mappings: Mappings,
    now: datetime,
    *,
    page_size: int = PAGE_SIZE,
    observation_page_size: int = OBSERVATION_PAGE_SIZE,
    alerts: bool = True,
    memory: ServerMemory | None = None,
    only: Collection[str] | None = None,
    planned: Sequence[Search] | None = None,
) -> Gathered:
    """Fetch one patient's record (and, with `alerts`, the alerts already in the chart) in one batch;
    raises FhirError (naming what failed) rather than return a partial record.

    The records Patient.link joins to it (a merged record's other ids) are fetched too, see _follow_links.

    `only`: the labels of the record searches to run (the Patient is always read), e.g. what a CDS Hooks
    prefetch left out. `planned`: the record searches, when the caller planned them itself (default
    plan_searches; the benchmark replays an older plan)."""
    start = client.request_count
    one = partial(_gather_one, client, mappings=mappings, now=now, page_size=page_size,
                  observation_page_size=observation_page_size, memory=memory)
    gathered = one(patient_id, alerts=alerts, only=only, planned=planned)
    # A linked record is read whole: `only` names what a prefetch left out for the launched id, not for the others.
    labels = [s.label for s in planned] if planned is not None else None
    _follow_links(gathered, _patient_of(gathered, patient_id), partial(one, only=labels), client.base_url,
                  alerts=alerts)
    gathered.requests = client.request_count - start
    return gathered


def gather_linked(
    client: FhirClient, patient: Resource, mappings: Mappings, now: datetime, *, memory: ServerMemory | None = None
) -> Gathered:
    """The records Patient.link joins to a Patient already in hand (a CDS Hooks prefetch), fetched whole and
    bounded as in `gather` (without the Patient itself, without alerts)."""
    start = client.request_count
    gathered = Gathered(ResourceSet.from_resources([patient]), 0, "batch")
    one = partial(_gather_one, client, mappings=mappings, now=now, page_size=PAGE_SIZE,
                  observation_page_size=OBSERVATION_PAGE_SIZE, memory=memory, only=None)
    _follow_links(gathered, patient, one, client.base_url, alerts=False)
    gathered.requests = client.request_count - start
    return gathered


# --- Patient.link: a merged record's other ids ---------------------------------------------------------------

# FHIR R4 Patient.link (link-type): 'replaced-by' — "must no longer be used", the link points to the record to use
# instead; 'replaces' — the current record, pointing back to an inactive one merged into it "that should be
# consulted to retrieve additional referenced information"; 'refer' and 'seealso' — the same person's other records.
# Every type names the same person, so the data filed under each linked Patient id is this patient's.
# Bounds: how many linked records are fetched, and how many links away (the visited set stops cycles).
MAX_LINKED_RECORDS = 4
MAX_LINK_DEPTH = 3


def patient_links(patient: Mapping[str, Any], base: str | None) -> tuple[list[tuple[str, str]], list[str]]:
    """((link type, Patient id) of each Patient this one links to on the server at `base`, references the server
    cannot be asked for (another server's, a RelatedPerson's seealso, unreadable))."""
    links = patient.get("link")
    local: list[tuple[str, str]] = []
    elsewhere: list[str] = []
    for link in links if isinstance(links, list) else []:
        other = link.get("other") if isinstance(link, dict) else None
        ref = other.get("reference") if isinstance(other, dict) else None
        kind = link.get("type") if isinstance(link, dict) and isinstance(link.get("type"), str) else "seealso"
        if not isinstance(ref, str) or not ref:
            continue
        found = parse_reference(ref)
        if found is not None and found.kind == "absolute" and (
                base is None or found.base != base.rstrip("/") or not found.is_to("Patient")):
            elsewhere.append(ref)  # another server's (or not a Patient on this one)
            continue
        if found is None or found.kind not in ("relative", "absolute") or not found.is_to("Patient"):
            if found is None or found.type != "RelatedPerson":  # a seealso to a RelatedPerson: not their own record
                elsewhere.append(ref)
            continue
        try:
            local.append((str(kind), check_id(str(found.id))))
        except ValueError:
            elsewhere.append(ref)
    return local, elsewhere


def _follow_links(gathered: Gathered, patient: Resource, fetch: Callable[..., Gathered], base: str, *,
                  alerts: bool) -> None:
    """Fetch the records Patient.link joins to the launched one (breadth first, bounded) into `gathered`; a
    'replaced-by' chain is followed to the surviving record, which the record then describes (record_meaning's
    Owner) and whose alerts are the ones read (the alerts are written there), and the user is told. Links past
    the bounds leave every check unable to say ok (a failure)."""
    patient_id = str(patient.get("id"))
    patients = {patient_id: patient}
    queue: list[tuple[str, int]] = [(patient_id, 0)]
    seen_keys = {ref_of(r) for r in gathered.resources.resources}
    while queue:
        pid, depth = queue.pop(0)
        links, elsewhere = patient_links(patients[pid], base)
        for ref in elsewhere:
            gathered.warnings.append(f"Patient/{pid} is linked to {ref} (Patient.link), which is not a patient record "
                                     "on this server: its data was not fetched")
        for kind, other in links:
            if kind == "replaced-by":
                gathered.warnings.append(
                    f"Patient/{pid} is replaced by Patient/{other} (Patient.link replaced-by): the surviving record "
                    f"Patient/{other} is the one checked, with the data filed under both ids")
            if other in patients:
                continue
            if depth + 1 > MAX_LINK_DEPTH or len(patients) - 1 >= MAX_LINKED_RECORDS:
                gathered.resources.failures.append((
                    f"Patient/{other}, linked from Patient/{pid} (Patient.link {kind})", None,
                    f"not fetched: more than {MAX_LINKED_RECORDS} linked records or {MAX_LINK_DEPTH} links away"))
                gathered.warnings.append(f"Patient/{other} (Patient.link {kind} of Patient/{pid}) was not fetched: "
                                         f"past the bound of {MAX_LINKED_RECORDS} linked records, "
                                         f"{MAX_LINK_DEPTH} links away")
                continue
            try:
                linked = fetch(other, alerts=alerts and kind == "replaced-by")
            except FhirError as exc:
                if exc.status not in (404, 410):
                    raise
                gathered.warnings.append(f"Patient/{other} (Patient.link {kind} of Patient/{pid}) does not exist on "
                                         f"the server (HTTP {exc.status}): nothing filed under it was fetched")
                patients[other] = {}
                continue
            patients[other] = _patient_of(linked, other)
            queue.append((other, depth + 1))
            if kind != "replaced-by":
                gathered.warnings.append(f"Patient/{pid} is linked to Patient/{other} (Patient.link {kind}): the "
                                         "data filed under it was read as this patient's")
            _merge(gathered, linked, seen_keys, surviving=kind == "replaced-by")


def _patient_of(gathered: Gathered, patient_id: str) -> Resource:
    return next((p for p in gathered.resources.patients() if p.get("id") == patient_id), {})


def _merge(into: Gathered, other: Gathered, seen: set[str], *, surviving: bool) -> None:
    for resource in other.resources.resources:
        key = ref_of(resource)
        if resource.get("id") is not None and key in seen:
            continue
        seen.add(key)
        into.resources.add(resource)
    into.resources.failures += other.resources.failures
    into.warnings += other.warnings
    if surviving:  # the alerts are written on the surviving record: its existing ones are those to reconcile
        into.alert_issues, into.alert_flags = other.alert_issues, other.alert_flags
        into.alerts_problem = other.alerts_problem
    if other.method == "concurrent":
        into.method = "concurrent"


def _gather_one(
    client: FhirClient,
    patient_id: str,
    *,
    mappings: Mappings,
    now: datetime,
    page_size: int,
    observation_page_size: int,
    alerts: bool,
    memory: ServerMemory | None,
    only: Collection[str] | None,
    planned: Sequence[Search] | None = None,
) -> Gathered:
    """One Patient id's record (and alerts), without following its links."""
    start = client.request_count
    memory = memory if memory is not None else _memory.PROCESS_MEMORY
    record_searches = list(planned) if planned is not None else plan_searches(
        patient_id, mappings, now, page_size=page_size, observation_page_size=observation_page_size
    )
    if only is not None:
        record_searches = [s for s in record_searches if s.label in only]
    alert_searches = plan_alert_searches(patient_id, page_size=page_size) if alerts else []
    searches = record_searches + alert_searches
    warnings: list[str] = []
    patient: Resource
    pages: list[list[Resource] | None]
    results = None
    failures: list[tuple[Search, str]] = []  # tolerant searches the server could not answer
    if not memory.batch_refused(client.base_url):
        results = _try_batch(client, patient_id, searches, warnings, failures)
        if results is None:
            memory.remember_batch_refused(client.base_url)
            failures.clear()
    if results is not None:
        method: Literal["batch", "concurrent"] = "batch"
        patient, pages = results
    else:
        method = "concurrent"
        patient, pages = _concurrently(client, patient_id, searches, failures)
    n = len(record_searches)
    resources = _collect(patient, patient_id, record_searches, _required(pages[:n]), warnings, client.base_url)
    for search, error in failures:
        resources.failures.append((_action(search), search.resource_type, error))
    gathered = Gathered(resources, 0, method, warnings)
    if alerts:
        _collect_alerts(gathered, patient_id, alert_searches, pages[n:], client.base_url)
    _add_missing_medications(client, resources, method, gathered)
    _add_missing_questionnaires(client, resources, gathered)
    gathered.requests = client.request_count - start
    return gathered


# --- fetching ---------------------------------------------------------------------------


def _try_batch(
    client: FhirClient, patient_id: str, searches: list[Search], warnings: list[str],
    failures: list[tuple[Search, str]],
) -> tuple[Resource, list[list[Resource] | None]] | None:
    entries = [_get(f"Patient/{patient_id}")] + [_get(s.url) for s in searches]
    try:
        results = client.batch(entries)
    except AuthDenied:
        # Some servers refuse the whole batch for one entry the token may not read: the alerts first, then the
        # tolerant searches (a type the registration predates) are left out and the rest sent once more; the
        # alerts are then reported as unreadable, a tolerant search's data as unread.
        dropped = [s for s in searches if s.optional] or [s for s in searches if s.tolerant]
        if not dropped:
            raise
        got = _try_batch(client, patient_id, [s for s in searches if s not in dropped], warnings, failures)
        if got is None:
            return None
        failures += [(s, "HTTP 403: the whole batch was refused with it") for s in dropped if s.tolerant]
        by_search = iter(got[1])
        return got[0], [None if s in dropped else next(by_search) for s in searches]
    except FhirError as exc:
        if exc.status not in _NO_BATCH_STATUSES:
            raise  # busy, down, auth: the searches would fare no better
        warnings.append(f"the server refused the batch ({exc}); the searches were sent concurrently")
        return None
    head, rest = results[0], results[1:]
    if not head.ok:
        raise error_for_status(head.status, f"reading Patient/{patient_id}", outcome=head.outcome)
    patient = _expect(head.resource, "Patient", f"reading Patient/{patient_id}")
    pages: list[list[Resource] | None] = []
    for search, result in zip(searches, rest, strict=True):
        if result.status in RETRYABLE_STATUSES:
            # The server was busy for this entry only: this one search again, with retries.
            pages.append(_search_all(client, search, failures))
            continue
        if result.status == 403 and search.optional:
            pages.append(None)
            continue
        if search.tolerant and result.status in _UNANSWERABLE:
            failures.append((search, f"HTTP {result.status}" + (f": {result.outcome}" if result.outcome else "")))
            pages.append(None)
            continue
        if not result.ok:
            raise error_for_status(result.status, _action(search), outcome=result.outcome)
        bundle = _expect(result.resource, "Bundle", _action(search))
        pages.append([bundle, *_named(search, partial(client.next_pages, bundle))])
    return patient, pages


def _concurrently(
    client: FhirClient, patient_id: str, searches: list[Search], failures: list[tuple[Search, str]]
) -> tuple[Resource, list[list[Resource] | None]]:
    """The Patient read and every search at once over the client's pool (no batch)."""
    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(searches) + 1)) as pool:
        patient_future = pool.submit(client.read, "Patient", patient_id)
        futures = [pool.submit(_search_all, client, s, failures) for s in searches]
        patient = patient_future.result()
        return patient, [f.result() for f in futures]


def _search_all(
    client: FhirClient, search: Search, failures: list[tuple[Search, str]] | None = None
) -> list[Resource] | None:
    try:
        return _named(search, lambda: client.search_pages(search.resource_type, search.params))
    except AuthDenied:
        if search.optional:
            return None
        if search.tolerant and failures is not None:
            failures.append((search, "HTTP 403: not allowed"))
            return None
        raise
    except FhirError as exc:
        if search.tolerant and failures is not None and exc.status in _UNANSWERABLE:
            failures.append((search, f"HTTP {exc.status}: {exc.message}"))
            return None
        raise


def _required(pages: list[list[Resource] | None]) -> list[list[Resource]]:
    """Pages of the record's searches: never None (only optional searches may come back empty-handed)."""
    return [p if p is not None else [] for p in pages]


def _named(search: Search, fetch: Callable[[], T]) -> T:
    """Run a fetch for `search`; a failure says which search it was."""
    try:
        return fetch()
    except FhirError as exc:
        raise type(exc)(
            f"{_action(search)} failed: {exc.message}", status=exc.status, outcome=exc.outcome, url=exc.url
        ) from exc


def _action(search: Search) -> str:
    return f"the search for {search.label} ({search.resource_type})"


def _get(url: str) -> Resource:
    return {"request": {"method": "GET", "url": url}}


def _expect(resource: Resource | None, resource_type: str, action: str) -> Resource:
    if resource is None or resource.get("resourceType") != resource_type:
        got = resource.get("resourceType") if resource else "nothing"
        raise FhirProtocolError(f"{action}: the server returned {got!r} instead of a {resource_type}")
    return resource


# --- assembling ---------------------------------------------------------------------------


def _collect_alerts(
    gathered: Gathered, patient_id: str, searches: list[Search], pages: list[list[Resource] | None], base: str
) -> None:
    if any(p is None for p in pages):
        gathered.alerts_problem = "the alerts already in the chart cannot be read with the granted access (403)"
        return
    found = _collect_matches(patient_id, searches, _required(pages), gathered.warnings, base)
    gathered.alert_issues = [r for r in found if r.get("resourceType") == "DetectedIssue"]
    gathered.alert_flags = [r for r in found if r.get("resourceType") == "Flag"]


def _collect(
    patient: Resource,
    patient_id: str,
    searches: list[Search],
    pages: list[list[Resource]],
    warnings: list[str],
    base: str,
) -> ResourceSet:
    if patient.get("id") != patient_id:
        raise FhirProtocolError(f"asked for Patient/{patient_id}, the server returned Patient/{patient.get('id')}")
    out = ResourceSet()
    seen: set[str] = set()

    def add(resource: Resource, full_url: str | None) -> None:
        key = ref_of(resource)
        if resource.get("id") is not None and key in seen:
            return  # the same include on several pages, or two overlapping searches
        seen.add(key)
        out.add(resource, full_url or None)

    add(patient, None)
    for resource, full_url in _entries_of_patient(patient_id, searches, pages, warnings, base):
        add(resource, full_url)
    return out


def _collect_matches(
    patient_id: str, searches: list[Search], pages: list[list[Resource]], warnings: list[str], base: str
) -> list[Resource]:
    out: list[Resource] = []
    seen: set[str] = set()
    for resource, _ in _entries_of_patient(patient_id, searches, pages, warnings, base):
        key = ref_of(resource)
        if key not in seen:
            seen.add(key)
            out.append(resource)
    return out


def _entries_of_patient(
    patient_id: str, searches: list[Search], pages: list[list[Resource]], warnings: list[str], base: str
) -> Iterator[tuple[Resource, str | None]]:
    """(resource, fullUrl) of every page; matches not tied to the patient are dropped with a warning."""
    for search, search_pages in zip(searches, pages, strict=True):
        foreign: list[Resource] = []
        said: dict[str, int] = {}  # the server's warning -> on how many pages: one line each, counted
        for page in search_pages:
            for w in searchset_warnings(page):
                said[w] = said.get(w, 0) + 1
            yield from _matches(page, search, patient_id, base, foreign)
        warnings.extend(f"{search.label}: the server said: {w}" + (f" (on {n} pages)" if n > 1 else "")
                        for w, n in said.items())
        if foreign:
            warnings.append(
                f"{search.label}: the server returned {len(foreign)} {search.resource_type} resource(s) of other "
                f"patients or not tied to this one ({named(foreign)}); they were left out"
            )


def _matches(
    page: Resource, search: Search, patient_id: str, base: str, foreign: list[Resource]
) -> Iterator[tuple[Resource, str | None]]:
    """(resource, fullUrl) of a page's entries tied to the patient; the others go to `foreign`."""
    for entry in searchset_entries(page):
        resource: Resource = dict(entry["resource"])
        if resource.get("resourceType") == "OperationOutcome":
            continue
        mode = (entry.get("search") or {}).get("mode")
        if mode != "include" and not of_patient(resource, search, patient_id, base):
            foreign.append(resource)
            continue
        full_url = entry.get("fullUrl")
        yield resource, full_url if isinstance(full_url, str) else None


def named(resources: Sequence[Mapping[str, Any]], most: int = 5) -> str:
    """`Type/id` of the first few resources, and how many more."""
    names = [ref_of(r) for r in resources[:most]]
    more = f" and {len(resources) - most} more" if len(resources) > most else ""
    return ", ".join(names) + more


def of_patient(resource: Mapping[str, Any], search: Search, patient_id: str, base: str | None) -> bool:
    """False for a match of `search` that cannot be tied to the patient: its patient element is
    missing, identifier- or display-only, dangling, another patient's, or an absolute URL off `base`
    (the server it came from; None: only relative references count). Other types pass."""
    if resource.get("resourceType") != search.resource_type:
        return True
    return refers_to(resource.get(search.patient_element), patient_id, base)


def refers_to(reference: object, patient_id: str, base: str | None) -> bool:
    ref = reference_in(reference)
    if ref is None or ref.relative != f"Patient/{patient_id}":
        return False
    return ref.kind == "relative" or (base is not None and ref.base == base.rstrip("/"))


def _add_missing_medications(client: FhirClient, resources: ResourceSet, method: str, gathered: Gathered) -> None:
    """Read the Medications that orders reference but the server did not _include. One it cannot give is
    a warning naming the order for people (what and when, no id) and an Unfetched entry with the ids."""
    missing: dict[str, list[Resource]] = {}
    medication_types = ("MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration")
    for order in (r for rtype in medication_types for r in resources.of_type(rtype)):
        ref = _medication_reference(order)
        if ref is None or ref.startswith("#") or resources.resolve(ref) is not None:
            continue
        local = _local_reference(client, ref)
        if local is None:
            _unfetched(gathered, ref, order, "other-server",
                       "is kept on another server, which azaguard does not read")
        else:
            missing.setdefault(local, []).append(order)
    if not missing:
        return
    for (ref, orders), found in zip(missing.items(), _read_all(client, list(missing), method), strict=True):
        if found is None:
            for order in orders:
                _unfetched(gathered, ref, order, "not-found", "could not be read from the server: it is not there")
        else:
            resources.add(found)


def _unfetched(gathered: Gathered, ref: str, order: Resource, reason: str, words: str) -> None:
    gathered.warnings.append(f"The medication of {resource_name(order)} {words}.")
    by = ref_of(order)
    gathered.unfetched.append(Unfetched(reference=ref, referenced_by=by, reason=reason))


def _read_all(client: FhirClient, refs: list[str], method: str) -> list[Resource | None]:
    """The resources at `refs` (None where not found): one batch if batch works, else concurrent reads."""
    if method == "batch":
        out: list[Resource | None] = []
        for ref, result in zip(refs, client.batch([_get(r) for r in refs]), strict=True):
            if result.status in (404, 410):
                out.append(None)
            elif not result.ok:
                raise error_for_status(result.status, f"reading {ref}", outcome=result.outcome)
            else:
                out.append(_expect(result.resource, ref.split("/")[0], f"reading {ref}"))
        return out

    def read(ref: str) -> Resource | None:
        rtype, rid = ref.split("/")
        try:
            return client.read(rtype, rid)
        except FhirError as exc:
            if exc.status in (404, 410):
                return None
            raise

    with ThreadPoolExecutor(max_workers=min(MAX_THREADS, len(refs))) as pool:
        return list(pool.map(read, refs))


def _medication_reference(order: Resource) -> str | None:
    ref: Any = (order.get("medicationReference") or {}).get("reference")
    return ref if isinstance(ref, str) and ref else None


def _local_reference(client: FhirClient, ref: str) -> str | None:
    """`Medication/id` for a relative reference or an absolute one on this server; None otherwise."""
    found = parse_reference(ref)
    if found is None or not found.is_to("Medication") or found.kind not in ("relative", "absolute"):
        return None
    if found.base is not None and urlsplit(found.base).netloc != urlsplit(client.base_url).netloc:
        return None
    try:
        check_id(str(found.id))
    except ValueError:
        return None
    return found.relative


def _add_missing_questionnaires(client: FhirClient, resources: ResourceSet, gathered: Gathered) -> None:
    """Fetch the Questionnaires that check-ins follow but neither contain nor the record holds, by canonical
    URL (`Questionnaire?url=`): items coded only in the Questionnaire keep their codes. Matches are kept by
    their `url` (a server that ignores the parameter returns others too). One the server does not have is said
    in a warning: the items are read by their text and linkId. A search that fails leaves the check-ins unread
    (never "no signs") when some answered item has no text of its own; else it is a warning."""
    held = {q.get("url") for q in resources.of_type("Questionnaire")}
    wanted: dict[str, bool] = {}  # canonical URL -> some answered item can only be understood through it
    followers: dict[str, list[str]] = {}  # canonical URL -> the check-ins that follow it
    for qr in resources.of_type("QuestionnaireResponse"):
        canonical = qr.get("questionnaire")
        if not isinstance(canonical, str) or not canonical or canonical.startswith("#"):
            continue
        url = canonical.split("|")[0]
        if url not in held and resources.resolve(url) is None:
            wanted[url] = wanted.get(url, False) or _answered_without_text(qr.get("item"))
            followers.setdefault(url, []).append(f"QuestionnaireResponse/{qr.get('id')}")
    warnings = gathered.warnings
    for url, needed in wanted.items():
        try:
            pages = client.search_pages("Questionnaire", (("url", url),))
        except FhirError as exc:
            problem = f"HTTP {exc.status}: {exc.message}" if exc.status else exc.message
            if needed:
                action = f"the search for the Questionnaire {url} (Questionnaire)"
                resources.failures.append((action, "QuestionnaireResponse", problem))
            else:
                warnings.append(f"the Questionnaire {url} could not be read ({problem}): the check-in's items "
                                "are read by their text")
            continue
        found = [dict(e["resource"]) for page in pages for e in searchset_entries(page)
                 if (e.get("resource") or {}).get("resourceType") == "Questionnaire"
                 and e["resource"].get("url") == url]
        if not found:
            warnings.append(f"the Questionnaire {url}, followed by a symptom check-in, is not on the server: its "
                            "items are read by their text and linkId")
            gathered.unfetched += [Unfetched(reference=url, referenced_by=by, reason="not-found")
                                   for by in followers[url]]
        for questionnaire in found[:1]:
            resources.add(questionnaire)


def _answered_without_text(items: object) -> bool:
    """Whether an answered item (at any depth) carries no text: only its Questionnaire says what it asks."""
    if not isinstance(items, list):
        return False
    for item in items:
        if not isinstance(item, Mapping):
            continue
        answers: list[Any] = item.get("answer") or []
        if answers and not item.get("text"):
            return True
        under_answers = [c for a in answers if isinstance(a, Mapping) for c in a.get("item") or []]
        nested = [*(item.get("item") or []), *under_answers]
        if _answered_without_text(nested):
            return True
    return False
