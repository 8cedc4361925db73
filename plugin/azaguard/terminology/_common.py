"""Shared pieces of the recognisers: system names, whole-word name patterns, one index per Mappings."""

from __future__ import annotations

import functools
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

from azaguard.mappings import Mappings

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept

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


class NamePattern:
    """name_alternation's pattern, compiled only for the names a text may hold.

    Compiling one alternation of hundreds of names costs ~10 ms, paid by every CLI process; a text
    holds a few names at most. A name can match only if its pieces, lower-cased and joined, occur in
    the text with separators removed and each letter folded as the case-insensitive pattern compares
    it: the names that do not are left out of the alternation. They could never match, so what
    matches, and where, is the single pattern's (leftmost first, at one position the longest name).
    """

    def __init__(self, pieces_of: dict[str, list[str]]) -> None:
        names: list[tuple[str | None, str]] = []
        for pieces in pieces_of.values():  # longest first
            joined = "".join(pieces)
            source = r"[\s\-/]*".join(re.escape(p) for p in pieces)
            # A name with non-ASCII letters: its folding is not worth modelling; always a candidate.
            names.append((joined.lower() if joined.isascii() else None, source))
        self._names = names
        self._compiled: dict[tuple[int, ...], re.Pattern[str]] = {}

    def _pattern(self, text: str) -> re.Pattern[str] | None:
        key = _SEPARATORS.sub("", text)
        if not key.isascii():
            key = "".join(c if c.isascii() else _ascii_fold(c) for c in key)
        key = key.lower()
        wanted = tuple(i for i, (joined, _) in enumerate(self._names) if joined is None or joined in key)
        if not wanted:
            return None
        found = self._compiled.get(wanted)
        if found is None:
            if len(self._compiled) > 4096:  # texts are many, their candidate sets few; never grow without bound
                self._compiled.clear()
            body = "|".join(self._names[i][1] for i in wanted)
            found = re.compile(_EDGE_BEFORE + "(?:" + body + ")" + _EDGE_AFTER, re.IGNORECASE)
            self._compiled[wanted] = found
        return found

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        pattern = self._pattern(text)
        return pattern.finditer(text) if pattern is not None else iter(())

    def search(self, text: str) -> re.Match[str] | None:
        pattern = self._pattern(text)
        return pattern.search(text) if pattern is not None else None


# A run of letters or digits in any script: the words a name and a text are compared by (NameSet).
_WORDS = re.compile(r"[^\W_]+")


class NameSet:
    """Whether a folded text names any of many names, as whole words (case, accents and the separators between
    words ignored): a set lookup of the text's runs of words. One regex alternation of the ~400 names the
    record builder screens Observations with cost ~4 ms to compile in every CLI process; this costs a
    fraction of that to build, and as little per text. Separators are not compared, so it says yes
    wherever the alternation did (and for "C difficile" beside "C. difficile"): a screen, never a verdict."""

    def __init__(self, names: Iterable[str]) -> None:
        keys: set[str] = set()
        longest = 1
        for name in names:
            words = _WORDS.findall(fold(name))
            if words:
                keys.add(" ".join(words))
                longest = max(longest, len(words))
        self._keys = frozenset(keys)
        self._longest = longest

    def search(self, folded_text: str) -> bool:
        words = _WORDS.findall(folded_text)
        keys, longest = self._keys, self._longest
        for start in range(len(words)):
            for end in range(start + 1, min(len(words), start + longest) + 1):
                if " ".join(words[start:end]) in keys:
                    return True
        return False


class Patterns:
    """Case-insensitive patterns from the mappings, each compiled when first tried: a pattern is tried on
    a text only when every run of letters it requires (`required_letters`) occurs in the text, folded as
    the case-insensitive pattern compares it. Compiling the 88 vaccine name patterns cost ~12 ms in every
    CLI process; a record's medication names hold a few of their words. Only patterns that could never
    match are left out, so what matches (and which pattern first) is the plain patterns'."""

    def __init__(self, sources: Iterable[str]) -> None:
        self._items = [(source, required_letters(source)) for source in sources]
        self._compiled: dict[int, re.Pattern[str]] = {}

    def candidates(self, texts: Iterable[str]) -> Iterator[re.Pattern[str]]:
        """In order, the compiled patterns that may match one of the texts."""
        folded = [_folded(t) for t in texts]
        for i, (source, letters) in enumerate(self._items):
            if letters and not any(all(run in f for run in letters) for f in folded):
                continue
            pattern = self._compiled.get(i)
            if pattern is None:
                pattern = self._compiled[i] = re.compile(source, re.IGNORECASE)
            yield pattern

    def any_in(self, texts: Iterable[str]) -> bool:
        names = list(texts)
        return any(p.search(n) for p in self.candidates(names) for n in names)


def _folded(text: str) -> str:
    if not text.isascii():
        text = "".join(c if c.isascii() else _ascii_fold(c) for c in text)
    return text.lower()


# Escapes whose next characters are not a letter of the text (\x41, \u00e9, \N{...}, backreferences)
# and inline flags (verbose mode, named groups): no run is read from such a pattern (always tried).
_OPAQUE = re.compile(r"\\[xuUN0-9]|\(\?[a-zA-Z<]")


def required_letters(source: str) -> tuple[str, ...]:
    """Runs of ASCII letters (lower-cased) that every match of `source` contains, read at its top level:
    letters inside groups and classes, and a letter made optional by ?, * or {, are not counted; a top-
    level | or an opaque escape gives () (nothing is required)."""
    if _OPAQUE.search(source):
        return ()
    runs: list[str] = []
    run = ""
    depth = 0
    i = 0
    while i < len(source):
        c = source[i]
        if c == "\\":
            runs.append(run)
            run = ""
            i += 2
            continue
        if c == "[":  # a class: skip to its closing bracket (a ] first in it, or escaped, is a member)
            runs.append(run)
            run = ""
            i += 1
            if i < len(source) and source[i] == "^":
                i += 1
            if i < len(source) and source[i] == "]":
                i += 1
            while i < len(source) and source[i] != "]":
                i += 2 if source[i] == "\\" else 1
            i += 1
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "|" and depth == 0:
            return ()
        if depth == 0 and c.isascii() and c.isalpha():
            after = source[i + 1] if i + 1 < len(source) else ""
            if after in ("?", "*", "{"):
                runs.append(run)
                run = ""
            elif after == "+":
                runs.append(run + c)
                run = ""
            else:
                run += c
        else:
            runs.append(run)
            run = ""
        i += 1
    runs.append(run)
    return tuple(r.lower() for r in runs if r)


@functools.cache
def _ascii_fold(c: str) -> str:
    """The ASCII letter a non-ASCII character equals in a case-insensitive pattern (the long s is s,
    the Kelvin sign k, dotted capital I is i), or the character itself."""
    return next((a for a in string.ascii_lowercase if re.fullmatch(a, c, re.IGNORECASE)), c)


def names_match(names: Iterable[str], words: Iterable[str]) -> str | None:
    """The first word (case-insensitive, whole word) found in any name: short word lists such as lab
    answers and condition words (drug and vaccine names use the compiled alternations above)."""
    folded = [fold(n) for n in names]
    # Lower-cased ASCII text can hold an ASCII word case-insensitively only as a substring: the other
    # words' patterns (one compile each, ~90 in a process) are never needed.
    joined = "\n".join(folded).lower() if all(n.isascii() for n in folded) else None
    for word in words:
        key = fold(word)
        if joined is not None and key.isascii() and key.lower() not in joined:
            continue
        pattern = _word_pattern(key)
        if any(pattern.search(n) for n in folded):
            return word
    return None


# One written letter, many code points: Arabic alef/yeh/kaf/heh forms, the Persian letters, Cyrillic yo.
_LETTER_VARIANTS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ی": "ي", "ک": "ك",
                                  "ة": "ه", "ۀ": "ه", "ـ": None, "ё": "е"})


@lru_cache(maxsize=8192)  # the same words and names are folded under several rules
def fold(text: str) -> str:
    """Text as every table compares it: NFKC (half-width and full-width forms, ligatures), case-folded, without
    combining marks ('Neumonía' -> 'neumonia', Greek accents, Arabic and Hebrew vowel points, Japanese voicing
    marks) or letter variants. Accents and case never decide a match."""
    if text.isascii():
        return text.casefold()
    decomposed = unicodedata.normalize("NFKD", unicodedata.normalize("NFKC", text).casefold())
    kept = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", kept).translate(_LETTER_VARIANTS)


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
