"""Shared pieces of the recognisers: system names, whole-word name patterns, one index per Mappings."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
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


def name_alternation(names: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive, whole-word pattern for many names (longest first, so 'penicillin v' wins)."""
    parts = []
    for name in sorted({n.strip() for n in names if n.strip()}, key=lambda n: (-len(n), n)):
        pieces = [re.escape(p) for p in _SEPARATORS.split(name) if p]
        parts.append(r"[\s\-/]*".join(pieces))
    if not parts:
        return None
    return re.compile(_EDGE_BEFORE + "(?:" + "|".join(parts) + ")" + _EDGE_AFTER, re.IGNORECASE)


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
