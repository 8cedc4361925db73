"""Conditions to infection classes: acute infection, fever, neutropenia, context only, not an infection.

Backed by mappings/infections.json: ICD-10-CM and WHO ICD-10 sets expanded from the real hierarchies at
build time, and a curated SNOMED CT list. ICD codes compare without dots and case ("A41.9" == "a419");
a code the release does not list is judged by its nearest listed parent (the sets hold every category
and subcategory under their roots, so the parent's class is the code's class). A coded match decides;
names are read only when no code is recognised, and a name that says "fever" is never an infection by
itself ("hay fever", "familial Mediterranean fever").
"""

from __future__ import annotations

from typing import TYPE_CHECKING, get_args

from msgspec import Struct
from msgspec.structs import replace as struct_replace

from azaguard.mappings import InfectionKind, Mappings
from azaguard.terminology._common import names_match

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept

# Order of strength when one concept carries codes of several classes: any acute code holds (fail safe).
_STRENGTH: tuple[InfectionKind, ...] = ("acute", "fever", "neutropenia", "context", "not_infection")
_ICD_SYSTEMS = ("icd10cm", "icd10")
_LABELS = {"icd10cm": "ICD-10-CM", "icd10": "WHO ICD-10", "snomed": "SNOMED CT"}


class InfectionMatch(Struct, frozen=True):
    kind: InfectionKind
    value_set: str  # the value set's label in mappings
    system: str | None  # system name ('icd10cm', 'icd10', 'snomed'); None for a name-only match
    code: str | None  # the code as recorded
    display: str  # the value set's display for the code, or the matched word
    # Neutropenia whose own name says it is febrile (WHO ICD-10 has no febrile-neutropenia code: D70 plus the
    # text "Febrile neutropenia" is how it is recorded): neutropenia and fever in one condition.
    febrile: bool = False

    @property
    def holds(self) -> bool:
        """Is this by itself a reason for the infection hold? (neutropenia only together with fever)"""
        return self.kind in ("acute", "fever") or self.febrile

    @property
    def how(self) -> str:
        if self.system is None:
            return f"matched by name only ('{self.display}'; {self.value_set})"
        return f"{_LABELS.get(self.system, self.system)} {self.code} {self.display} ({self.value_set})"


def normalise_icd(code: str) -> str:
    """'a41.9 ' -> 'A419': ICD-10 codes compare without dots, spaces or case."""
    return code.replace(".", "").replace(" ", "").upper()


def _build_index(m: Mappings) -> dict[str, dict[str, tuple[InfectionKind, str]]]:
    """Per ICD system name: undotted code -> (class, display)."""
    out: dict[str, dict[str, tuple[InfectionKind, str]]] = {s: {} for s in _ICD_SYSTEMS}
    for kind in get_args(InfectionKind):
        for system in _ICD_SYSTEMS:
            for code, display in m.infections.value_sets[kind].codes.get(system, {}).items():
                out[system].setdefault(normalise_icd(code), (kind, display))
    return out


def _icd_index(m: Mappings) -> dict[str, dict[str, tuple[InfectionKind, str]]]:
    return m.derived(_build_index)


def _icd_class(system: str, code: str, m: Mappings) -> tuple[InfectionKind, str] | None:
    index = _icd_index(m)[system]
    plain = normalise_icd(code)
    for end in range(len(plain), 2, -1):  # the code, then its parents down to the 3-character category
        hit = index.get(plain[:end])
        if hit is not None:
            return hit
    return None


def _coded(concept: Concept, m: Mappings) -> list[InfectionMatch]:
    sets = m.infections.value_sets
    found: list[InfectionMatch] = []
    for coding in concept.codings:
        system = m.systems.name_of(coding.system)
        if system in _ICD_SYSTEMS:
            hit = _icd_class(system, coding.code, m)
            if hit is not None:
                found.append(InfectionMatch(hit[0], sets[hit[0]].label, system, coding.code, hit[1]))
        elif system == "snomed":
            for kind in _STRENGTH:
                display = sets[kind].codes.get("snomed", {}).get(coding.code.strip())
                if display is not None:
                    found.append(InfectionMatch(kind, sets[kind].label, system, coding.code, display))
                    break
    return found


def _by_name(concept: Concept, m: Mappings) -> InfectionMatch | None:
    sets = m.infections.value_sets
    names = concept.names
    for kind in ("not_infection", "context"):
        word = names_match(names, sets[kind].name_words)
        if word:
            return InfectionMatch(kind, sets[kind].label, None, None, word)
    fever = sets["fever"]
    exact = {n.strip().lower() for n in fever.exact_names}
    whole = next((n for n in names if n.strip().lower() in exact), None)
    if whole is not None:
        return InfectionMatch("fever", fever.label, None, None, whole.strip())
    word = names_match(names, sets["acute"].names)
    if word:
        return InfectionMatch("acute", sets["acute"].label, None, None, word)
    return None


def _class_memo(m: Mappings) -> dict[Concept, InfectionMatch | None]:
    return {}


def infection_class(concept: Concept, m: Mappings) -> InfectionMatch | None:
    """The infection class of a condition's code (the strongest of its codings), else of its name.
    Memoised (the rules ask it of every condition, under several rules)."""
    cache = m.derived(_class_memo)
    if concept in cache:
        return cache[concept]
    if len(cache) > 50_000:
        cache.clear()
    found = cache[concept] = _infection_class(concept, m)
    return found


def _infection_class(concept: Concept, m: Mappings) -> InfectionMatch | None:
    coded = _coded(concept, m)
    if coded:
        best = min(coded, key=lambda x: _STRENGTH.index(x.kind))
        if best.kind == "neutropenia":
            named = _by_name(concept, m)
            if named is not None and named.holds:
                return struct_replace(best, febrile=True, display=f"{best.display}; named '{named.display}'")
        return best
    return _by_name(concept, m)
