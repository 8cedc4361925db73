"""The gatherer asks no search to be sorted (a sort only costs the server): the findings must not
depend on the order in which a server returns the resources."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from azaguard.fhir.gather import plan_alert_searches, plan_searches
from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.resources import ResourceSet, load_json_file, resource_set_from_json
from azaguard.rules import evaluate
from azaguard.sandbox.large_record import synthea_like_record
from azaguard.sandbox.patients import build_patients

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.json"))
NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def mappings() -> Mappings:
    return load_mappings()


def orders(resources: list[Any]) -> list[list[Any]]:
    """As given, reversed, and interleaved (every other one first): three orders a server may use."""
    return [resources, resources[::-1], resources[::2] + resources[1::2]]


def findings_in_every_order(resources: list[Any], m: Mappings) -> list[Any]:
    return [evaluate(build_record(ResourceSet.from_resources(o), m), m, NOW) for o in orders(resources)]


def test_no_search_asks_the_server_to_sort(mappings: Mappings) -> None:
    searches = plan_searches("p1", mappings, NOW) + plan_alert_searches("p1")
    assert all(k != "_sort" for s in searches for k, _ in s.params)


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_findings_do_not_depend_on_the_order_of_resources(path: Path, mappings: Mappings) -> None:
    first, *others = findings_in_every_order(load_json_file(path).resources, mappings)
    assert all(o == first for o in others)


def test_sandbox_findings_do_not_depend_on_the_order_of_resources(mappings: Mappings) -> None:
    for p in build_patients(NOW):
        first, *others = findings_in_every_order(p.resources, mappings)
        assert all(o == first for o in others), p.id


def test_large_record_findings_do_not_depend_on_the_order_of_resources(mappings: Mappings) -> None:
    resources = resource_set_from_json(synthea_like_record(NOW)).resources
    first, *others = findings_in_every_order(resources, mappings)
    assert first and all(o == first for o in others)
