"""Expand the warning-sign, side-effect and pancreatitis value sets (mappings/signs.json, pancreatitis.json) over
the real ICD-10 hierarchies.

Build time only (the `mappings` extra), as generate_infection_valuesets.py does for the infection sets: the
reviewed recipe (each set's `roots` per system, its curated SNOMED codes and names) stays in the JSON; this
script fills `codes.icd10cm` and `codes.icd10` with every category and subcategory under the roots. A code
under the roots of several signs goes to the first sign listed.

    python scripts/generate_sign_valuesets.py          # rewrite mappings/signs.json
    python scripts/generate_sign_valuesets.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_infection_valuesets import HIERARCHIES, expand  # the sibling script's expansion

MAPPINGS = Path(__file__).resolve().parent.parent / "mappings"
# file -> where its value sets are (a dict of them, or one)
FILES: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "signs.json": lambda data: list(data["signs"].values()),
    "pancreatitis.json": lambda data: [data["diagnoses"]],
}


def generate(data: dict[str, Any], sets_of: Callable[[dict[str, Any]], list[dict[str, Any]]]) -> dict[str, Any]:
    for system, lib in HIERARCHIES.items():
        taken: set[str] = set()
        for sign in sets_of(data):
            expanded: dict[str, str] = {}
            for root in sign["roots"].get(system, []):
                expanded.update(expand(lib, root))
            sign["codes"][system] = {c: d for c, d in sorted(expanded.items()) if c not in taken}
            taken |= set(sign["codes"][system])
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed file is current")
    args = parser.parse_args()
    stale = 0
    for name, sets_of in FILES.items():
        path = MAPPINGS / name
        current = path.read_text(encoding="utf-8")
        fresh = json.dumps(generate(json.loads(current), sets_of), indent=1, ensure_ascii=False) + "\n"
        if args.check:
            if fresh != current:
                print(f"{path} is stale: run scripts/generate_sign_valuesets.py", file=sys.stderr)
                stale += 1
            continue
        path.write_text(fresh, encoding="utf-8")
        counts = [{s: len(v["codes"].get(s, {})) for s in ("icd10cm", "icd10", "snomed")}
                  for v in sets_of(json.loads(fresh))]
        print(name, json.dumps(counts))
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
