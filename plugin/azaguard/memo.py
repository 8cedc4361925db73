"""Values worked out once per object, found by the object's identity (what the mappings derive is kept by
the Mappings object itself: Mappings.derived)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

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

