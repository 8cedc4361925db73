"""Monitoring schedule: is the blood count / liver panel done as often as the schedule asks?

Default schedule (US label): weekly for the first 28 days, every 15 days to day 91, then every
31 days; a test is overdue 3 days (grace) after its interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest

from azaguard.findings import Finding, Status
from azaguard.mappings import Mappings, load_mappings
from azaguard.rules import monitoring
from tests.clinical.builders import NOW, Resource, azathioprine, observation, record_of
from tests.words import said

WBC, PLT, ALT, AST = "6690-2", "777-3", "1742-6", "1920-8"


def run(*resources: Resource, mappings: Mappings | None = None, now: datetime = NOW) -> list[Finding]:
    return monitoring.evaluate(record_of(*resources), mappings or load_mappings(), now)


def by_code(findings: list[Finding]) -> dict[str, Status]:
    return {f.code: f.status for f in findings}


def labs_done(days_ago: float) -> list[Resource]:
    """A CBC and an ALT, both `days_ago`."""
    return [
        observation(WBC, 6.0, "10*9/L", days_ago=days_ago),
        observation(ALT, 30, "U/L", days_ago=days_ago),
    ]


@dataclass(frozen=True)
class Case:
    situation: str
    started_days_ago: float
    tested_days_ago: float
    expected: str  # "up-to-date" or "overdue", for both CBC and LFT


CASES = [
    Case("first month, tested 5 days ago (weekly)", 10, 5, "up-to-date"),
    Case("first month, last test 10 days ago: within 7 days + 3 grace", 20, 10, "up-to-date"),
    Case("first month, last test 11 days ago: overdue", 20, 11, "overdue"),
    Case("month two, tested 17 days ago (every 15 days + grace)", 60, 17, "up-to-date"),
    Case("month two, last test 19 days ago: overdue", 60, 19, "overdue"),
    Case("maintenance, tested 33 days ago (monthly + grace)", 200, 33, "up-to-date"),
    Case("maintenance, last test 35 days ago: overdue", 200, 35, "overdue"),
    Case("day 27 is still the weekly phase: 12 days is overdue", 27, 12, "overdue"),
    Case("day 28 starts the twice-monthly phase: 12 days is fine", 28, 12, "up-to-date"),
]


@pytest.mark.parametrize("case", CASES, ids=[c.situation for c in CASES])
def test_schedule_phases(case: Case) -> None:
    found = run(azathioprine(started_days_ago=case.started_days_ago), *labs_done(case.tested_days_ago))
    expected = Status.OK if case.expected == "up-to-date" else Status.CAUTION
    assert by_code(found) == {f"cbc-{case.expected}": expected, f"lft-{case.expected}": expected}
    if case.expected == "overdue":
        assert all(f.severity == "moderate" for f in found)


def test_detail_names_the_schedule_and_phase() -> None:
    found = run(azathioprine(started_days_ago=60), *labs_done(19))
    cbc = next(f for f in found if f.code == "cbc-overdue")
    assert "Imuran US prescribing information" in said(cbc).detail  # the schedule cited by name, never its key
    assert "'us-label'" not in said(cbc).detail
    assert "day 60 of treatment (days 28 to 91)" in said(cbc).detail
    assert "every 15 days" in said(cbc).summary


def test_never_tested_cannot_be_evaluated() -> None:
    found = run(azathioprine(started_days_ago=60))
    assert by_code(found) == {
        "cbc-no-result": Status.CANNOT_EVALUATE,
        "lft-no-result": Status.CANNOT_EVALUATE,
    }
    assert found[0].missing


def test_cbc_done_but_liver_tests_never() -> None:
    found = run(azathioprine(started_days_ago=200), observation(PLT, 250, "10*9/L", days_ago=5))
    assert by_code(found) == {"cbc-up-to-date": Status.OK, "lft-no-result": Status.CANNOT_EVALUATE}


def test_ast_counts_as_a_liver_test() -> None:
    found = run(
        azathioprine(started_days_ago=200),
        observation(WBC, 6.0, "10*9/L", days_ago=5),
        observation(AST, 25, "U/L", days_ago=5),
    )
    assert by_code(found) == {"cbc-up-to-date": Status.OK, "lft-up-to-date": Status.OK}


def test_latest_of_several_results_counts() -> None:
    found = run(
        azathioprine(started_days_ago=200),
        observation(WBC, 6.0, "10*9/L", days_ago=90),
        observation(WBC, 6.0, "10*9/L", days_ago=4, rid="newest"),
        observation(ALT, 30, "U/L", days_ago=4),
    )
    cbc = next(f for f in found if f.code.startswith("cbc"))
    assert cbc.status == Status.OK
    assert cbc.evidence[0].reference == "Observation/newest"


def test_start_date_unknown_but_tested_within_a_week() -> None:
    found = run(azathioprine(started_days_ago=None), *labs_done(5))
    assert by_code(found) == {"cbc-up-to-date": Status.OK, "lft-up-to-date": Status.OK}
    assert "start date is unknown" in said(found[0]).detail


def test_start_date_unknown_and_last_test_eight_days_ago_is_past_the_strictest_interval() -> None:
    found = run(azathioprine(started_days_ago=None), *labs_done(8))
    assert by_code(found) == {
        "cbc-start-unknown": Status.CANNOT_EVALUATE,
        "lft-start-unknown": Status.CANNOT_EVALUATE,
    }


def test_start_date_unknown_and_last_test_three_weeks_ago() -> None:
    found = run(azathioprine(started_days_ago=None), *labs_done(20))
    assert by_code(found) == {
        "cbc-start-unknown": Status.CANNOT_EVALUATE,
        "lft-start-unknown": Status.CANNOT_EVALUATE,
    }
    assert "start date unknown" in said(found[0]).detail
    assert "azathioprine start date" in found[0].missing


def test_bsr_schedule_allows_three_monthly_tests_in_maintenance() -> None:
    bsr = load_mappings().with_monitoring_schedule("bsr-2017")
    found = run(azathioprine(started_days_ago=200), *labs_done(60), mappings=bsr)
    assert by_code(found) == {"cbc-up-to-date": Status.OK, "lft-up-to-date": Status.OK}
    assert "BSR 2017 monitoring guideline" in said(found[0]).detail
    # The same patient under the default (US label) schedule is overdue.
    assert by_code(run(azathioprine(started_days_ago=200), *labs_done(60)))["cbc-overdue"] == Status.CAUTION


def test_eu_schedule_is_weekly_for_eight_weeks() -> None:
    eu = load_mappings().with_monitoring_schedule("eu-smpc")
    found = run(azathioprine(started_days_ago=45), *labs_done(12), mappings=eu)
    assert by_code(found) == {"cbc-overdue": Status.CAUTION, "lft-overdue": Status.CAUTION}


def test_not_applicable_when_not_on_azathioprine() -> None:
    assert by_code(run(*labs_done(100))) == {"not-on-azathioprine": Status.NOT_APPLICABLE}


def test_implicates_the_azathioprine_order() -> None:
    found = run(azathioprine(started_days_ago=200, rid="aza"), *labs_done(40))
    assert all(f.implicated == ("MedicationRequest/aza",) for f in found)
