"""Patient.link on the server path, against the real local FHIR server (sekmet-fhir): a merged patient's data filed
under the other id is fetched, a 'replaced-by' record leads to the surviving one (and the user is told), cycles end,
and the number of linked records fetched is bounded (past it, no check can say ok).

FHIR R4 link-type: replaced-by — "The patient resource containing this link must no longer be used. The link points
forward to another patient resource that must be used in lieu of the patient resource that contains this link."
replaces — "The patient resource containing this link is the current active patient record. The link points back to
an inactive patient resource that has been merged into this resource, and should be consulted to retrieve additional
referenced information." seealso — "points to another Patient or RelatedPerson resource that is known to contain data
about the same person"."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from azaguard.fhir import FhirClient
from azaguard.fhir.gather import MAX_LINK_DEPTH, MAX_LINKED_RECORDS, gather
from azaguard.mappings import load_mappings
from azaguard.service import check_on_server
from tests.fhir.serverdata import loaded, put
from tests.recordparts import aza_order, patient
from tests.recordparts import wbc as wbc_count

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def aza(rid: str, pid: str) -> dict[str, Any]:
    return aza_order(rid, pid, "2026-05-01")


def wbc(rid: str, pid: str, value: float) -> dict[str, Any]:
    return wbc_count(rid, pid, value, "2026-11-18T08:00:00Z")


@pytest.fixture
def client(fhir_server: Any) -> Iterator[FhirClient]:
    with loaded(fhir_server) as c:
        yield c


def blood_counts(result: Any) -> str:
    return str(next(f for f in result.findings if f.rule == "blood-counts").status)


def test_the_order_filed_under_the_merged_id_is_fetched(client: FhirClient) -> None:
    """The surviving record holds the low WBC; the azathioprine order is still filed under the old id."""
    put(client, [patient("lk-old", ("replaced-by", "lk-new"), active=False), patient("lk-new", ("replaces", "lk-old")),
        aza("lk-aza", "lk-old"), wbc("lk-wbc", "lk-new", 2.0)])
    result = check_on_server(client, "lk-new", mappings=load_mappings(), now=NOW)
    assert blood_counts(result) == "hold"
    assert {o.ref for o in result.record.medicine_uses} == {"MedicationRequest/lk-aza"}
    assert any("Patient/lk-old (Patient.link replaces)" in w for w in result.warnings)


def test_a_replaced_record_leads_to_the_surviving_one_and_says_so(client: FhirClient) -> None:
    put(client, [patient("lk2-old", ("replaced-by", "lk2-new"), active=False),
                 patient("lk2-new", ("replaces", "lk2-old")),
                 aza("lk2-aza", "lk2-new"), wbc("lk2-wbc", "lk2-old", 2.0)])
    result = check_on_server(client, "lk2-old", mappings=load_mappings(), now=NOW)
    assert result.patient_ref == "Patient/lk2-new"  # the alerts go to the surviving record
    assert blood_counts(result) == "hold"
    assert any("replaced by Patient/lk2-new" in w and "surviving record" in w for w in result.warnings)


def test_without_links_the_other_id_stays_out(client: FhirClient) -> None:
    """The same two records unlinked: the order under the other id is another patient's (not applicable)."""
    put(client, [patient("lk3-a"), patient("lk3-b"), aza("lk3-aza", "lk3-b"), wbc("lk3-wbc", "lk3-a", 2.0)])
    result = check_on_server(client, "lk3-a", mappings=load_mappings(), now=NOW)
    assert blood_counts(result) == "not-applicable"


def test_a_cycle_of_seealso_links_ends(client: FhirClient) -> None:
    put(client, [patient("lk4-a", ("seealso", "lk4-b")), patient("lk4-b", ("seealso", "lk4-c")),
        patient("lk4-c", ("seealso", "lk4-a")), aza("lk4-aza", "lk4-c"), wbc("lk4-wbc", "lk4-b", 2.0)])
    gathered = gather(client, "lk4-a", load_mappings(), NOW)
    ids = sorted(p["id"] for p in gathered.resources.patients())
    assert ids == ["lk4-a", "lk4-b", "lk4-c"]
    assert not gathered.resources.failures
    assert blood_counts(check_on_server(client, "lk4-a", mappings=load_mappings(), now=NOW)) == "hold"


def test_past_the_bound_no_check_can_say_ok(client: FhirClient) -> None:
    """A chain longer than the bound: the records past it are not fetched, and that is a failure, never 'none'."""
    n = max(MAX_LINKED_RECORDS, MAX_LINK_DEPTH) + 2
    chain = [patient(f"lk5-{i}", ("seealso", f"lk5-{i + 1}")) for i in range(n)] + [patient(f"lk5-{n}")]
    put(client, [*chain, aza("lk5-aza", "lk5-0"), wbc("lk5-wbc", "lk5-0", 6.0)])
    gathered = gather(client, "lk5-0", load_mappings(), NOW)
    assert len(gathered.resources.patients()) == 1 + min(MAX_LINKED_RECORDS, MAX_LINK_DEPTH)
    assert gathered.resources.failures
    result = check_on_server(client, "lk5-0", mappings=load_mappings(), now=NOW)
    assert "ok" not in {str(f.status) for f in result.findings}
    assert any(f.code == "data-unread" for f in result.findings)


def test_a_link_to_a_record_the_server_does_not_have_is_said(client: FhirClient) -> None:
    put(client, [patient("lk6-a", ("replaces", "lk6-gone")), aza("lk6-aza", "lk6-a")])
    result = check_on_server(client, "lk6-a", mappings=load_mappings(), now=NOW)
    assert any("Patient/lk6-gone" in w and "does not exist" in w for w in result.warnings)
