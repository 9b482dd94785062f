"""Parallel layouts: tensor, data (attention), pipeline and expert parallelism."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Parallel:
    """A layout of one replica, engine-neutral.

    tp  tensor-parallel size of attention inside one data-parallel rank.
    dp  attention data-parallel ranks (vLLM `--data-parallel-size`; SGLang DP-attention, where
        `--tp-size` is tp x dp and `--dp-size` is dp). Each rank holds its own KV cache.
    pp  pipeline stages.
    ep  expert-parallel size: 1 splits every expert across the tp x dp GPUs of a stage; a
        larger value places whole experts (vLLM's EP is always tp x dp).
    GPUs per replica: tp x dp x pp.
    """

    tp: int = 1
    dp: int = 1
    pp: int = 1
    ep: int = 1

    @property
    def num_gpus(self) -> int:
        """GPUs one replica occupies."""
        return self.tp * self.dp * self.pp

    @property
    def moe_group(self) -> int:
        """GPUs the experts of one stage are spread over."""
        return self.tp * self.dp

    def describe(self) -> str:
        """Short text such as 'TP8' or 'TP2 x PP5' or 'DP8 x EP8'."""
        parts = []
        if self.tp > 1 or (self.dp == 1 and self.pp == 1):
            parts.append(f"TP{self.tp}")
        if self.dp > 1:
            parts.append(f"DP{self.dp}")
        if self.pp > 1:
            parts.append(f"PP{self.pp}")
        if self.ep > 1:
            parts.append(f"EP{self.ep}")
        return " x ".join(parts)


def divisors(n: int) -> list[int]:
    """Positive divisors of n, ascending."""
    return [d for d in range(1, n + 1) if n % d == 0]


def candidate_layouts(num_gpus: int, gpus_per_node: int) -> list[Parallel]:
    """Layouts over exactly `num_gpus` worth searching.

    Pipeline stages are only placed across nodes (PP divides the node count), as the engines'
    multi-node recipes do: inside a node NVLink makes TP, DP and EP cheaper than a pipeline.
    """
    num_nodes = max(1, num_gpus // gpus_per_node) if num_gpus % gpus_per_node == 0 else 1
    out = []
    for pp in divisors(num_nodes):
        for dp in divisors(num_gpus // pp):
            tp = num_gpus // pp // dp
            eps = {1, tp * dp}
            for ep in sorted(eps):
                out.append(Parallel(tp=tp, dp=dp, pp=pp, ep=ep))
    return out
