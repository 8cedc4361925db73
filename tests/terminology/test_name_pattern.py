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


def test_mapping_patterns_tried_only_where_they_may_match_give_the_same_first_match() -> None:
    from azaguard.terminology._common import Patterns, required_letters

    sets = load_mappings().vaccines.name_patterns
    groups = [sets.not_live_overrides, sets.live, sets.not_live, sets.vaccine_words, sets.not_vaccine]
    tricky = ["\\bMMRV?\\b", "ab|cd", "x+y", "a{0,2}bc", "(?x) a b", "\\u00e9t", "[]a]bc", "zoster (live)",
              "non-?replicating", "s[^;]*ks", "\\btit(?:er|re)s?\\b"]
    assert required_letters("recombinant[^;]*zoster") == ("recombinant", "zoster")
    assert required_letters("\\bMMRV?\\b") == ("mmr",) and required_letters("ab|cd") == ()
    words = [w for g in groups for p in g for w in re.findall(r"[A-Za-z]{3,}", p)]
    words += ["MMR", "mmrv", "Zoster", "ZOSTER", "ſhingles", "LIVE", "KS", "tıter", "İnactivated", "vaccine",
              "é", "ét", "abc", "xy", "a b", ";", "-", "(", ")", "cd", "bc", "non replicating", "IgG", "x"]
    rng = random.Random(13)
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 5))) for _ in range(1500)]
    for sources in [*groups, tricky]:
        lazy = Patterns(sources)
        plain = [re.compile(s, re.IGNORECASE) for s in sources]
        for i in range(0, len(texts), 2):
            names = texts[i : i + 2]
            first = next((p.pattern for p in plain if any(p.search(n) for n in names)), None)
            lazy_first = next((p.pattern for p in lazy.candidates(names) if any(p.search(n) for n in names)), None)
            assert lazy_first == first, names
            assert lazy.any_in(names) == (first is not None)
    # A text holding none of the words compiles nothing.
    untouched = Patterns(sets.live)
    assert not untouched.any_in(["azathioprine 50 MG Oral Tablet"]) and not untouched._compiled
