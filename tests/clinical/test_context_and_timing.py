"""Context that changes a threshold and vaccines in time (clinical-rules §9, §2): each window at its boundary and
one step either side, and the contexts' non-catches. Records as in test_meaning_pass."""

from __future__ import annotations

from typing import Any

import pytest

from azaguard.mappings import load_mappings
from azaguard.resources import resource_set_from_json
from azaguard.service import check_resources
from tests.clinical.builders import NOW
from tests.clinical.test_meaning_pass import (
    ICD10CM,
    MMR,
    NORMAL,
    _aih,
    _planned_start,
    _planned_stop,
    _transfusion,
    alt,
    aza,
    cc,
    condition,
    obs,
    recommendation,
    record,
    tpmt,
)

Resource = dict[str, Any]


def headline(rule: str, bundle: Resource) -> tuple[str, str]:
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    found = [f for f in result.findings if f.rule == rule]
    return str(found[0].status), found[0].code


# The policy: live vaccines >= 28 days before starting, avoided within 14 days; 90 days after stopping.
@pytest.mark.parametrize(("gap", "status", "code"), [
    (29, "caution", "live-vaccine-before-planned-start"),
    (28, "caution", "live-vaccine-before-planned-start"),
    (27, "caution", "live-vaccine-close-to-planned-start"),
    (14, "caution", "live-vaccine-close-to-planned-start"),
    (13, "hold", "live-vaccine-planned"),
])
def test_live_vaccine_before_a_planned_start(gap: int, status: str, code: str) -> None:
    bundle = record(_planned_start(gap + 3), recommendation(MMR, due_in_days=3))
    assert headline("vaccination-hold", bundle) == (status, code)


@pytest.mark.parametrize(("after_stop", "status"), [(91, "caution"), (90, "caution"), (89, "hold")])
def test_live_vaccine_after_a_planned_stop(after_stop: int, status: str) -> None:
    bundle = record(_planned_stop(10), recommendation(MMR, due_in_days=10 + after_stop))
    assert headline("vaccination-hold", bundle)[0] == status


def test_an_order_past_its_end_but_still_active_is_no_planned_stop() -> None:
    bundle = record(_planned_stop(-10), recommendation(MMR, due_in_days=200))
    assert headline("vaccination-hold", bundle)[0] == "hold"


@pytest.mark.parametrize(("values", "status"), [
    ((450, 280, 160), "caution"),  # falling: response
    ((280, 160), "caution"),  # two falling results are a trend
    ((160, 160), "hold"),  # not falling
    ((90, 160, 260), "hold"),  # rising: the alarm
    ((260,), "hold"),  # no trend to judge
])
def test_alt_in_autoimmune_hepatitis(values: tuple[float, ...], status: str) -> None:
    results = [alt(v, days_ago=2 + 30 * (len(values) - 1 - i)) for i, v in enumerate(values)]
    assert headline("liver", record(aza(), _aih, *results))[0] == status


def test_a_falling_alt_without_autoimmune_hepatitis_still_holds() -> None:
    assert headline("liver", record(aza(), alt(450, days_ago=60), alt(160, days_ago=2)))[0] == "hold"


@pytest.mark.parametrize(("code", "status"), [
    ("Z99.2", "not-applicable"), ("Z49.01", "not-applicable"),  # under the listed parent Z49 (WHO) / Z49.01 (CM)
    ("N18.6", "caution"),  # end-stage renal disease alone is not dialysis
])
def test_dialysis(code: str, status: str) -> None:
    bundle = record(aza(), condition(cc(code, ICD10CM, code), days_ago=300),
                    obs("33914-3", 8, "mL/min/{1.73_m2}", days_ago=2))
    assert headline("kidney", bundle)[0] == status


def test_refuted_dialysis_does_not_count() -> None:
    dx = condition(cc("Z99.2", ICD10CM, "Dependence on renal dialysis")) | {
        "verificationStatus": cc("refuted", "http://terminology.hl7.org/CodeSystem/condition-ver-status")}
    assert headline("kidney", record(aza(), dx, obs("33914-3", 8, "mL/min/{1.73_m2}", days_ago=2)))[0] != \
        "not-applicable"


@pytest.mark.parametrize(("transfused_days_before", "status"), [
    (90, "caution"), (91, "ok"), (0, "caution"), (-1, "ok"),  # -1: the transfusion came after the test
])
def test_tpmt_after_a_transfusion(transfused_days_before: int, status: str) -> None:
    bundle = record(aza(), tpmt(NORMAL, days_ago=30), _transfusion(30 + transfused_days_before))
    assert headline("tpmt", bundle)[0] == status


def test_a_genotype_after_a_transfusion_is_not_affected() -> None:
    genotype = obs("84413-4", None, None, days_ago=30) | {"valueString": "TPMT *1/*1",
                                                           "component": [{"code": cc("48018-6", "http://loinc.org"),
                                                                          "valueCodeableConcept": cc(
                                                                              "HGNC:12014",
                                                                              "http://www.genenames.org/geneId",
                                                                              "TPMT")}]}
    bundle = record(aza(), genotype, _transfusion(40))
    result = check_resources(resource_set_from_json(bundle), mappings=load_mappings(), now=NOW)
    assert "tpmt-after-transfusion" not in {f.code for f in result.findings if f.rule == "tpmt"}
