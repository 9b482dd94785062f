"""IdentityMemo: one computation per (objects by identity, values), bounded."""

from __future__ import annotations

from moerun.core.memo import IdentityMemo


class Big:
    """An object compared by value that the memo must tell apart by identity."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Big)

    __hash__ = object.__hash__


def test_computes_once_per_identity_and_values() -> None:
    memo: IdentityMemo[int] = IdentityMemo()
    calls: list[str] = []

    def compute(tag: str) -> int:
        calls.append(tag)
        return len(calls)

    a, b = Big(), Big()
    assert memo.get((a,), 1, lambda: compute("a1")) == 1
    assert memo.get((a,), 1, lambda: compute("again")) == 1  # cached
    assert memo.get((a,), 2, lambda: compute("a2")) == 2  # other values
    assert memo.get((b,), 1, lambda: compute("b1")) == 3  # equal but another object
    assert calls == ["a1", "a2", "b1"]


def test_bounded_drops_the_oldest_and_keeps_keyed_objects_alive() -> None:
    memo: IdentityMemo[int] = IdentityMemo(maxsize=2)
    objs = [Big() for _ in range(3)]
    for i, o in enumerate(objs):
        memo.get((o,), None, lambda i=i: i)  # type: ignore[misc]
    assert len(memo) == 2
    # the first entry was dropped: it is computed again
    assert memo.get((objs[0],), None, lambda: 99) == 99
    # the last one is still cached
    assert memo.get((objs[2],), None, lambda: -1) == 2
    # a cached entry holds its objects, so their ids cannot be reused while cached
    held = [id(x) for entry in memo._entries.values() for x in entry[0]]
    assert id(objs[2]) in held
