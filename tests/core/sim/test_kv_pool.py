"""The KV pool: prefix matching in whole pages, references, LRU eviction."""

from __future__ import annotations

from moerun.core.sim.kv_pool import KVPool


def test_match_rounds_down_to_pages_and_counts_queries() -> None:
    pool = KVPool(10_000, 64, prefix_caching=True)
    path, moved = pool.insert([("sys", 1000), ("u1", 100)], [])
    assert moved == 1100 and pool.cached_tokens == 1100
    pool.release(path)
    hit, nodes = pool.match([("sys", 1000), ("u2", 50)])
    assert hit == 960  # 1000 rounded down to 64-token pages
    assert [n.key for n in nodes] == ["sys"]
    assert pool.query_tokens == 1050


def test_no_prefix_caching_never_hits() -> None:
    pool = KVPool(10_000, 16, prefix_caching=False)
    pool.insert([("sys", 1000)], [])
    assert pool.match([("sys", 1000)])[0] == 0
    assert pool.cached_tokens == 0


def test_eviction_is_lru_and_spares_referenced_nodes() -> None:
    pool = KVPool(3000, 1, prefix_caching=True)
    a, _ = pool.insert([("a", 1000)], [])
    b, _ = pool.insert([("b", 1000)], [])
    pool.release(a)  # a is older and unreferenced; b stays referenced
    assert pool.can_allocate(1500)
    assert pool.match([("a", 1000)])[0] == 0  # evicted
    assert pool.match([("b", 1000)])[0] == 1000  # kept: referenced
    assert not pool.can_allocate(2500)  # b cannot be evicted while referenced
    pool.release(b)
    assert pool.can_allocate(2500)


def test_evicting_a_leaf_makes_its_parent_evictable() -> None:
    pool = KVPool(2000, 1, prefix_caching=True)
    path, _ = pool.insert([("sys", 500), ("t0", 500)], [])
    pool.release(path)
    assert pool.can_allocate(2000)
    assert pool.cached_tokens == 0
