"""The KV cache of one engine replica: a token pool with an optional prefix cache.

Capacity is in tokens (the memory fit's KV capacity). A running request holds `private`
tokens (its computed prompt beyond the cached prefix, and its output) plus references to
cached prefix nodes. With prefix caching on, prompts enter a radix tree of segments when their
prefill completes and outputs when the request finishes; unreferenced nodes stay cached until
LRU eviction makes room. Matches are rounded down to whole KV pages, as engines match whole
blocks (vLLM block hashes) or pages (SGLang radix tree with page_size > 1).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

Segment = tuple[str, int]


class Node:
    """One cached segment: its tokens, children by segment key, and who references it."""

    __slots__ = ("children", "key", "last_use", "parent", "refs", "tokens")

    def __init__(self, key: str, tokens: int, parent: Node | None) -> None:
        self.key = key
        self.tokens = tokens
        self.parent = parent
        self.children: dict[str, Node] = {}
        self.refs = 0
        self.last_use = 0


class KVPool:
    """Token accounting with a segment radix tree; `prefix_caching=False` keeps no tree."""

    def __init__(self, capacity_tokens: int, page_tokens: int, *, prefix_caching: bool) -> None:
        assert capacity_tokens > 0 and page_tokens > 0
        self.capacity_tokens = capacity_tokens
        self.page_tokens = page_tokens
        self.prefix_caching = prefix_caching
        self.root = Node("", 0, None)
        self.private_tokens = 0
        self.cached_tokens = 0  # tokens held by tree nodes (referenced or not)
        # tokens of nodes no running request references (a referenced node's ancestors are
        # referenced too, so these are exactly what eviction can free)
        self.unreferenced_tokens = 0
        # tokens the owner tracks outside the pool (decode growth, kept in closed form)
        self.external_tokens = 0.0
        self._clock = 0
        self._lru: list[tuple[int, int, Node]] = []
        self._seq = 0
        self.query_tokens = 0
        self.hit_tokens = 0

    @property
    def used_tokens(self) -> float:
        """Tokens held: private, external, plus every cached node."""
        return self.private_tokens + self.cached_tokens + self.external_tokens

    @property
    def free_tokens(self) -> float:
        """Tokens not held by anything."""
        return self.capacity_tokens - self.used_tokens

    @property
    def available_tokens(self) -> float:
        """Tokens free now or after evicting every unreferenced cached node (SGLang's
        `available_size() + evictable_size()`)."""
        return self.free_tokens + self.unreferenced_tokens

    def usage(self) -> float:
        """Fraction of the pool held by running requests and the cache."""
        return self.used_tokens / self.capacity_tokens

    def match(self, segments: Sequence[Segment]) -> tuple[int, list[Node]]:
        """Cached prefix tokens (whole pages) and the nodes on that path; counts a query."""
        prompt = sum(n for _, n in segments)
        self.query_tokens += prompt
        if not self.prefix_caching:
            return 0, []
        node, path, matched = self.root, [], 0
        for key, _ in segments:
            child = node.children.get(key)
            if child is None:
                break
            path.append(child)
            matched += child.tokens
            node = child
        return matched - matched % self.page_tokens, path

    def peek(self, segments: Sequence[Segment]) -> int:
        """Cached prefix tokens for `segments`, without counting a query (for routers)."""
        if not self.prefix_caching:
            return 0
        node, matched = self.root, 0
        for key, _ in segments:
            child = node.children.get(key)
            if child is None:
                break
            matched += child.tokens
            node = child
        return matched - matched % self.page_tokens

    def acquire(self, path: Sequence[Node], hit_tokens: int) -> None:
        """Reference the matched nodes for a request that starts using them."""
        self.hit_tokens += hit_tokens
        self._clock += 1
        for n in path:
            if n.refs == 0:
                self.unreferenced_tokens -= n.tokens
            n.refs += 1
            n.last_use = self._clock

    def release(self, path: Sequence[Node]) -> None:
        """Drop a request's references; unreferenced nodes become evictable."""
        self._clock += 1
        for n in path:
            n.refs -= 1
            assert n.refs >= 0
            n.last_use = self._clock
            if n.refs == 0:
                self.unreferenced_tokens += n.tokens
                if not n.children:
                    self._push_lru(n)

    def add_leaf(self, path: list[Node], key: str, tokens: int) -> None:
        """Cache `tokens` new tokens (an output) as a child of the path's end, referenced."""
        if not self.prefix_caching or tokens <= 0:
            return
        node = path[-1] if path else self.root
        child = node.children.get(key)
        if child is None:
            child = Node(key, tokens, node)
            node.children[key] = child
            self.cached_tokens += tokens
        elif child.refs == 0:
            self.unreferenced_tokens -= child.tokens
        self._clock += 1
        child.refs += 1
        child.last_use = self._clock
        path.append(child)

    def insert(self, segments: Sequence[Segment], path: list[Node]) -> tuple[list[Node], int]:
        """Add `segments` below the cached path, referenced by the caller. Returns the new
        path and the caller's tokens now held by the cache (the caller frees them from its
        private count; a segment another request cached meanwhile was computed twice)."""
        if not self.prefix_caching:
            return path, 0
        node = path[-1] if path else self.root
        moved = 0
        self._clock += 1
        for key, tokens in segments[len(path) :]:
            child = node.children.get(key)
            if child is None:
                child = Node(key, tokens, node)
                node.children[key] = child
                self.cached_tokens += tokens
            elif child.refs == 0:
                self.unreferenced_tokens -= child.tokens
            moved += tokens
            child.refs += 1
            child.last_use = self._clock
            path.append(child)
            node = child
        return path, moved

    def _push_lru(self, n: Node) -> None:
        self._seq += 1
        heapq.heappush(self._lru, (n.last_use, self._seq, n))

    def evict(self, need_tokens: float) -> bool:
        """Evict least-recently-used unreferenced leaves until `need_tokens` are free."""
        while self.free_tokens < need_tokens:
            if not self._lru:
                return False
            last_use, _, n = heapq.heappop(self._lru)
            if n.refs or n.children or n.parent is None or n.last_use != last_use:
                continue  # stale entry: reused, extended, or already evicted
            del n.parent.children[n.key]
            self.cached_tokens -= n.tokens
            self.unreferenced_tokens -= n.tokens
            parent = n.parent
            n.parent = None
            if parent is not self.root and parent.refs == 0 and not parent.children:
                self._push_lru(parent)
        return True

    def can_allocate(self, tokens: float) -> bool:
        """Whether `tokens` more private tokens fit, evicting cached ones if needed."""
        return self.free_tokens >= tokens or self.evict(tokens)

    def allocate(self, tokens: int) -> None:
        """Take `tokens` private tokens (call `can_allocate` first)."""
        self.private_tokens += tokens

    def free(self, tokens: int) -> None:
        """Return private tokens."""
        self.private_tokens -= tokens
        assert self.private_tokens >= 0
