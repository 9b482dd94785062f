"""MTP speculative decoding as one value: how many tokens the MTP layer drafts per decode step
and the per-token acceptance they meet. It travels from `--mtp` (with the acceptance the
command settled on) inside the Deployment to the step model and the simulator."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mtp:
    """Drafted tokens per step and their per-token acceptance; build one with `Mtp.drafting`.

    A chain of k drafts, each accepted with probability a until the first rejection, emits
    1 + a + ... + a^k tokens per decode step on average (the verified bonus token included).
    Without drafts there is nothing to accept: `MTP_OFF` is the only value with 0 drafts.
    """

    num_draft_tokens: int = 0
    acceptance: float = 0.0
    # The engine fixes the acceptance for benchmarking (SGLang's SGLANG_SIMULATE_ACC_LEN): one
    # accept length is drawn per verify step for the whole batch (sglang
    # `_generate_simulated_accept_index`: a single draw, `accept_length.fill_`), so sequences
    # that decode side by side accept alike and do not drift apart as real acceptance makes them.
    pinned: bool = False

    def __post_init__(self) -> None:
        if self.num_draft_tokens < 0:
            raise ValueError("the number of MTP draft tokens must not be negative")
        if not 0.0 <= self.acceptance < 1.0:
            raise ValueError("the MTP acceptance rate must be in [0, 1)")
        if not self.num_draft_tokens and (self.acceptance or self.pinned):
            raise ValueError("no MTP drafts, so no acceptance: build it with Mtp.drafting")

    @classmethod
    def drafting(cls, num_draft_tokens: int, acceptance: float, pinned: bool = False) -> Mtp:
        """`num_draft_tokens` drafts at `acceptance` (`pinned`: fixed by the engine); MTP off
        (acceptance 0) without drafts. The one place the rule "no MTP, no acceptance" is
        applied."""
        if not num_draft_tokens:
            return MTP_OFF
        return cls(num_draft_tokens, acceptance, pinned)

    def with_acceptance(self, acceptance: float) -> Mtp:
        """The same drafts at another acceptance (still off when off)."""
        return Mtp.drafting(self.num_draft_tokens, acceptance, self.pinned)

    @property
    def enabled(self) -> bool:
        """Whether the MTP layer drafts tokens."""
        return self.num_draft_tokens > 0

    @property
    def max_tokens_per_step(self) -> int:
        """The most tokens one decode step writes per sequence: the drafts plus one."""
        return self.num_draft_tokens + 1

    @property
    def tokens_per_step(self) -> float:
        """Mean tokens one decode step emits per sequence: 1 + a + a^2 + ... + a^k."""
        return sum(self.acceptance**i for i in range(self.num_draft_tokens + 1))

    @property
    def tokens_per_step_variance(self) -> float:
        """Variance of the tokens one decode step emits per sequence, independently of the
        others (0 without MTP, and 0 when pinned: the batch shares one draw per step)."""
        k, a = self.num_draft_tokens, self.acceptance
        if k <= 0 or not 0.0 < a < 1.0 or self.pinned:
            return 0.0
        probs = [a**j * (1 - a) for j in range(k)] + [a**k]
        mean = sum(p * (j + 1) for j, p in enumerate(probs))
        return sum(p * (j + 1) ** 2 for j, p in enumerate(probs)) - mean**2


MTP_OFF = Mtp()
