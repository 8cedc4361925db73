"""Shared pieces of the recognisers: system names, whole-word name patterns, one index per Mappings."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from azaguard.mappings import Mappings

if TYPE_CHECKING:
    from azaguard.record import Concept

T = TypeVar("T")

# Neither a letter nor a digit on either side: "Imuran" matches "Imuran 50 mg" but not "Imuranex".
_EDGE_BEFORE = r"(?<![A-Za-z0-9])"
_EDGE_AFTER = r"(?![A-Za-z0-9])"
# Hyphen, slash and space variants are one name: co-trimoxazole = co trimoxazole = cotrimoxazole.
_SEPARATORS = re.compile(r"[\s\-/]+")


def name_key(text: str) -> str:
    """The comparable form of a name: lower case, separators removed."""
    return _SEPARATORS.sub("", text).lower()


def name_alternation(names: Iterable[str]) -> NamePattern | None:
    """One case-insensitive, whole-word pattern for many names (longest first, so 'penicillin v' wins)."""
    pieces_of = {}
    for name in sorted({n.strip() for n in names if n.strip()}, key=lambda n: (-len(n), n)):
        pieces = [p for p in _SEPARATORS.split(name) if p]
        if pieces:
            pieces_of[name] = pieces
    return NamePattern(pieces_of) if pieces_of else None


def _ascii_alnum(c: str) -> bool:
    return c.isascii() and c.isalnum()


class NamePattern:
    """name_alternation's pattern, compiled by first letter and only when a text has a word starting so.

    Compiling one alternation of hundreds of names costs ~10 ms, paid by every CLI process; a record
    needs a few letters. Matching is the single pattern's: leftmost match first, at one position the
    longest name (only names starting with that position's letter can match there), no overlaps.
    """

    def __init__(self, pieces_of: dict[str, list[str]]) -> None:
        sources: dict[str, list[str]] = {}
        for pieces in pieces_of.values():  # longest first, kept within each letter
            sources.setdefault(pieces[0][0].lower(), []).append(r"[\s\-/]*".join(re.escape(p) for p in pieces))
        self._sources = sources
        self._compiled: dict[str, re.Pattern[str]] = {}

    def _pattern(self, letter: str) -> re.Pattern[str]:
        found = self._compiled.get(letter)
        if found is None:
            body = "|".join(self._sources[letter])
            found = re.compile(_EDGE_BEFORE + "(?:" + body + ")" + _EDGE_AFTER, re.IGNORECASE)
            self._compiled[letter] = found
        return found

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        letters = {c.lower() for i, c in enumerate(text) if i == 0 or not _ascii_alnum(text[i - 1])}
        patterns = [self._pattern(k) for k in sorted(letters & self._sources.keys())]
        pos = 0
        while patterns:
            best: re.Match[str] | None = None
            for pattern in patterns:
                m = pattern.search(text, pos)
                if m is not None and (best is None or m.start() < best.start()):
                    best = m
            if best is None:
                return
            yield best
            pos = max(best.end(), best.start() + 1)

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)


def names_match(names: Iterable[str], words: Iterable[str]) -> str | None:
    """The first word (case-insensitive, whole word) found in any name: short word lists such as lab
    answers and condition words (drug and vaccine names use the compiled alternations above)."""
    folded = [fold(n) for n in names]
    for word in words:
        pattern = _word_pattern(fold(word))
        if any(pattern.search(n) for n in folded):
            return word
    return None


def fold(text: str) -> str:
    """Without diacritics ('Neumonía' -> 'Neumonia', 'céfazoline' -> 'cefazoline'): accents never decide a match."""
    return "".join(ch for ch in unicodedata.normalize("NFKD", text) if not unicodedata.combining(ch))


@lru_cache(maxsize=1024)
def _word_pattern(word: str) -> re.Pattern[str]:
    # Compiled once per word: name matching runs for every resource under several rules.
    return re.compile(rf"\b{re.escape(word)}\b", re.IGNORECASE)


def ndc_product(code: str) -> str | None:
    """Labeler-product (5-4 digits, no hyphen) of an NDC in 5-4-2 / 4-4-2 / 5-3-2 / 5-4-1 or 11-digit form."""
    code = code.strip()
    if "-" in code:
        parts = code.split("-")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        return parts[0].zfill(5) + parts[1].zfill(4)
    if code.isdigit() and len(code) == 11:
        return code[:9]
    return None  # 10 digits without hyphens cannot be placed unambiguously


def system_names(m: Mappings) -> dict[str, str]:
    """System URI -> short system name; dm+d and SNOMED share one namespace ('sct'): dm+d IDs are SNOMED IDs."""
    out: dict[str, str] = {}
    for name in ("rxnorm", "snomed", "dmd", "atc", "ndc", "cpt", "cvx"):
        for uri in getattr(m.systems, name):
            out[uri] = "sct" if name in ("snomed", "dmd") else name
    return out


def coded(concept: Concept, systems: dict[str, str]) -> list[tuple[str, str]]:
    """(short system name, code stripped) for every coding in a known system."""
    out = []
    for c in concept.codings:
        name = systems.get(c.system or "")
        if name is not None and c.code.strip():
            out.append((name, c.code.strip()))
    return out


class PerMappings(dict[int, tuple[Mappings, T]]):
    """A small cache of something built once per Mappings object (kept alive by the cache itself)."""

    def get_or_build(self, m: Mappings, build: Callable[[Mappings], T]) -> T:
        hit = self.get(id(m))
        if hit is not None and hit[0] is m:
            return hit[1]
        if len(self) > 8:  # tests build a few variants; never grow without bound
            self.clear()
        value = build(m)
        self[id(m)] = (m, value)
        return value
