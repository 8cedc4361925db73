"""Values worked out once per object, found by the object's identity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from azaguard.mappings import Mappings

K = TypeVar("K")
V = TypeVar("V")


class ByIdentity(Generic[K, V]):
    """Remembers `build(key)` under `id(key)`, the key kept beside its value so that its id stays its own
    while remembered (an equal but distinct object is built again). With `limit`, cleared when full."""

    __slots__ = ("_limit", "_seen")

    def __init__(self, limit: int | None = None) -> None:
        self._seen: dict[int, tuple[K, V]] = {}
        self._limit = limit

    def get_or_build(self, key: K, build: Callable[[K], V]) -> V:
        hit = self._seen.get(id(key))
        if hit is not None and hit[0] is key:
            return hit[1]
        if self._limit is not None and len(self._seen) >= self._limit:
            self._seen.clear()
        value = build(key)
        self._seen[id(key)] = (key, value)
        return value


class PerMappings(ByIdentity[Mappings, V]):
    """Something built once per Mappings object (tests build a few variants: at most 8 are kept)."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__(limit=8)
