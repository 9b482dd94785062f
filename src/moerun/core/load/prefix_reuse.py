"""The prefix-cache hit rate a workload asks for: its shared segments, with an unbounded cache.

A request's prompt is a list of segments (`Session.prompt_segments`). Sent in the workload's
order to a server whose prefix cache never evicts, a request finds cached its longest run of
leading segments that an earlier request's prompt (or an earlier turn's prompt and answer)
already held. The sum of those tokens over every prompt token is the hit rate the workload
implies. A real run can only find less (eviction, concurrent requests that miss together, a
cache that keeps only whole blocks); finding clearly more means the server had seen the
prompts before, which is not the load the workload describes.
"""

from __future__ import annotations

from moerun.core.load.workload import Segment, Workload


def cached_prefix_tokens(segments: list[Segment], seen: set[tuple[str, ...]]) -> int:
    """Tokens of the longest run of leading `segments` whose key path is in `seen`."""
    path: tuple[str, ...] = ()
    hit = 0
    for key, n in segments:
        path = (*path, key)
        if path not in seen:
            break
        hit += n
    return hit


def remember(segments: list[Segment], seen: set[tuple[str, ...]]) -> None:
    """Add every leading key path of `segments` to `seen`."""
    path: tuple[str, ...] = ()
    for key, _ in segments:
        path = (*path, key)
        seen.add(path)


def implied_hit_rate(workload: Workload) -> float:
    """Cached prompt tokens over prompt tokens, every request in the workload's order, with
    a cache that keeps everything (turn k's answer is cached for turn k+1)."""
    seen: set[tuple[str, ...]] = set()
    total = hit = 0
    requests = sorted(
        workload.requests(), key=lambda sk: (sk[0].start_s or 0.0, sk[0].session_id, sk[1])
    )
    for session, turn in requests:
        segs = session.prompt_segments(turn)
        total += sum(n for _, n in segs)
        hit += cached_prefix_tokens(segs, seen)
        remember(segs, seen)
        if turn + 1 < len(session.turns):  # the answer, as the next turn's prompt holds it
            after = session.prompt_segments(turn + 1)
            remember(after[:-1] if session.turns[turn + 1].new_input_tokens else after, seen)
    return hit / total if total else 0.0
