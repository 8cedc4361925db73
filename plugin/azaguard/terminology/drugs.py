"""Drugs: which of our ingredients (azathioprine, an interacting drug, a systemic anti-infective) a
medication concept is, from RxNorm (every level), ATC, SNOMED/dm+d, NDC codes or its names.

Codes first; names (INN/BAN/USAN spellings, European spellings, brands) only as a fallback, whole-word.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from msgspec import Struct, field

from azaguard.mappings import DrugCodes, Mappings
from azaguard.terminology._common import (
    NamePattern,
    Patterns,
    coded,
    fold,
    name_alternation,
    name_key,
    ndc_product,
    system_names,
)
from azaguard.terminology.nearmiss import NearMiss, NearMissIndex

if TYPE_CHECKING:
    from azaguard.fhirtypes.concept import Concept

Group = Literal["azathioprine", "interaction", "anti-infective"]
MatchKind = Literal["code", "name"]
AZATHIOPRINE = "azathioprine"


class DrugHit(Struct, frozen=True):
    """One of our ingredients found in a concept, and how."""

    group: Group
    key: str  # "azathioprine", the interaction id, or the anti-infective ingredient name
    kind: MatchKind
    basis: str  # "RxNorm 197388", "ATC J01CA04", "name 'Imuran'"
    member: str = ""  # an interacting class's member ("mycophenolate"); "" for the others


class DrugMatch(Struct, frozen=True):
    hits: frozenset[DrugHit] = frozenset()
    # Named with a topical/eye/ear form word: not systemic, so never an anti-infective.
    non_systemic: bool = False
    # No azathioprine name matched, but a word is close to one ("azathiorpine", "Imuren"): it may be.
    near_miss: NearMiss | None = None

    def of(self, group: Group) -> list[DrugHit]:
        """Hits of one group, code matches first, then by key."""
        return sorted((h for h in self.hits if h.group == group), key=lambda h: (h.kind != "code", h.key, h.basis))

    @property
    def azathioprine(self) -> MatchKind | None:
        kinds = {h.kind for h in self.hits if h.group == "azathioprine"}
        return "code" if "code" in kinds else ("name" if kinds else None)

    @property
    def anti_infectives(self) -> list[DrugHit]:
        return [] if self.non_systemic else self.of("anti-infective")

    def interaction(self, interaction_id: str) -> DrugHit | None:
        hits = [h for h in self.of("interaction") if h.key == interaction_id]
        return hits[0] if hits else None

    def interactions(self) -> list[DrugHit]:
        """One hit per interacting class found (code matches first), with the member it matched."""
        first: dict[str, DrugHit] = {}
        for h in self.of("interaction"):
            first.setdefault(h.key, h)
        return list(first.values())


NO_DRUG = DrugMatch()
Target = tuple[Group, str, str]  # (group, key, member: "" unless an interacting class's member)


class _DrugIndex(Struct):
    systems: dict[str, str]
    codes: dict[tuple[str, str], set[Target]]  # (system name, code) -> targets
    atc_prefixes: list[tuple[str, Target]]
    names: NamePattern | None
    by_name: dict[str, set[Target]]
    non_systemic: NamePattern | None
    near_miss: NearMissIndex
    cache: dict[Concept, DrugMatch] = field(default_factory=dict)


def _build(m: Mappings) -> _DrugIndex:
    meds = m.medications
    codes: dict[tuple[str, str], set[Target]] = {}
    by_name: dict[str, set[Target]] = {}
    for target, value_set in _coded(m):
        for system, values in value_set.items():
            ns = "sct" if system in ("snomed", "dmd") else system
            for code in values:
                codes.setdefault((ns, _norm_code(ns, code)), set()).add(target)
    folded: dict[str, str] = {}  # every name once, folded once (names repeat across members and brands)
    for target, names in _named(m):
        for n in names:
            f = folded.get(n)
            if f is None:
                f = folded[n] = fold(n)
            by_name.setdefault(name_key(f), set()).add(target)  # matched on folded text
    prefixes: list[tuple[str, Target]] = [
        (p.upper(), ("interaction", entry.id, "")) for entry in meds.interactions for p in entry.atc_prefixes]
    prefixes += [(p.upper(), ("anti-infective", f"ATC {p}", "")) for p in meds.anti_infectives.atc_prefixes]
    return _DrugIndex(
        systems=system_names(m),
        codes=codes,
        atc_prefixes=prefixes,
        names=name_alternation(folded.values()),
        by_name=by_name,
        non_systemic=name_alternation(fold(w) for w in meds.anti_infectives.non_systemic_form_words),
        near_miss=NearMissIndex((*meds.azathioprine.names, *meds.azathioprine.brands),
                                meds.azathioprine.near_miss_edits),
    )


def _coded(m: Mappings) -> Iterator[tuple[Target, DrugCodes]]:
    """Each target with its code value set."""
    meds = m.medications
    yield ("azathioprine", AZATHIOPRINE, ""), meds.azathioprine.codes
    for entry in meds.interactions:
        for member in entry.members:
            yield ("interaction", entry.id, member.name), member.codes
    for ing in meds.anti_infectives.ingredients:
        yield ("anti-infective", ing.name, ""), ing.codes


def _named(m: Mappings) -> Iterator[tuple[Target, tuple[str, ...]]]:
    """Each target with every name and brand it goes by (European spellings of anti-infectives included)."""
    meds = m.medications
    yield ("azathioprine", AZATHIOPRINE, ""), meds.azathioprine.names + meds.azathioprine.brands
    for entry in meds.interactions:
        for member in entry.members:
            yield ("interaction", entry.id, member.name), (member.name, *member.names, *member.brands)
    for ing in meds.anti_infectives.ingredients:
        yield ("anti-infective", ing.name, ""), (
            *_spellings((ing.name, *ing.synonyms), meds.anti_infectives.spelling_variants), *ing.brands)


def by_name_source(m: Mappings) -> list[str]:
    """Every name and brand the drug value sets hold (for the one name pattern)."""
    return [n for _, names in _named(m) for n in names]


def _spellings(names: tuple[str, ...], variants: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    """The names and their European spellings by ending ('amoxicillin' -> 'amoxicilline', 'amoxicilina')."""
    out = list(names)
    for n in names:
        low = n.lower()
        out += [low[: -len(end)] + variant for end, variant in variants
                if low.endswith(end) and len(low) > len(end) + 3]
    return tuple(dict.fromkeys(out))


_LABELS = {"rxnorm": "RxNorm", "sct": "SNOMED/dm+d", "atc": "ATC", "ndc": "NDC"}


def _norm_code(system: str, code: str) -> str:
    code = code.strip()
    if system == "atc":
        return code.upper().replace(" ", "")
    if system == "ndc":
        # Labeler-product: the package digits do not change the drug, and 4-4-2 / 5-3-2 / 11-digit forms agree.
        return ndc_product(code) or code.replace("-", "")
    return code


def drug_ingredients(concept: Concept | None, m: Mappings) -> DrugMatch:
    """Which of our ingredients this medication concept holds, by code and (fallback) by name. Memoised."""
    if concept is None:
        return NO_DRUG
    index = m.derived(_build)
    found = index.cache.get(concept)
    if found is None:
        found = _match(concept, index)
        if len(index.cache) > 50_000:
            index.cache.clear()
        index.cache[concept] = found
    return found


def _match(concept: Concept, index: _DrugIndex) -> DrugMatch:
    hits: set[DrugHit] = set()
    code_targets: set[tuple[Group, str]] = set()  # what a code found: a name adds nothing to it
    for system, raw in coded(concept, index.systems):
        code = _norm_code(system, raw)
        label = f"{_LABELS.get(system, system)} {raw}"
        exact = index.codes.get((system, code), set())
        for group, key, member in exact:
            hits.add(DrugHit(group, key, "code", label, member))
            code_targets.add((group, key))
        if system != "atc":
            continue
        exact_groups = {g for g, _, _ in exact}
        for prefix, (group, key, member) in index.atc_prefixes:
            if code.startswith(prefix) and group not in exact_groups:
                # An ATC code in a class we watch but not in our ingredient list: the class decides.
                hits.add(DrugHit(group, f"ATC {code}" if key.startswith("ATC ") else key, "code", label,
                                 member or f"ATC {code}"))
                code_targets.add((group, key))
    if index.names is not None:
        for text in concept.names:
            for match in index.names.finditer(fold(text)):
                for group, key, member in index.by_name.get(name_key(match.group(0)), ()):
                    if (group, key) not in code_targets:
                        hits.add(DrugHit(group, key, "name", f"name {match.group(0)!r}", member))
    non_systemic = index.non_systemic is not None and any(index.non_systemic.search(fold(t)) for t in concept.names)
    near = None
    if not any(h.group == "azathioprine" for h in hits):
        near = index.near_miss.find(concept.names)
    return DrugMatch(frozenset(hits), non_systemic, near)


def azathioprine_strength_mg(concept: Concept | None, m: Mappings) -> float | None:
    """Tablet strength in mg from an RxNorm product code; None when absent or conflicting."""
    if concept is None:
        return None
    strengths = m.medications.azathioprine.strength_mg_by_rxnorm
    rx = set(m.systems.rxnorm)
    found = {strengths[c.code.strip()] for c in concept.codings if c.system in rx and c.code.strip() in strengths}
    return found.pop() if len(found) == 1 else None


def may_be_prophylaxis(hits: list[DrugHit], m: Mappings) -> bool:
    """Whether every anti-infective ingredient found is one often given as prophylaxis (co-trimoxazole ...)."""
    prophylactic = {i.name for i in m.medications.anti_infectives.ingredients if i.prophylaxis_possible}
    keys = {h.key for h in hits if h.group == "anti-infective"}
    return bool(keys) and keys <= prophylactic


def _reason_words(m: Mappings) -> Patterns:
    spec = m.medications.anti_infectives.prophylaxis
    return Patterns(spec.words if spec is not None else ())


def prophylaxis_reason(reasons: Sequence[Concept], m: Mappings) -> str | None:
    """How an order's reasons say prophylaxis, a latent or a carrier state ("reason ICD-10-CM Z22.7", "reason
    'CMV prophylaxis'"), or None. Codes and code prefixes from mappings (anti_infectives.prophylaxis),
    then the words clinicians write."""
    spec = m.medications.anti_infectives.prophylaxis
    if spec is None or not reasons:
        return None
    codes = {system: {c.upper() for c in values} for system, values in spec.codes.items()}
    for reason in reasons:
        for c in reason.codings:
            system = m.systems.name_of(c.system)
            code = c.code.strip().upper()
            prefixes = spec.code_prefixes.get(system or "", ())
            if code in codes.get(system or "", set()) or any(code.startswith(p.upper()) for p in prefixes):
                return f"reason {c.display or c.code} ({system} {c.code})"
    words = m.derived(_reason_words)
    for reason in reasons:
        names = [fold(n) for n in reason.names]
        for pattern in words.candidates(names):
            if any(pattern.search(n) for n in names):
                return f"reason {reason.label!r}"
    return None


def non_systemic_names(names: Sequence[str], m: Mappings) -> bool:
    """Whether any of the names (a Dosage.route, a dose form) says the drug is not systemic (eye drops ...)."""
    index = m.derived(_build)
    return index.non_systemic is not None and any(index.non_systemic.search(fold(n)) for n in names)
