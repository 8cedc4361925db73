"""Near misses: a word of a medication's name that is close to a name we watch but matches none exactly.

A spelling the tables lack or a typo ("azathiorpine", "Imuren") must never read as "not azathioprine":
the recogniser says "may be azathioprine" and the rules cannot evaluate, naming the medication. General on
purpose: any list of target names (INN spellings, brands) can be fed, and `normalise_name` is the one
comparable form (other scripts' names, transliterated by whoever reads them, come through it too).

Distance: optimal string alignment (an adjacent transposition is one edit), on names folded to lower-case
ASCII letters. How many edits a target allows grows with its length (mappings: near_miss), and short
targets allow none: with three letters in common, anything is close. The letters two words do not share
(bag distance) bound the edits from below, so rapidfuzz (~10 ms to import) is loaded only for a word that
could be a near miss.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

from msgspec import Struct

_WORD = re.compile(r"[a-z]+")


@lru_cache(maxsize=8192)
def normalise_name(text: str) -> str:
    """Lower case, without diacritics ('Azatioprină' -> 'azatioprina'); other characters kept."""
    folded = "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))
    return folded.lower()


def words(text: str) -> list[str]:
    """The runs of letters of a name, normalised ('Azathiorpine-50mg' -> ['azathiorpine', 'mg'])."""
    return _WORD.findall(normalise_name(text))


class NearMiss(Struct, frozen=True):
    word: str  # as found in the name (normalised)
    target: str  # the watched name it is close to
    distance: int


class NearMissIndex:
    """Targets, normalised, with the edits each allows: (minimum length, edits) steps, longest first."""

    def __init__(self, targets: Iterable[str], allowance: Sequence[tuple[int, int]]) -> None:
        self._steps = sorted(allowance, reverse=True)
        self._targets: dict[str, str] = {}
        for t in targets:
            for w in words(t):
                if self._edits(w):
                    self._targets.setdefault(w, t)
        self._shortest = min((len(t) for t in self._targets), default=0)
        self._bags = {t: Counter(t) for t in self._targets}

    def _edits(self, word: str) -> int:
        return next((edits for length, edits in self._steps if len(word) >= length), 0)

    def find(self, names: Iterable[str]) -> NearMiss | None:
        """The closest near miss among the names' words, or None (an exact target word is no near miss)."""
        best: NearMiss | None = None
        for name in names:
            for w in words(name):
                if w in self._targets or len(w) < self._shortest - 2:
                    continue
                bag = Counter(w)
                for target in self._targets:
                    allowed = self._edits(target)
                    if abs(len(target) - len(w)) > allowed or _bag_distance(bag, self._bags[target]) > allowed:
                        continue
                    d = _osa(w, target, allowed)
                    if d <= allowed and (best is None or d < best.distance):
                        best = NearMiss(w, self._targets[target], d)
        return best


def _bag_distance(a: Counter[str], b: Counter[str]) -> int:
    """A lower bound of the edit distance: the letters one word has that the other lacks (the larger side)."""
    return max(sum((a - b).values()), sum((b - a).values()))


def _osa(a: str, b: str, cutoff: int) -> int:
    from rapidfuzz.distance import OSA  # imported only when a word is this close: most records never need it

    return int(OSA.distance(a, b, score_cutoff=cutoff))
