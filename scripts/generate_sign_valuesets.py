"""Expand the warning-sign and side-effect value sets in mappings/signs.json over the real ICD-10 hierarchies.

Build time only (the `mappings` extra), as generate_infection_valuesets.py does for the infection sets: the
reviewed recipe (each sign's `roots` per system, its curated SNOMED codes and names) stays in the JSON; this
script fills `codes.icd10cm` and `codes.icd10` with every category and subcategory under the roots. A code
under the roots of several signs goes to the first sign listed.

    python scripts/generate_sign_valuesets.py          # rewrite mappings/signs.json
    python scripts/generate_sign_valuesets.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from generate_infection_valuesets import HIERARCHIES, expand  # the sibling script's expansion

PATH = Path(__file__).resolve().parent.parent / "mappings" / "signs.json"


def generate(data: dict[str, Any]) -> dict[str, Any]:
    for system, lib in HIERARCHIES.items():
        taken: set[str] = set()
        for sign in data["signs"].values():
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
    current = PATH.read_text(encoding="utf-8")
    fresh = json.dumps(generate(json.loads(current)), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        if fresh != current:
            print(f"{PATH} is stale: run scripts/generate_sign_valuesets.py", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(fresh, encoding="utf-8")
    counts = {n: {s: len(v["codes"].get(s, {})) for s in ("icd10cm", "icd10", "snomed")}
              for n, v in json.loads(fresh)["signs"].items()}
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
