"""The output tokens decoding sequences still have to generate, each capped, summed in O(1).

SGLang's admission reserves, for every running request, `min(remaining, clip) x ratio` tokens
(schedule_policy.py `_get_running_request_total_token_offset`). Decoding sequences all advance
`e` tokens per decode step, so a sequence's remaining tokens at step `s` are `base - e * s`
with `base` fixed when it starts decoding; the sum over sequences is a closed form, with the
ones still above the cap counted at the cap until the step their remainder crosses it.
"""

from __future__ import annotations

import heapq
import math


class ClippedRemaining:
    """Sum over decoding sequences of min(remaining output tokens, clip) at a decode step."""

    def __init__(self, tokens_per_step: float, clip: int) -> None:
        self.e = tokens_per_step
        self.clip = clip
        self._base: dict[int, float] = {}
        self._above: dict[int, int] = {}  # id -> the step its remainder reaches the cap
        self._cross: list[tuple[int, int]] = []  # (step the remainder reaches the cap, id)
        self._below_base = 0.0
        self._num_below = 0

    def add(self, rid: int, remaining: int, step: int) -> None:
        """A sequence with `remaining` tokens to go starts decoding at `step`."""
        base = remaining + self.e * step
        self._base[rid] = base
        if remaining > self.clip:
            cross = math.ceil((base - self.clip) / self.e)
            self._above[rid] = cross
            heapq.heappush(self._cross, (cross, rid))
        else:
            self._below_base += base
            self._num_below += 1

    def remove(self, rid: int) -> None:
        """The sequence stops decoding (finished, retracted or aborted)."""
        base = self._base.pop(rid)
        if self._above.pop(rid, None) is None:
            self._below_base -= base
            self._num_below -= 1

    def total(self, step: int) -> float:
        """Sum of min(remaining, clip) over the decoding sequences at `step`."""
        while self._cross and self._cross[0][0] <= step:
            cross, rid = heapq.heappop(self._cross)
            if self._above.get(rid) == cross:  # not a stale entry of an earlier decode run
                del self._above[rid]
                self._below_base += self._base[rid]
                self._num_below += 1
        below = self._below_base - self.e * step * self._num_below
        return self.clip * len(self._above) + below
