"""Context from what was done to the patient (issue 24 remainder): dialysis from dialysis Procedures and Encounters
(not only a Condition), a transfusion known only by name, and the context paths where data is missing or cannot be
read — never "ok" by skipping it (clinical-rules §7, §9).

FHIR R4 Encounter.class: "Concepts representing classification of patient encounter such as ambulatory (outpatient),
inpatient, emergency, home health or others due to local variations"; Encounter.type: "Specific type of encounter
(e.g. e-mail consultation, surgical day-care, skilled nursing, rehabilitation)"; Encounter.status planned/cancelled/
entered-in-error: the encounter did not (yet) happen.
"""

from __future__ import annotations

from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.resources import resource_set_from_json
from azaguard.service import check_resources
from tests.clinical.builders import NOW
from tests.clinical.test_meaning_pass import (
    MMR,
    NORMAL,
    PAT,
    RX,
    SCT,
    _aih,
    _planned_start,
    _transfusion,
    alt,
    aza,
    cc,
    med,
    obs,
    recommendation,
    record,
    tpmt,
    when,
)

Resource = dict[str, Any]
RECENT = load_mappings().meaning.context.dialysis.recent_days.value  # 14 days


def findings(rule: str, bundle: Resource) -> list[Any]:
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    return [f for f in result.findings if f.rule == rule]


def headline(rule: str, bundle: Resource) -> tuple[str, str]:
    found = findings(rule, bundle)
    return str(found[0].status), found[0].code


LOW_EGFR = obs("33914-3", 8, "mL/min/{1.73_m2}", days_ago=2)


def dialysis_procedure(days_ago: float, concept: Resource | None = None, status: str = "completed") -> Resource:
    return {"resourceType": "Procedure", "id": f"dp{days_ago}", "status": status, "subject": {"reference": PAT},
            "code": concept or cc("302497006", SCT, "Hemodialysis"), "performedDateTime": when(days_ago=days_ago)}


def encounter(days_ago: float, *, status: str = "finished", klass: Resource | None = None,
              type_: Resource | None = None) -> Resource:
    r: Resource = {"resourceType": "Encounter", "id": f"enc{days_ago}{status}", "status": status,
                   "subject": {"reference": PAT}, "period": {"start": when(days_ago=days_ago)},
                   "class": klass or {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB",
                                      "display": "ambulatory"}}
    if type_ is not None:
        r["type"] = [type_]
    return r


@pytest.mark.parametrize(("days_ago", "status"), [
    (RECENT - 1, "not-applicable"), (RECENT, "not-applicable"),  # inside the window, and at its edge
    (RECENT + 1, "caution"),  # an older session (dialysis for an acute kidney injury, since stopped): thresholds apply
    (-1, "caution"),  # a session dated tomorrow has not happened
])
def test_dialysis_from_a_procedure_at_the_window(days_ago: float, status: str) -> None:
    assert headline("kidney", record(aza(), dialysis_procedure(days_ago), LOW_EGFR))[0] == status


def test_dialysis_procedure_known_only_by_name() -> None:
    named = dialysis_procedure(3, {"text": "Haemodialysis session, 4 h"})
    assert headline("kidney", record(aza(), named, LOW_EGFR)) == ("not-applicable", "on-dialysis")


def test_a_dialysis_procedure_not_done_does_not_count() -> None:
    assert headline("kidney", record(aza(), dialysis_procedure(3, status="not-done"), LOW_EGFR))[0] == "caution"


@pytest.mark.parametrize(("enc", "status"), [
    (encounter(2, type_=cc("265764009", SCT, "Renal dialysis")), "not-applicable"),  # by type code
    (encounter(2, klass={"system": "urn:local:encounter-class", "code": "DIAL", "display": "Dialysis unit"}),
     "not-applicable"),  # by a local class named dialysis
    (encounter(2, type_={"text": "Peritoneal dialysis clinic"}), "not-applicable"),  # by type name
    (encounter(2, status="cancelled", type_=cc("265764009", SCT, "Renal dialysis")), "caution"),
    (encounter(2, status="planned", type_=cc("265764009", SCT, "Renal dialysis")), "caution"),
    (encounter(RECENT + 1, type_=cc("265764009", SCT, "Renal dialysis")), "caution"),
    (encounter(2, type_=cc("185349003", SCT, "Encounter for check up")), "caution"),  # another encounter
])
def test_dialysis_from_an_encounter(enc: Resource, status: str) -> None:
    assert headline("kidney", record(aza(), enc, LOW_EGFR))[0] == status


def test_the_dialysis_finding_names_its_evidence() -> None:
    found = findings("kidney", record(aza(), encounter(2, type_=cc("265764009", SCT, "Renal dialysis")), LOW_EGFR))
    assert found[0].code == "on-dialysis"
    assert [e.reference for e in found[0].evidence] == ["Encounter/enc2finished"]


def test_a_transfusion_known_only_by_name_is_read_from_a_procedure() -> None:
    named = _transfusion(40) | {"code": {"text": "Transfusion of 2 units packed red cells"}}
    assert headline("tpmt", record(aza(), tpmt(NORMAL, days_ago=30), named)) == ("caution", "tpmt-after-transfusion")


# --- missing or unreadable data in the context paths: never "ok" by skipping it --------------------------------


def test_an_unreadable_alt_inside_the_trend_leaves_the_hold() -> None:
    """450 -> (unreadable) -> 160: the result in between cannot be read, so 'falling' cannot be judged."""
    unreadable = obs("1742-6", 900, "furlongs", days_ago=20)
    bundle = record(aza(), _aih, alt(450, days_ago=40), unreadable, alt(160, days_ago=2))
    found = findings("liver", bundle)
    assert str(found[0].status) == "hold"
    assert "cannot be judged" in " ".join(c for f in found for c in f.checked)


def test_an_undated_alt_leaves_the_hold() -> None:
    undated = obs("1742-6", 900, "U/L")
    del undated["effectiveDateTime"]
    bundle = record(aza(), _aih, alt(450, days_ago=40), alt(280, days_ago=20), alt(160, days_ago=2), undated)
    assert str(findings("liver", bundle)[0].status) == "hold"


def test_the_same_trend_all_readable_is_the_falling_caution() -> None:
    bundle = record(aza(), _aih, alt(450, days_ago=40), alt(280, days_ago=20), alt(160, days_ago=2))
    assert headline("liver", bundle) == ("caution", "alt-falling-in-autoimmune-hepatitis")


def test_an_undated_transfusion_leaves_the_tpmt_phenotype_unchecked() -> None:
    undated = _transfusion(40)
    del undated["performedDateTime"]
    assert headline("tpmt", record(aza(), tpmt(NORMAL, days_ago=30), undated)) == (
        "cannot-evaluate", "tpmt-transfusion-timing-unknown")


def test_an_undated_phenotype_with_a_transfusion_on_record_is_unchecked() -> None:
    phenotype = tpmt(NORMAL)
    del phenotype["effectiveDateTime"]
    found = findings("tpmt", record(aza(), phenotype, _transfusion(200)))
    assert "tpmt-transfusion-timing-unknown" in {f.code for f in found}


def test_dated_and_far_apart_stays_ok() -> None:
    assert headline("tpmt", record(aza(), tpmt(NORMAL, days_ago=30), _transfusion(200)))[0] == "ok"


def test_a_planned_start_after_a_course_with_an_unknown_stop_date_holds() -> None:
    """An earlier course stopped on an unrecorded date: the 3-month wait after it may still run, so a live vaccine
    before the planned start is the hold, not the 'give it before starting' caution."""
    earlier = med(cc("197388", RX, "azathioprine 50 MG Oral Tablet"), status="stopped", days_ago=120)
    bundle = record(earlier, _planned_start(40), recommendation(MMR, due_in_days=3))
    assert headline("vaccination-hold", bundle)[0] == "hold"
    # ... and without the earlier course, the same plan is the advised-timing caution.
    assert headline("vaccination-hold", record(_planned_start(40), recommendation(MMR, due_in_days=3))) == (
        "caution", "live-vaccine-before-planned-start")


def test_dialysis_from_a_cpt_coded_procedure() -> None:
    """CPT 90935 (hemodialysis with one evaluation), as claims-derived records code it."""
    cpt = dialysis_procedure(5, cc("90935", "http://www.ama-assn.org/go/cpt", "Hemodialysis, single evaluation"))
    assert headline("kidney", record(aza(), cpt, LOW_EGFR)) == ("not-applicable", "on-dialysis")
