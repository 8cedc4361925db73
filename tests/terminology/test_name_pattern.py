"""The lazily compiled name pattern finds exactly what the one big alternation finds."""

from __future__ import annotations

import random
import re

from azaguard.mappings import load_mappings
from azaguard.terminology import _common, drugs
from azaguard.terminology._common import fold, names_match


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
    words = [*names, "mg", "Tablet", "oral", "50", "x", "and", "(", ")", "IMURAN", "co trimoxazole",
             "AZATHIOPRİNE", "ſeptra", "Imuran®", "é", "KETOCONAZOLE"]  # non-ASCII: Kelvin sign, long s
    texts = ["azathioprine 50 MG Oral Tablet", "xImuran", "Septra DS (sulfamethoxazole/trimethoprim)", "ſeptra"]
    texts += [
        "".join(rng.choice(words) + rng.choice([" ", "", "-", "/", ", "]) for _ in range(rng.randint(1, 6)))
        for _ in range(1500)
    ]
    for text in texts:
        assert [m.span() for m in lazy.finditer(text)] == [m.span() for m in whole.finditer(text)], text
        assert (lazy.search(text) or re.match("", "")).span() == (whole.search(text) or re.match("", "")).span()


def test_only_the_names_a_text_may_hold_are_compiled() -> None:
    lazy = _common.name_alternation(["azathioprine", "Imuran", "allopurinol", "febuxostat", "co-trimoxazole"])
    assert lazy is not None
    assert [m.group(0) for m in lazy.finditer("Azathioprine 50 MG (Imuran)")] == ["Azathioprine", "Imuran"]
    assert [m.group(0) for m in lazy.finditer("Co Trimoxazole / xImuran")] == ["Co Trimoxazole"]
    assert [m.group(0) for m in lazy.finditer("AZATHİOPRINE ®")] == ["AZATHİOPRINE"]  # dotted capital I
    assert lazy.search("paracetamol 500 MG") is None
    # One pattern per set of candidate names; a text holding none compiles nothing.
    assert len(lazy._compiled) == 3


def test_names_match_skips_only_words_that_cannot_be_there() -> None:
    sets = load_mappings().infections.value_sets
    words = [*sets["not_infection"].name_words, *sets["acute"].names, "pneumonia", "İ", "ſepsis"]
    rng = random.Random(11)
    pieces = [*words, "acute", "of", "x", "(", ")", "-", "SEPSIS", "Pneumonıa", "ſinusitis", "K"]
    for _ in range(500):
        names = [" ".join(rng.choice(pieces) for _ in range(rng.randint(1, 4))) for _ in range(rng.randint(1, 3))]
        expected = next(
            (w for w in words if any(re.search(rf"\b{re.escape(fold(w))}\b", fold(n), re.I) for n in names)), None
        )
        assert names_match(names, words) == expected, names
