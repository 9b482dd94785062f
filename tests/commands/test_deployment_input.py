"""A plan's deployment dict builds the same Deployment as the same flags on the command line."""

from __future__ import annotations

from typing import Any

import pytest

from moerun.cli import build_parser
from moerun.commands.deployment_args import deployment_from_args
from moerun.commands.deployment_input import DEPLOYMENT_KEYS, deployment_from_dict
from moerun.errors import UsageError


def from_flags(*argv: str) -> Any:
    args = build_parser().parse_args(["fit", *argv])
    return deployment_from_args(args)


@pytest.mark.parametrize(
    ("d", "argv"),
    [
        ({"gpu": "h200_sxm", "num_gpus": 8}, ["--gpu", "h200_sxm", "--num-gpus", "8"]),
        (
            {
                "model": "glm-5", "gpu": "b200_sxm", "num_gpus": 16, "weights": "bf16",
                "kv_dtype": "bf16", "engine": "sglang", "tp": 8, "dp": 2, "ep": 16, "pp": None,
                "mtp": 3, "max_context": 65536, "mem_fraction": 0.8,
                "max_num_batched_tokens": 4096, "mixed_chunk": True, "max_prefill_tokens": 9000,
            },
            [
                "--model", "glm-5", "--gpu", "b200_sxm", "--num-gpus", "16", "--weights", "bf16",
                "--kv-dtype", "bf16", "--engine", "sglang", "--tp", "8", "--dp", "2", "--ep", "16",
                "--mtp", "3", "--max-context", "65536", "--mem-fraction", "0.8",
                "--max-num-batched-tokens", "4096", "--mixed-chunk", "--max-prefill-tokens", "9000",
            ],
        ),
    ],
)  # fmt: skip
def test_dict_equals_flags(d: dict[str, Any], argv: list[str]) -> None:
    assert deployment_from_dict(d) == from_flags(*argv)


def test_keys_are_the_flag_names() -> None:
    parser = build_parser()
    fit = parser._subparsers._group_actions[0].choices["fit"]  # type: ignore[union-attr]
    dests = {a.dest for a in fit._actions} - {"help", "model_pos", "json"}
    assert set(DEPLOYMENT_KEYS) == dests


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ({"gpu": "h200_sxm"}, "num_gpus required"),
        ({"gpu": "h200_sxm", "num_gpus": 0}, "num_gpus: must be at least 1"),
        ({"gpu": "h200_sxm", "num_gpus": "8"}, "num_gpus: expected a whole number"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "tp": True}, "tp: expected a whole number"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "engine": "trtllm"}, "engine: 'trtllm' is not one of"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "mem_fraction": 1.5}, "must be in (0, 1]"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "mtp": -1}, "must not be negative"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "nodes": 1}, "unknown field(s) nodes"),
        ([1, 2], "expected an object"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "mixed_chunk": "yes"}, "expected true or false"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "max_prefill_tokens": 0}, "must be at least 1"),
        ({"gpu": "h200_sxm", "num_gpus": 8, "mixed_chunk": True}, "SGLang flags"),
    ],
)
def test_bad_dicts(d: Any, message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        deployment_from_dict(d, "plan.json option 1.deployment")
    assert message in str(info.value) and "plan.json option 1" in str(info.value)


def test_sglang_prefill_flags_reach_the_deployment() -> None:
    dep, _ = from_flags(
        "--gpu", "h200_sxm", "--num-gpus", "8", "--engine", "sglang", "--mixed-chunk",
        "--max-prefill-tokens", "9000",
    )  # fmt: skip
    assert dep.mixed_chunk and dep.max_prefill_tokens == 9000
    plain, _ = from_flags("--gpu", "h200_sxm", "--num-gpus", "8", "--engine", "sglang")
    assert not plain.mixed_chunk and plain.max_prefill_tokens is None
    with pytest.raises(UsageError, match="add --engine sglang"):
        from_flags("--gpu", "h200_sxm", "--num-gpus", "8", "--max-prefill-tokens", "9000")
