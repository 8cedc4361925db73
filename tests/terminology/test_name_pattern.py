"""The lazily compiled name pattern finds exactly what the one big alternation finds."""

from __future__ import annotations

import random
import re

from azaguard.mappings import load_mappings
from azaguard.terminology import _common, drugs


def single_alternation(names: list[str]) -> re.Pattern[str]:
    parts = []
    for name in sorted({n.strip() for n in names if n.strip()}, key=lambda n: (-len(n), n)):
        parts.append(r"[\s\-/]*".join(re.escape(p) for p in _common._SEPARATORS.split(name) if p))
    return re.compile(_common._EDGE_BEFORE + "(?:" + "|".join(parts) + ")" + _common._EDGE_AFTER, re.IGNORECASE)


def test_same_matches_as_one_alternation_on_drug_names() -> None:
    names = drugs.by_name_source(load_mappings())
    lazy = _common.name_alternation(names)
    whole = single_alternation(names)
    assert lazy is not None
    rng = random.Random(7)
    words = [*names, "mg", "Tablet", "oral", "50", "x", "and", "(", ")", "IMURAN", "co trimoxazole"]
    texts = ["azathioprine 50 MG Oral Tablet", "xImuran", "Septra DS (sulfamethoxazole/trimethoprim)"]
    texts += [
        "".join(rng.choice(words) + rng.choice([" ", "", "-", "/", ", "]) for _ in range(rng.randint(1, 6)))
        for _ in range(1500)
    ]
    for text in texts:
        assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in whole.finditer(text)], text
        assert (lazy.search(text) or re.match("", "")).span() == (whole.search(text) or re.match("", "")).span()


def test_only_the_letters_a_text_needs_are_compiled() -> None:
    lazy = _common.name_alternation(["azathioprine", "Imuran", "allopurinol", "febuxostat"])
    assert lazy is not None
    assert [m.group(0) for m in lazy.finditer("Azathioprine 50 MG (Imuran)")] == ["Azathioprine", "Imuran"]
    assert sorted(lazy._compiled) == ["a", "i"]  # words start with a, 5, m, i; febuxostat (f) not compiled
