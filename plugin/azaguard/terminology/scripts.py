"""Names in every script: a drug, vaccine or diagnosis written in Chinese, Japanese, Korean, Cyrillic, Greek,
Arabic or Hebrew, read as the English term the recognisers already know (mappings/meaning.json `scripts`).

Text is folded before it is compared (NFKC: half-width katakana and full-width letters become ordinary ones;
case; combining marks: Greek accents, Arabic and Hebrew vowel points, Japanese voicing marks; Arabic and Persian
letter variants), and a name is found anywhere in it: Chinese and Japanese put no spaces between words. A name
with letters of no script these tables read is *unreadable*: never taken as "none of ours".
"""

from __future__ import annotations

import re
import unicodedata

from msgspec import Struct

from azaguard.mappings import Mappings
from azaguard.terminology._common import fold

__all__ = ["SCRIPT_SYSTEM", "fold", "foreign_letters", "read_terms", "unreadable"]

# The system of the codings added for a name read from another script (shown in evidence, never a code).
SCRIPT_SYSTEM = "urn:azaguard:read-from-script"

def _is_latin_letter(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def foreign_letters(text: str) -> bool:
    """Whether the text holds letters of a script other than Latin (é, ł and ß are Latin)."""
    return not text.isascii() and any(ch.isalpha() and not _is_latin_letter(ch) for ch in text)


class _Reader(Struct, frozen=True):
    pattern: re.Pattern[str] | None
    term_of: dict[str, str]  # folded name -> English term


def _build(m: Mappings) -> _Reader:
    term_of: dict[str, str] = {}
    for term, names in m.meaning.scripts.terms.items():
        for name in names:
            term_of[fold(name)] = term
    if not term_of:
        return _Reader(None, {})
    # Longest first: "живая вакцина" before "вакцина".
    alternation = "|".join(re.escape(n) for n in sorted(term_of, key=len, reverse=True))
    return _Reader(re.compile(alternation), term_of)


def read_terms(text: str, m: Mappings) -> tuple[str, ...]:
    """The English terms named in a text written in another script ('硫唑嘌呤片' -> ('azathioprine',))."""
    if not foreign_letters(text):
        return ()
    reader = m.derived(_build)
    if reader.pattern is None:
        return ()
    found = (reader.term_of[hit.group(0)] for hit in reader.pattern.finditer(fold(text)))
    return tuple(dict.fromkeys(found))


def unreadable(names: tuple[str, ...], m: Mappings) -> str | None:
    """Why a medication's names cannot be read, or None: every name is in a script the tables do not read
    (no Latin name, and nothing the script tables know). Such a name may be azathioprine."""
    if not names or any(not foreign_letters(n) for n in names):
        return None
    if any(read_terms(n, m) for n in names):
        return None
    return (f"its name {names[0]!r} is not in Latin letters and names nothing azaguard's script tables know "
            f"(they read {', '.join(m.meaning.scripts.covered_scripts)}), so it cannot be identified")
