"""Results keyed by the identity of large immutable inputs.

A model spec (about 1,700 tensor groups) or a GPU's kernel tables cost far more to hash or
compare than the work a cache would save; but a plan passes the same objects to thousands of
calls. `IdentityMemo` keys on their identity plus small hashable values, and keeps the objects
alive while their results are cached, so an id is never reused for another object meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class IdentityMemo(Generic[V]):
    """A bounded cache of `compute()` results, keyed by (objects by identity, values)."""

    def __init__(self, maxsize: int = 256) -> None:
        self.maxsize = maxsize
        self._entries: dict[tuple[tuple[int, ...], Hashable], tuple[tuple[object, ...], V]] = {}

    def get(self, objects: tuple[object, ...], values: Hashable, compute: Callable[[], V]) -> V:
        """The cached result for these objects and values, computed once."""
        key = (tuple(id(o) for o in objects), values)
        hit = self._entries.get(key)
        if hit is not None:
            return hit[1]
        result = compute()
        if len(self._entries) >= self.maxsize:  # drop the oldest entry
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (objects, result)
        return result

    def __len__(self) -> int:
        return len(self._entries)
