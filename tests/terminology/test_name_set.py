"""The record builder's name screen (NameSet) says yes wherever the one regex alternation it replaced did."""

from __future__ import annotations

import random
import re

import pytest

from azaguard.mappings import load_mappings
from azaguard.terminology import labtests
from azaguard.terminology._common import NameSet, fold


def screen_names() -> list[str]:
    return sorted(labtests.screened_names(load_mappings()))


def old_alternation(names: list[str]) -> re.Pattern[str]:
    alternation = "|".join(re.escape(fold(w)) for w in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternation})\b", re.IGNORECASE)


def test_says_yes_wherever_the_alternation_did() -> None:
    names = screen_names()
    assert len(names) > 100
    screen, whole = NameSet(names), old_alternation(names)
    rng = random.Random(11)
    words = [*names, "serum", "result", "of", "(", ")", "-", "/", "x", "12", "Blood", "ÉCHEC", "neumonía"]
    texts = [fold(rng.choice(words) + rng.choice([" ", "", "-", "/", ", ", ". "]) + rng.choice(words))
             for _ in range(3000)]
    texts += [fold(n) for n in names]
    hits = 0
    for text in texts:
        if whole.search(text):
            hits += 1
            assert screen.search(text), text
    assert hits > 1000  # the corpus exercises the screen, not only its misses


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lipase", True),
        ("Serum lipase (U/L)", True),
        ("lipases", False),  # a longer word is not the name
        ("xlipase", False),
        ("lipase2", False),
        ("", False),
        ("body weight", False),
    ],
)
def test_whole_words_only(text: str, expected: bool) -> None:
    assert NameSet(["Lipase"]).search(fold(text)) is expected


def test_a_name_of_several_words_matches_across_any_separator_and_only_whole() -> None:
    screen = NameSet(["C. difficile toxin"])
    assert screen.search(fold("C. difficile toxin B"))
    assert screen.search(fold("c difficile-toxin"))
    assert not screen.search(fold("C. difficile"))  # one word short
    assert not screen.search(fold("C. difficile toxins"))


def test_the_record_builder_screens_with_it_built_once_per_mappings() -> None:
    m = load_mappings()
    assert labtests.named_anything(m) is labtests.named_anything(m)
    assert labtests.named_anything(m).search(fold("Lipase [Enzymatic activity/volume] in Serum or Plasma"))
