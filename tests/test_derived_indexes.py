"""What is derived from the mappings (indexes, compiled patterns) is built once per Mappings object, by the
Mappings object, and lives as long as it: never per patient, never in a module global."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from azaguard.mappings import Mappings, load_mappings
from azaguard.record import build_record
from azaguard.resources import resource_set_from_json

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "aza-leukopenic.json"


def _built(m: Mappings) -> int:
    calls = 0

    def build(_: Mappings) -> object:
        nonlocal calls
        calls += 1
        return object()

    first = m.derived(build)
    assert m.derived(build) is first
    return calls


def test_an_index_is_built_once_per_mappings_object() -> None:
    m = load_mappings()
    assert _built(m) == 1
    other = Mappings(**{f: getattr(m, f) for f in m.__struct_fields__})  # an equal, distinct object: its own
    assert _built(other) == 1


def test_two_records_read_with_one_mappings_share_its_indexes() -> None:
    m = Mappings(**{f: getattr(load_mappings(), f) for f in load_mappings().__struct_fields__})
    bundle = json.loads(EXAMPLE.read_text())
    build_record(resource_set_from_json(bundle), m)
    derived = dict(m.__dict__["_derived"])
    assert derived  # the builder's code indexes, the recognisers' patterns
    build_record(resource_set_from_json(bundle), m)
    assert m.__dict__["_derived"].keys() == derived.keys()
    assert all(m.__dict__["_derived"][k] is v for k, v in derived.items())


def test_no_module_keeps_an_index_keyed_by_the_mappings_identity() -> None:
    """The old way (a module-level dict or PerMappings found by id(mappings)) is gone from the package."""
    for path in (ROOT / "plugin" / "azaguard").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert "PerMappings" not in names, path
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
                 and n.func.id == "id" and any(isinstance(a, ast.Attribute) and a.attr in ("units", "analytes")
                                               for a in n.args)]
        assert not calls, path
