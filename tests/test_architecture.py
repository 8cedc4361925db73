"""The package's floors: imports go one way, and no module reaches into another package's private names.

Every import counts: module level, inside functions and under TYPE_CHECKING (a type-only import is still a
dependency the next reader has to hold in mind). The graph is grimp's (the library behind import-linter).
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "plugin" / "azaguard"

# Imports that still close a cycle (the import back), each with who is breaking it. The test removes them
# and then finds no cycle; an entry that no longer exists is fine (delete it), any other cycle fails.
KNOWN_BACK_IMPORTS: dict[tuple[str, str], str] = {}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("azaguard", cache_dir=None)


def cycle_edges(graph: grimp.ImportGraph) -> dict[tuple[str, str], tuple[str, ...]]:
    """Each import a -> b that lies on a cycle, with the shortest way back from b to a."""
    out: dict[tuple[str, str], tuple[str, ...]] = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                out[(importer, imported)] = (importer, *back)
    return out


def package_reads(source: str, module: str) -> set[str]:
    """The azaguard packages this module reads names from (`from azaguard.fhir import memory`): Python runs the
    package's __init__ for it, so a package whose __init__ imports this module closes a cycle through it, which
    grimp (recording only azaguard.fhir.memory) does not show."""
    out = set()
    for node in ast.walk(ast.parse(source)):
        name = node.module or "" if isinstance(node, ast.ImportFrom) and node.level == 0 else ""
        if name.startswith("azaguard.") and name != module and _is_package(name):
            out.add(name)
    return out


def with_package_reads(graph: grimp.ImportGraph) -> grimp.ImportGraph:
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        module = _module_name(path)
        for package in package_reads(path.read_text(encoding="utf-8"), module):
            graph.add_import(importer=module, imported=package)
    return graph


def test_imports_go_one_way() -> None:
    graph = with_package_reads(grimp.build_graph("azaguard", cache_dir=None))
    for importer, imported in KNOWN_BACK_IMPORTS:
        if graph.direct_import_exists(importer=importer, imported=imported):
            graph.remove_import(importer=importer, imported=imported)
    cycles = cycle_edges(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(chain) for chain in cycles.values())


def test_the_cycle_finder_finds_a_cycle(graph: grimp.ImportGraph) -> None:
    # The test above can fail: an import from the registry back to the engine that reads it closes a loop.
    graph.add_import(importer="azaguard.registry", imported="azaguard.rules")
    try:
        assert ("azaguard.registry", "azaguard.rules") in cycle_edges(graph)
    finally:
        graph.remove_import(importer="azaguard.registry", imported="azaguard.rules")


def test_a_package_read_counts_as_importing_the_package() -> None:
    # fhir/__init__.py imports fhir.gather; were gather to read `from azaguard.fhir import memory`, Python would run
    # that __init__ for it: a cycle grimp alone records as gather -> fhir.memory.
    assert package_reads("from azaguard.fhir import memory", "azaguard.fhir.gather") == {"azaguard.fhir"}
    assert package_reads("import azaguard.fhir.memory as m\nfrom azaguard.fhir.memory import X", "x") == set()
    graph = grimp.build_graph("azaguard", cache_dir=None)
    graph.add_import(importer="azaguard.fhir.gather", imported="azaguard.fhir")
    assert ("azaguard.fhir", "azaguard.fhir.gather") in cycle_edges(graph)


# --- packages: squashed, they import one way too ----------------------------------------------------

# Package-level imports that still close a cycle, (importer, imported) as children of one package, each with who
# is breaking it (empty: none left).
KNOWN_PACKAGE_BACK_IMPORTS: dict[tuple[str, str], str] = {}


def package_cycles(graph: grimp.ImportGraph) -> list[str]:
    """Within each package, its children (subpackages squashed with everything under them, and modules) as one
    graph: each import between two children that lies on a cycle, with the modules that make it."""
    found = []
    for package in sorted(m for m in graph.modules if graph.find_children(m)):
        children = sorted(graph.find_children(package))

        def child_of(module: str, children: list[str] = children) -> str | None:
            return next((c for c in children if module == c or module.startswith(c + ".")), None)

        edges: dict[tuple[str, str], list[str]] = {}
        for importer in sorted(graph.modules):
            a = child_of(importer)
            for imported in sorted(graph.find_modules_directly_imported_by(importer)) if a else ():
                b = child_of(imported)
                if b is not None and b != a and (a, b) not in KNOWN_PACKAGE_BACK_IMPORTS:
                    edges.setdefault((a, b), []).append(f"{importer} -> {imported}")
        after: dict[str, set[str]] = {}
        for a, b in edges:
            after.setdefault(a, set()).add(b)
        for (a, b), why in sorted(edges.items()):
            seen, todo = {b}, [b]
            while todo:  # does b reach a back?
                for nxt in after.get(todo.pop(), ()):
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            if a in seen:
                found.append(f"{a} -> {b} (lies on a cycle among {package}'s parts): {'; '.join(why[:3])}")
    return found


def test_packages_import_one_way() -> None:
    """Squash every subpackage to one node (the shell's web/, cds/, ops/, fhir/, ...; the sandbox EHR): no two parts
    of a package import each other, at any depth. Each cycle was broken by moving the shared piece to a floor
    below both (events.py, websecurity.py, smart/jwks.py, config's session_store URL, unidentified.py,
    plainwords.py), not by hiding an import inside a function (those count here too)."""
    assert package_cycles(with_package_reads(grimp.build_graph("azaguard", cache_dir=None))) == []


def test_the_package_cycle_finder_finds_one(graph: grimp.ImportGraph) -> None:
    # config validating its session_store URL with ops/store.py again (ops/ reads config): ops <-> config.
    graph.add_import(importer="azaguard.config", imported="azaguard.ops.store")
    try:
        found = package_cycles(graph)
        assert any(line.startswith("azaguard.config -> azaguard.ops (") for line in found)
        assert any(line.startswith("azaguard.ops -> azaguard.config (") for line in found)
        assert all("azaguard.config" in line or "azaguard.ops" in line for line in found)
    finally:
        graph.remove_import(importer="azaguard.config", imported="azaguard.ops.store")


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_package(dotted: str) -> bool:
    return (PACKAGE_DIR.parent.joinpath(*dotted.split(".")) / "__init__.py").exists()


def private_imports(source: str, module: str, is_package: bool) -> list[str]:
    """`owner.private` names this module imports from outside the package they belong to.

    A private (underscore) name of module `p.m` belongs to package `p`, and a private module `p._m` too:
    only the modules of `p` itself may import them."""
    here = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        for dotted in names:
            parts = dotted.split(".")
            if parts[0] != "azaguard":
                continue
            private = next((i for i, p in enumerate(parts) if p.startswith("_") and not p.startswith("__")), None)
            if private is None:
                continue
            holder = ".".join(parts[:private])
            owner = holder if _is_package(holder) else holder.rpartition(".")[0]
            if here != owner:
                found.append(f"{module}:{node.lineno} imports {dotted}")
    return found


# Private imports not yet removed, with who removes them (an entry that no longer occurs is fine: delete it).
KNOWN_PRIVATE_IMPORTS: dict[str, str] = {}


def test_no_module_imports_another_packages_private_names() -> None:
    found = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        found += private_imports(path.read_text(encoding="utf-8"), _module_name(path), path.name == "__init__.py")
    unexpected = [f for f in found if re.sub(r":\d+ ", " ", f, count=1) not in KNOWN_PRIVATE_IMPORTS]
    assert unexpected == []


@pytest.mark.parametrize(
    ("source", "module", "expected"),
    [
        ("from azaguard.cli import _terminology", "azaguard.scan.command", 1),  # a parent package's private name
        ("from azaguard.terminology._common import fold", "azaguard.record", 1),  # another package's private module
        ("import azaguard.terminology._common", "azaguard.record", 1),
        ("from azaguard.sandbox.ehr.proxy import _json_body", "azaguard.sandbox.ehr.backend", 0),  # a sibling's
        ("from azaguard.terminology._common import fold", "azaguard.terminology.drugs", 0),  # its own package's
        ("from azaguard.terminology import _common", "azaguard.record", 1),
        ("from azaguard.cli import main", "azaguard.scan.command", 0),
    ],
)
def test_what_counts_as_a_private_import(source: str, module: str, expected: int) -> None:
    assert len(private_imports(source, module, is_package=False)) == expected


# --- the evaluation core: no I/O below it -----------------------------------------------------------

# The core (evaluate.py: record, rules, verdict, wording) never reaches these: network, web, database,
# session stores, configuration files, nor the shells that do I/O around it.
NOT_IN_THE_CORE = (
    "httpx", "httpcore", "h11", "anyio", "starlette", "uvicorn", "jinja2", "multipart", "authlib", "joserfc",
    "sqlalchemy", "psycopg", "redis", "yaml", "prometheus_client", "fhir",
    "azaguard.service", "azaguard.cli", "azaguard.fhir", "azaguard.alerts", "azaguard.web", "azaguard.cds",
    "azaguard.smart", "azaguard.sandbox", "azaguard.scan", "azaguard.ops", "azaguard.config",
    "azaguard.terminology.server", "azaguard.httpbound",
)  # fmt: skip


def _outside_the_core(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in NOT_IN_THE_CORE))


def test_the_core_imports_no_io_statically() -> None:
    """Everything the core and each registered rule can import, at any depth and inside functions too
    (type-only imports aside: CheckResult names the write outcomes the server path adds)."""
    from azaguard.registry import RULES

    graph = grimp.build_graph("azaguard", cache_dir=None, exclude_type_checking_imports=True,
                              include_external_packages=True)  # fmt: skip
    roots = {"azaguard.evaluate", *(spec.function.split(":")[0] for spec in RULES)}
    reached = set(roots).union(*(graph.find_upstream_modules(root) for root in roots))
    assert "azaguard.rules.common" in reached and "pydantic" in reached  # it does see the core's imports
    assert _outside_the_core(reached) == []


EVALUATE_ONE = """
import json, sys
from datetime import UTC, datetime
from pathlib import Path
from azaguard.evaluate import check_resources
from azaguard.mappings import load_mappings
from azaguard.resources import load_json_file
result = check_resources(load_json_file(Path(sys.argv[1])), mappings=load_mappings(),
                         now=datetime(2026, 11, 20, 9, tzinfo=UTC))
assert result.verdict is not None and len(result.findings) >= 10
print(json.dumps(sorted(sys.modules)))
"""


def test_an_evaluation_through_the_core_loads_no_io() -> None:
    """The same, as run: a fresh interpreter evaluates a record through the core and lists what it loaded."""
    example = PACKAGE_DIR.parents[1] / "examples" / "aza-leukopenic.json"
    out = subprocess.run([sys.executable, "-c", EVALUATE_ONE, str(example)], capture_output=True, text=True,
                         check=True, timeout=120).stdout  # fmt: skip
    loaded = set(json.loads(out.strip().splitlines()[-1]))
    assert "azaguard.rules.labs" in loaded
    assert _outside_the_core(loaded) == []


# --- the sandbox is an optional extra ----------------------------------------------------------------

SANDBOX_ONLY = ("authlib", "yaml")  # pyproject.toml's `sandbox` extra


def test_production_never_imports_the_sandbox_or_its_extra() -> None:
    graph = grimp.build_graph("azaguard", cache_dir=None, include_external_packages=True)
    sandbox = {"azaguard.sandbox", *graph.find_descendants("azaguard.sandbox")}
    outside = sorted(
        f"{importer} imports {imported}"
        for imported in (*SANDBOX_ONLY, *sandbox)
        for importer in graph.find_modules_that_directly_import(imported)
        if importer not in sandbox and importer != "azaguard.cli.demo"  # the CLI: only its `demo` command
    )
    assert outside == []
    assert graph.find_modules_that_directly_import("authlib")  # it does see the sandbox's imports


WITHOUT_THE_EXTRA = """
import sys
class Missing:  # as if `pip install azaguard` without [sandbox]
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("authlib", "yaml"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name.split(".")[0])
sys.meta_path.insert(0, Missing())
from azaguard.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_demo_without_the_sandbox_extra_says_how_to_install_it() -> None:
    run = subprocess.run([sys.executable, "-c", WITHOUT_THE_EXTRA, "demo", "--no-serve"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 2
    assert "pip install 'azaguard[sandbox]'" in run.stderr and "Traceback" not in run.stderr


def test_check_runs_without_the_sandbox_extra() -> None:
    example = PACKAGE_DIR.parents[1] / "examples" / "aza-leukopenic.json"
    run = subprocess.run([sys.executable, "-c", WITHOUT_THE_EXTRA, "check", "--bundle", str(example), "--now",
                          "2026-11-20T09:00:00Z"], capture_output=True, text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr


def test_the_sandbox_extra_is_not_a_production_dependency() -> None:
    import tomllib

    project = tomllib.loads((PACKAGE_DIR.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {dep.split(">")[0].split("=")[0].split("[")[0].strip().lower() for dep in project["dependencies"]}
    assert names.isdisjoint({"authlib", "pyyaml"})
    assert {"authlib", "pyyaml"} <= {d.split(">")[0].lower() for d in project["optional-dependencies"]["sandbox"]}


# --- the floors docs/architecture.md draws ------------------------------------------------------------

ARCHITECTURE = PACKAGE_DIR.parents[1] / "docs" / "architecture.md"


def documented_floors() -> list[tuple[str, tuple[str, ...]]]:
    """The ```floors block of docs/architecture.md, top floor first: (name, module prefixes under azaguard)."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("```floors\n", 1)[1].split("```", 1)[0]
    floors = []
    for line in block.splitlines():
        name, *modules = line.split("#", 1)[0].split()
        floors.append((name, tuple(modules)))
    return floors


def floor_of(module: str, floors: list[tuple[str, tuple[str, ...]]]) -> tuple[int, str]:
    """(height, floor name) of the longest documented prefix of `module` (the bottom floor is height 0); a module
    on no line is on the top floor (the shell): it may import anything, and nothing below may import it."""
    best: tuple[int, int, str] | None = None
    for height, (name, prefixes) in enumerate(reversed(floors)):
        for prefix in prefixes:
            dotted = f"azaguard.{prefix}"
            if (module == dotted or module.startswith(dotted + ".")) and (best is None or len(dotted) > best[0]):
                best = (len(dotted), height, name)
    return (best[1], best[2]) if best else (len(floors) - 1, floors[0][0])


def upward_imports(graph: grimp.ImportGraph, floors: list[tuple[str, tuple[str, ...]]]) -> list[str]:
    out = []
    for importer in sorted(graph.modules - {"azaguard"}):
        low = floor_of(importer, floors)
        for imported in sorted(graph.find_modules_directly_imported_by(importer) - {"azaguard"}):
            high = floor_of(imported, floors)
            if high[0] > low[0] and (importer, imported) not in KNOWN_BACK_IMPORTS:
                out.append(f"{importer} ({low[1]}) imports {imported} ({high[1]})")
    return out


def test_the_documented_floors_hold(graph: grimp.ImportGraph) -> None:
    """No import (function-local and type-only ones too) reaches a floor above its own: the diagram in
    docs/architecture.md is the code's, or this fails."""
    floors = documented_floors()
    assert len(floors) >= 5 and floors[0][0] == "shell"
    assert upward_imports(graph, floors) == []
    graph.add_import(importer="azaguard.rules.labs", imported="azaguard.fhir.client")  # it can fail
    try:
        assert upward_imports(graph, floors) == ["azaguard.rules.labs (judging) imports azaguard.fhir.client (shell)"]
    finally:
        graph.remove_import(importer="azaguard.rules.labs", imported="azaguard.fhir.client")


def test_a_floor_is_found_by_its_longest_prefix() -> None:
    floors = [("shell", ("terminology.server", "cli")), ("knowing", ("terminology",))]
    assert floor_of("azaguard.terminology.server", floors) == (1, "shell")
    assert floor_of("azaguard.terminology.drugs", floors) == (0, "knowing")
    assert floor_of("azaguard.terminologyx", floors) == (1, "shell")  # on no line: the top floor
