"""gather() against a small in-memory FHIR server behind pytest-httpx."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from pytest_httpx import HTTPXMock

from azaguard.fhir import FhirClient, FhirNotFound, FhirProtocolError, FhirRejected, FhirUnavailable, gather
from azaguard.fhir import memory as memory_module
from azaguard.fhir.gather import observation_lookback_days, plan_searches
from azaguard.fhir.memory import ServerMemory
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.rules import evaluate

BASE = "http://127.0.0.1:8999/fhir"
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
# The batch: the Patient read, the record's searches and the two alert searches.
RECORD_SEARCHES = len(plan_searches("p1", load_mappings(), NOW))
OBSERVATION_SEARCHES = sum(s.resource_type == "Observation" for s in plan_searches("p1", load_mappings(), NOW))
BATCH = f"POST batch({1 + RECORD_SEARCHES + 2})"
RECORD_BATCH = f"POST batch({1 + RECORD_SEARCHES})"
Res = dict[str, Any]


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


def patient(pid: str = "p1") -> Res:
    return {"resourceType": "Patient", "id": pid, "birthDate": "1970-01-01"}


def medication(mid: str = "aza") -> Res:
    rxnorm = "http://www.nlm.nih.gov/research/umls/rxnorm"
    return {
        "resourceType": "Medication",
        "id": mid,
        "code": {"coding": [{"system": rxnorm, "code": "197388"}]},
    }


def order(oid: str, med: str = "aza", pid: str = "p1") -> Res:
    return {
        "resourceType": "MedicationRequest",
        "id": oid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "medicationReference": {"reference": f"Medication/{med}"},
        "authoredOn": "2026-06-01",
    }


def wbc(oid: str, value: float = 5.1, pid: str = "p1") -> Res:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "6690-2"}]},
        "subject": {"reference": f"Patient/{pid}"},
        "effectiveDateTime": "2026-11-10",
        "valueQuantity": {
            "value": value,
            "unit": "10*9/L",
            "system": "http://unitsofmeasure.org",
            "code": "10*9/L",
        },
    }


def recommendation(rid: str, pid: str) -> Res:
    return {
        "resourceType": "ImmunizationRecommendation",
        "id": rid,
        "patient": {"reference": f"Patient/{pid}"},
        "date": "2026-11-01",
        "recommendation": [
            {
                "vaccineCode": [{"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "03"}]}],
                "forecastStatus": {"coding": [{"code": "due"}]},
            }
        ],
    }


def capability(*codes: str) -> Res:
    return {
        "resourceType": "CapabilityStatement",
        "rest": [{"mode": "server", "interaction": [{"code": c} for c in codes]}],
    }


class FakeFhir:
    """Answers reads, searches (one page or `page_size` pages) and batches from an in-memory store.

    Searches filter by the patient and `code` parameters only (the rest of the filtering is
    the real server's job; here we check what gather asks for and what it does with answers).
    """

    def __init__(self, resources: list[Res], *, batch: bool = True, page_size: int = 1000) -> None:
        self.resources = resources
        self.batch = batch
        self.page_size = page_size
        self.include = True
        self.ignore_patient_for: set[str] = set()
        self.entry_override: dict[str, tuple[int, Res | None]] = {}  # resource type -> (status, outcome)
        self.log: list[str] = []  # "GET Observation", BATCH

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/fhir").lstrip("/")
        query = request.url.query.decode()
        if request.method == "POST" and path == "":
            body = json.loads(request.content)
            self.log.append(f"POST {body['type']}({len(body['entry'])})")
            if not self.batch:
                return httpx.Response(405, json=outcome("batch not supported"))
            entries = [self.entry(e["request"]["url"]) for e in body["entry"]]
            return httpx.Response(200, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries})
        self.log.append(f"GET {path}")
        if path == "metadata":
            return httpx.Response(200, json=capability("transaction", *(["batch"] if self.batch else [])))
        status, resource = self.answer(path, query)
        return httpx.Response(status, json=resource)

    def entry(self, url: str) -> Res:
        path, _, query = url.partition("?")
        override = self.entry_override.get(path)
        if override is not None:
            return {"response": {"status": f"{override[0]} Error", "outcome": override[1]}}
        status, resource = self.answer(path, query)
        if status >= 400:
            return {"response": {"status": f"{status} Not Found", "outcome": resource}}
        return {"resource": resource, "response": {"status": "200 OK"}}

    def answer(self, path: str, query: str) -> tuple[int, Res]:
        parts = path.split("/")
        if len(parts) == 2:
            found = next((r for r in self.resources if (r["resourceType"], r["id"]) == tuple(parts)), None)
            return (200, found) if found else (404, outcome(f"{path} not found"))
        params = dict(parse_qsl(query))
        offset = int(params.pop("_offset", "0"))
        rtype = parts[0]
        pref = params.get("subject") or params.get("patient")
        matches = [
            r
            for r in self.resources
            if r["resourceType"] == rtype
            and (
                rtype in self.ignore_patient_for
                or pref in (None, (r.get("subject") or r.get("patient") or {}).get("reference"))
            )
        ]
        if "code" in params:
            wanted = {c.split("|")[-1] for c in params["code"].split(",")}
            matches = [r for r in matches if wanted & {c["code"] for c in r["code"]["coding"]}]
        page = matches[offset : offset + self.page_size]
        entries = [{"resource": r, "search": {"mode": "match"}} for r in page]
        if rtype == "MedicationRequest" and self.include:
            refs = {r["medicationReference"]["reference"] for r in page if "medicationReference" in r}
            entries += [
                {"resource": m, "search": {"mode": "include"}}
                for m in self.resources
                if f"{m['resourceType']}/{m['id']}" in refs
            ]
        if rtype in self.ignore_patient_for:
            warning = outcome(f"Unknown search parameter 'patient' for {rtype}; parameter ignored", "warning")
            entries.append({"resource": warning, "search": {"mode": "outcome"}})
        links = [{"relation": "self", "url": f"{BASE}/{rtype}?{query}"}]
        if offset + self.page_size < len(matches):
            links.append({"relation": "next", "url": f"{BASE}/{rtype}?{query}&_offset={offset + self.page_size}"})
        return 200, {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def outcome(text: str, severity: str = "error") -> Res:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": "processing", "diagnostics": text}],
    }


@pytest.fixture
def serve(httpx_mock: HTTPXMock) -> Callable[[FakeFhir], FakeFhir]:
    def install(fake: FakeFhir) -> FakeFhir:
        httpx_mock.add_callback(fake, is_reusable=True)
        return fake

    return install


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch: pytest.MonkeyPatch) -> ServerMemory:
    """Every test starts in a process that has learnt nothing about the server yet."""
    memory = ServerMemory()
    monkeypatch.setattr(memory_module, "PROCESS_MEMORY", memory)
    return memory


@pytest.fixture
def client() -> Iterator[FhirClient]:
    with FhirClient(BASE, sleep=lambda s: None) as c:
        yield c


def ids(gathered_resources: Any) -> set[str]:
    return {f"{r['resourceType']}/{r['id']}" for r in gathered_resources.resources}


# --- the plan ---------------------------------------------------------------------------------


def test_plan_asks_for_every_analyte_code_and_bounds_only_dated_results(mappings: Mappings) -> None:
    searches = {s.label: s for s in plan_searches("p1", mappings, NOW)}
    labs = dict(searches["lab results and vital signs"].params)
    loinc = {c for a in mappings.analytes.analytes.values() for c in (*a.loinc, *a.percent_loinc)}
    loinc |= set(mappings.pancreatitis.lipase.loinc)  # a lipase older than the recent window is still a lipase
    snomed = {c for a in mappings.analytes.analytes.values() for c in a.snomed}
    asked = [tuple(c.split("|")) for c in labs["code"].split(",")]
    assert {c for s, c in asked if s == "http://loinc.org"} == loinc
    assert {c for s, c in asked if s == "http://snomed.info/sct"} == snomed
    assert len(asked) == len(loinc) + len(snomed)
    assert labs["date"].startswith("ge")
    since = datetime.fromisoformat(labs["date"][2:]).replace(tzinfo=UTC)
    # At least the creatinine-rise window (12 months) back, so its baseline is fetched.
    assert (NOW - since).days >= mappings.policy.labs.creatinine_rise.months_window_days
    assert (NOW - since).days == observation_lookback_days(mappings)
    tpmt = dict(searches["TPMT and pharmacogenomic results"].params)
    assert "date" not in tpmt
    # Phenotypes and genotypes, and the enzyme activity as a number (TPMT RBC 21563-2, 43421-7).
    assert {c.split("|")[1] for c in tpmt["code"].split(",")} == {"79713-4", "84413-4", "53040-2", "21563-2",
                                                                  "43421-7"}
    orders = dict(searches["medication orders"].params)
    assert orders["_include"] == "MedicationRequest:medication"
    assert "status" not in orders  # stopped orders matter for the recent-therapy window
    assert dict(searches["active conditions"].params)["clinical-status"] == "active,recurrence,relapse"
    # Issue 17: encounter diagnoses without a status, symptom check-ins, lab reports and tests under lab-local
    # codes (recent, by date), and a year of infection tests (the baseline of a rising viral load).
    recent = (NOW - timedelta(days=14)).date().isoformat()
    assert dict(searches["recent diagnoses"].params)["recorded-date"] == f"ge{recent}"
    assert dict(searches["symptom check-ins"].params)["authored"] == f"ge{recent}"
    assert dict(searches["recent lab reports"].params)["date"] == f"ge{recent}"
    tests = dict(searches["recent symptoms and lab tests"].params)
    assert tests["category"] == "laboratory,exam,survey" and tests["date"] == f"ge{recent}" and "code" not in tests
    infection = dict(searches["infection tests"].params)
    assert "http://loinc.org|94500-6" in infection["code"].split(",")
    assert infection["date"] == f"ge{(NOW - timedelta(days=365)).date().isoformat()}"


def test_plan_refuses_an_id_that_would_change_the_query(mappings: Mappings) -> None:
    with pytest.raises(ValueError):
        plan_searches("p1&_id=other", mappings, NOW)


# --- batch ------------------------------------------------------------------------------------


def small_record() -> list[Res]:
    return [patient(), medication(), order("mr1"), wbc("o1"), wbc("o2", 4.0)]


def test_small_record_comes_in_exactly_one_batch_request(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    fake.log.clear()
    got = gather(client, "p1", mappings, NOW)
    assert got.method == "batch"
    assert got.requests == 1
    assert fake.log == [BATCH]
    assert ids(got.resources) == {
        "Patient/p1",
        "Medication/aza",
        "MedicationRequest/mr1",
        "Observation/o1",
        "Observation/o2",
    }
    assert got.warnings == []


def test_first_gather_on_a_new_client_sends_no_metadata_request(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    got = gather(client, "p1", mappings, NOW)
    assert fake.log == [BATCH]
    assert got.requests == 1


def test_gathered_record_builds_with_medication_resolved(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    serve(FakeFhir(small_record()))
    record = build_record(gather(client, "p1", mappings, NOW).resources, mappings)
    assert [o.medication_problem for o in record.medicine_uses] == [None]
    assert len(record.measurements_of("wbc")) == 2


def test_medication_not_included_is_fetched_by_one_follow_up_batch(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir([*small_record(), medication("pred"), order("mr2", "pred")]))
    fake.include = False
    fake.log.clear()
    got = gather(client, "p1", mappings, NOW)
    assert fake.log == [BATCH, "POST batch(2)"]
    assert got.requests == 2
    assert {"Medication/aza", "Medication/pred"} <= ids(got.resources)


def test_medication_that_does_not_exist_is_a_warning_and_the_record_says_so(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    serve(FakeFhir([patient(), order("mr1", "gone")]))
    got = gather(client, "p1", mappings, NOW)
    # Worded for people (issue 22): the order named by what and when; the ids only in the machine-readable part.
    assert got.warnings == ["The medication of a medication order of 1 Jun 2026 could not be read from the server: "
                            "it is not there."]
    assert [(u.reference, u.referenced_by, u.reason) for u in got.unfetched] == [
        ("Medication/gone", "MedicationRequest/mr1", "not-found")]
    record = build_record(got.resources, mappings)
    assert record.medicine_uses[0].medication_problem is not None


def test_medication_on_another_server_is_named_for_people_and_not_fetched(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    elsewhere = {**order("mr1"), "medicationReference": {"reference": "https://other.example/fhir/Medication/x9",
                                                         "display": "Imurek 50 mg"}}
    serve(FakeFhir([patient(), elsewhere]))
    got = gather(client, "p1", mappings, NOW)
    assert got.warnings == ["The medication of the Imurek 50 mg medication order of 1 Jun 2026 is kept on another "
                            "server, which azaguard does not read."]
    assert [u.reason for u in got.unfetched] == ["other-server"]


def test_search_with_more_pages_follows_next_links(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir([patient(), *(wbc(f"o{i}") for i in range(5))], page_size=2))
    fake.log.clear()
    got = gather(client, "p1", mappings, NOW)
    assert ids(got.resources) >= {f"Observation/o{i}" for i in range(5)}
    # The two searches the WBCs match (lab results by code, recent tests by category and date: the fake filters
    # by code only) each follow their two next links.
    assert fake.log == [BATCH] + ["GET Observation"] * 4
    assert got.requests == 5


def test_failed_search_entry_raises_naming_the_search(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    fake.entry_override["Condition"] = (400, outcome("Unknown search parameter 'clinical-status'"))
    with pytest.raises(FhirRejected) as info:
        gather(client, "p1", mappings, NOW)
    assert "active conditions" in str(info.value)
    assert info.value.outcome == "Unknown search parameter 'clinical-status'"


def test_busy_search_entry_is_run_again_on_its_own(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    fake.entry_override["Observation"] = (503, None)
    fake.log.clear()
    got = gather(client, "p1", mappings, NOW)
    assert fake.log == [BATCH] + ["GET Observation"] * OBSERVATION_SEARCHES  # each Observation search
    assert {"Observation/o1", "Observation/o2"} <= ids(got.resources)


def test_missing_patient_is_not_found(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    serve(FakeFhir(small_record()))
    with pytest.raises(FhirNotFound, match="Patient/nobody"):
        gather(client, "nobody", mappings, NOW)


def test_resources_of_other_patients_are_dropped_when_the_server_ignores_the_filter(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir([*small_record(), recommendation("r1", "p1"), recommendation("r2", "p2")]))
    fake.ignore_patient_for.add("ImmunizationRecommendation")
    got = gather(client, "p1", mappings, NOW)
    assert "ImmunizationRecommendation/r1" in ids(got.resources)
    assert "ImmunizationRecommendation/r2" not in ids(got.resources)
    assert any("other patients" in w for w in got.warnings)
    assert any("parameter ignored" in w for w in got.warnings)


def test_server_that_is_down_is_unavailable_not_empty(httpx_mock: HTTPXMock, mappings: Mappings) -> None:
    httpx_mock.add_response(method="POST", url=BASE, status_code=503, is_reusable=True)
    with FhirClient(BASE, sleep=lambda s: None, max_retries=1) as c, pytest.raises(FhirUnavailable):
        gather(c, "p1", mappings, NOW)


def test_batch_response_with_a_non_bundle_search_is_a_protocol_error(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    entries = [{"resource": patient(), "response": {"status": "200 OK"}}] + [
        {"resource": patient(), "response": {"status": "200 OK"}} for _ in range(RECORD_SEARCHES + 2)
    ]
    httpx_mock.add_response(
        method="POST", url=BASE, json={"resourceType": "Bundle", "type": "batch-response", "entry": entries}
    )
    with pytest.raises(FhirProtocolError, match="medication orders"):
        gather(client, "p1", mappings, NOW)


# --- without batch -----------------------------------------------------------------------------


FALLBACK_GETS = [
    "GET Patient/p1",
    *(f"GET {s.resource_type}" for s in plan_searches("p1", load_mappings(), NOW)),
    "GET DetectedIssue",
    "GET Flag",
]


def test_refused_batch_falls_back_to_the_same_searches_and_is_remembered(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record(), batch=False))
    got = gather(client, "p1", mappings, NOW)
    assert got.method == "concurrent"
    assert fake.log[0] == BATCH  # tried, refused (405); no metadata asked first
    assert sorted(fake.log[1:]) == sorted(FALLBACK_GETS)
    assert got.requests == 1 + 1 + RECORD_SEARCHES + 2
    assert got.alert_issues == [] and got.alert_flags == []
    fake.log.clear()
    again = gather(client, "p1", mappings, NOW)  # the process remembers: straight to the fallback
    assert again.method == "concurrent"
    assert sorted(fake.log) == sorted(FALLBACK_GETS)
    assert again.requests == 1 + RECORD_SEARCHES + 2
    assert ids(got.resources) == {
        "Patient/p1",
        "Medication/aza",
        "MedicationRequest/mr1",
        "Observation/o1",
        "Observation/o2",
    }


def test_rejected_batch_falls_back_to_concurrent_searches(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    fake.batch = False  # advertised, but refused
    got = gather(client, "p1", mappings, NOW)
    assert got.method == "concurrent"
    assert any("refused the batch" in w for w in got.warnings)
    assert "Observation/o1" in ids(got.resources)


def test_without_batch_a_missing_medication_is_read(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record(), batch=False))
    fake.include = False
    got = gather(client, "p1", mappings, NOW)
    assert "GET Medication/aza" in fake.log
    assert "Medication/aza" in ids(got.resources)


def test_without_batch_a_failed_search_raises_naming_it(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    fake = FakeFhir(small_record(), batch=False)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/ServiceRequest"):
            return httpx.Response(400, json=outcome("Unknown search parameter 'status'"))
        return fake(request)

    httpx_mock.add_callback(handler, is_reusable=True)
    with pytest.raises(FhirRejected, match="open service requests") as info:
        gather(client, "p1", mappings, NOW)
    assert info.value.status == 400


def test_batch_entries_are_gets_of_the_patient_and_relative_searches(
    httpx_mock: HTTPXMock, serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    serve(FakeFhir(small_record()))
    gather(client, "p1", mappings, NOW)
    (post,) = httpx_mock.get_requests(method="POST")
    bundle = json.loads(post.content)
    assert bundle["type"] == "batch"
    requests = [e["request"] for e in bundle["entry"]]
    assert {r["method"] for r in requests} == {"GET"}
    assert requests[0]["url"] == "Patient/p1"
    assert [r["url"].split("?")[0] for r in requests[1:]] == [
        "MedicationRequest", "Observation", "Observation", "Observation", "DiagnosticReport",
        "QuestionnaireResponse", "Observation", "Condition", "Condition", "Immunization",
        "ImmunizationRecommendation", "MedicationStatement", "MedicationDispense", "MedicationAdministration",
        "ServiceRequest", "FamilyMemberHistory", "Procedure", "Procedure", "Encounter", "DetectedIssue", "Flag",
    ]  # fmt: skip
    assert all("Patient/p1" in r["url"] for r in requests[1:])


def test_a_different_patient_in_the_answer_is_refused(
    httpx_mock: HTTPXMock, client: FhirClient, mappings: Mappings
) -> None:
    fake = FakeFhir(small_record())

    def handler(request: httpx.Request) -> httpx.Response:
        response = fake(request)
        body = json.loads(response.content)
        if body.get("type") == "batch-response":
            body["entry"][0]["resource"] = patient("p2")
        return httpx.Response(response.status_code, json=body)

    httpx_mock.add_callback(handler, is_reusable=True)
    with pytest.raises(FhirProtocolError, match="Patient/p2"):
        gather(client, "p1", mappings, NOW)


@pytest.mark.parametrize("status", [400, 403, 404, 501])
def test_a_search_the_server_cannot_answer_is_unread_data_not_none(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings, status: int
) -> None:
    # QuestionnaireResponse searches are the ones servers most often lack (issue 17: a tolerant search).
    fake = serve(FakeFhir(small_record()))
    fake.entry_override["QuestionnaireResponse"] = (status, outcome("Unsupported search"))
    got = gather(client, "p1", mappings, NOW)
    assert got.resources.failures == [(
        "the search for symptom check-ins (QuestionnaireResponse)", "QuestionnaireResponse",
        f"HTTP {status}: Unsupported search",
    )]
    record = build_record(got.resources, mappings)
    found = evaluate(record, mappings, NOW)
    assert "data-unread" in {f.code for f in found if f.rule == "infection-hold"}
    assert {str(f.status) for f in found if f.rule == "interactions"} == {"ok"}  # reads no check-ins


def test_a_record_search_that_fails_still_fails_the_gather(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(FakeFhir(small_record()))
    fake.entry_override["MedicationRequest"] = (400, outcome("Unsupported search"))
    with pytest.raises(FhirRejected):
        gather(client, "p1", mappings, NOW)


class _QuestionnaireRefused(FakeFhir):
    """A server that will not let this token search Questionnaire (403), as some EHRs answer patient-scoped
    tokens for resources outside the patient's compartment."""

    def answer(self, path: str, query: str) -> tuple[int, Res]:
        if path == "Questionnaire":
            return 403, outcome("Questionnaire is not in the granted scopes")
        return super().answer(path, query)


def _checkin(text: str | None) -> Res:
    item: Res = {"linkId": "1", "answer": [{"valueBoolean": True}]}
    if text:
        item["text"] = text
    return {"resourceType": "QuestionnaireResponse", "id": "qr1", "status": "completed",
            "questionnaire": "https://clinic.example/Questionnaire/checklist|3", "subject": {"reference": "Patient/p1"},
            "authored": "2026-11-19T10:00:00Z", "item": [item]}


def test_a_questionnaire_that_cannot_be_read_leaves_checkins_unread_when_items_need_it(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    fake = serve(_QuestionnaireRefused([*small_record(), _checkin(None)]))
    got = gather(client, "p1", mappings, NOW)
    assert "GET Questionnaire" in fake.log
    ((action, resource_type, error),) = got.resources.failures
    assert action == "the search for the Questionnaire https://clinic.example/Questionnaire/checklist (Questionnaire)"
    assert resource_type == "QuestionnaireResponse" and error.startswith("HTTP 403")
    found = evaluate(build_record(got.resources, mappings), mappings, NOW)
    assert "data-unread" in {f.code for f in found if f.rule == "infection-hold"}


def test_a_questionnaire_that_cannot_be_read_is_a_warning_when_the_items_say_what_they_ask(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    serve(_QuestionnaireRefused([*small_record(), _checkin("Sore throat?")]))
    got = gather(client, "p1", mappings, NOW)
    assert got.resources.failures == []
    assert [w for w in got.warnings if "could not be read" in w and "checklist" in w]
    found = evaluate(build_record(got.resources, mappings), mappings, NOW)
    assert "warning-signs" in {f.code for f in found if f.rule == "infection-hold"}


def test_a_server_ignoring_the_checkin_filter_costs_one_counted_line_per_kind_of_warning(
    serve: Callable[[FakeFhir], FakeFhir], client: FhirClient, mappings: Mappings
) -> None:
    others = [{**_checkin("Sore throat?"), "id": f"qr-{i}", "subject": {"reference": f"Patient/o{i}"}}
              for i in range(5)]
    fake = serve(FakeFhir([*small_record(), _checkin("Sore throat?"), *others], page_size=2))
    fake.ignore_patient_for.add("QuestionnaireResponse")
    got = gather(client, "p1", mappings, NOW)
    assert {r["id"] for r in got.resources.of_type("QuestionnaireResponse")} == {"qr1"}
    checkins = [w for w in got.warnings if w.startswith("symptom check-ins:")]
    assert checkins == [
        "symptom check-ins: the server said: Unknown search parameter 'patient' for QuestionnaireResponse; "
        "parameter ignored (on 3 pages)",
        "symptom check-ins: the server returned 5 QuestionnaireResponse resource(s) of other patients or not tied "
        "to this one (QuestionnaireResponse/qr-0, QuestionnaireResponse/qr-1, QuestionnaireResponse/qr-2, "
        "QuestionnaireResponse/qr-3, QuestionnaireResponse/qr-4); they were left out",
    ]
