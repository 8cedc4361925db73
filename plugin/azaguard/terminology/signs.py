"""Warning signs and side effects (mappings/signs.json): which of the leaflets' symptoms is this concept?

ICD-10 codes compare without dots or case and fall back to the nearest listed parent (the sets hold every
category and subcategory under their roots, expanded from the real hierarchies); SNOMED CT codes are a
curated list; names are read only when no code is recognised, as whole words, and a name holding one of a
sign's excluded phrases ("anorexia nervosa", "whooping cough") is not that sign. Answers ("Present", "No",
valueBoolean) say whether a recorded symptom is there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from msgspec import Struct

from azaguard.fhirtypes.timeunits import days_per
from azaguard.mappings import Mappings
from azaguard.terminology._common import fold, names_match
from azaguard.terminology.conditions import normalise_icd

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept

_ICD_SYSTEMS = ("icd10cm", "icd10")
_LABELS = {"icd10cm": "ICD-10-CM", "icd10": "WHO ICD-10", "snomed": "SNOMED CT"}


class SignMatch(Struct, frozen=True):
    key: str  # the sign's key in signs.json
    label: str  # the leaflet's words ("sore throat or pain on swallowing")
    kind: Literal["warning", "side_effect"]
    how: str  # "ICD-10-CM R07.0 Pain in throat" / "by name 'sore throat'"


class _Index(Struct, frozen=True):
    icd: dict[str, dict[str, tuple[str, str]]]  # system -> undotted code -> (sign key, display)
    snomed: dict[str, tuple[str, str]]


def _build(m: Mappings) -> _Index:
    icd: dict[str, dict[str, tuple[str, str]]] = {s: {} for s in _ICD_SYSTEMS}
    snomed: dict[str, tuple[str, str]] = {}
    for key, sign in m.signs.signs.items():  # the first sign listed keeps a shared code
        for system in _ICD_SYSTEMS:
            for code, display in sign.codes.get(system, {}).items():
                icd[system].setdefault(normalise_icd(code), (key, display))
        for code, display in sign.codes.get("snomed", {}).items():
            snomed.setdefault(code, (key, display))
    return _Index(icd, snomed)


def _match(key: str, how: str, m: Mappings) -> SignMatch:
    sign = m.signs.signs[key]
    return SignMatch(key, sign.label, sign.kind, how)


def _coded(concept: Concept, m: Mappings) -> SignMatch | None:
    index = m.derived(_build)
    for coding in concept.codings:
        system = m.systems.name_of(coding.system)
        if system in _ICD_SYSTEMS:
            plain = normalise_icd(coding.code)
            for end in range(len(plain), 2, -1):  # the code, then its parents down to the category
                hit = index.icd[system].get(plain[:end])
                if hit is not None:
                    return _match(hit[0], f"{_LABELS[system]} {coding.code} {hit[1]}", m)
        elif system == "snomed":
            hit = index.snomed.get(coding.code.strip())
            if hit is not None:
                return _match(hit[0], f"SNOMED CT {coding.code} {hit[1]}", m)
    return None


def sign_of(concept: Concept, m: Mappings) -> SignMatch | None:
    """The sign a concept records: by code first, else by name. Memoised per concept (the builder and three
    rules ask it of the same conditions)."""
    cache = m.derived(_sign_memo)
    if concept in cache:
        return cache[concept]
    if len(cache) > 50_000:
        cache.clear()
    found = cache[concept] = _coded(concept, m) or sign_by_name(concept.names, m)
    return found


def _sign_memo(m: Mappings) -> dict[Concept, SignMatch | None]:
    return {}


def sign_by_name(names: tuple[str, ...] | list[str], m: Mappings) -> SignMatch | None:
    """The sign a name says ('Sore throat or pain when swallowing?', 'sore-throat'), if any."""
    readable = [n.replace("-", " ").replace("_", " ") for n in names if n] + [n for n in names if n]
    for key, sign in m.signs.signs.items():
        word = names_match(readable, sign.names)
        if word and not names_match(readable, sign.exclude_names):
            return _match(key, f"by name '{word}'", m)
    return None


def answer_presence(codes: list[tuple[str | None, str]], words: list[str], m: Mappings) -> bool | None:
    """Does an answer say the symptom is present (True), absent (False), or neither (None)?

    `codes`: (system URI, code) pairs of a coded answer; `words`: its display/text or a string answer."""
    answers = m.signs.answers
    for uri, code in codes:
        system = m.systems.name_of(uri)
        if system is None:
            continue
        if code in answers.absent.get(system, frozenset()):
            return False
        if code in answers.present.get(system, frozenset()):
            return True
    folded = [fold(w).strip().lower() for w in words if w and w.strip()]
    # Whole answers only: "no" inside a longer sentence is not an answer.
    if any(w in answers.absent_words for w in folded):
        return False
    if any(w in answers.present_words for w in folded):
        return True
    return None


def length_in_days(value: float | None, code: str | None, unit: str | None, m: Mappings) -> float | None:
    """A length of time in days from a Quantity: its UCUM code (s, min, h, d, wk, mo, a) or its unit in words
    ("days", "hrs"); None when it is not a length of time or has no value."""
    if value is None:
        return None
    factor = days_per(code, m) or days_per(unit, m)  # mappings/units.json `time`
    return value * factor if factor is not None else _by_unit_word(value, [unit or "", code or ""], m)


def length_from_words(value: float | None, words: list[str], m: Mappings) -> float | None:
    """A number answered to a question that names its unit ("How many days have you had it?"), in days."""
    return None if value is None else _by_unit_word(value, words, m)


def _by_unit_word(value: float, words: list[str], m: Mappings) -> float | None:
    per_day = m.units.time.days
    for code, unit_words in m.signs.duration_unit_words.items():
        if names_match([w.replace("-", " ").replace("_", " ") for w in words if w], unit_words):
            return value * per_day[code]
    return None


def _pancreatitis_index(mm: Mappings) -> dict[str, dict[str, str]]:
    sets = mm.pancreatitis.diagnoses.codes
    return {s: {normalise_icd(c): d for c, d in sets.get(s, {}).items()} for s in _ICD_SYSTEMS}


def pancreatitis_match(concept: Concept, m: Mappings) -> str | None:
    """How a diagnosis is recognised as acute pancreatitis ('ICD-10-CM K85.90 ...'), or None."""
    ds = m.pancreatitis.diagnoses
    index = m.derived(_pancreatitis_index)
    for coding in concept.codings:
        system = m.systems.name_of(coding.system)
        if system in _ICD_SYSTEMS:
            plain = normalise_icd(coding.code)
            for end in range(len(plain), 2, -1):
                if plain[:end] in index[system]:
                    return f"{_LABELS[system]} {coding.code} {index[system][plain[:end]]}"
        elif system == "snomed" and coding.code.strip() in ds.codes.get("snomed", {}):
            return f"SNOMED CT {coding.code} {ds.codes['snomed'][coding.code.strip()]}"
    word = names_match(concept.names, ds.names)
    if word and not names_match(concept.names, ds.exclude_names):
        return f"by name '{word}'"
    return None
