"""The deployment flags every deployment-describing command takes, and the one builder behind
them: `build_deployment` takes plain fields, so flags (`deployment_from_args`) and a plan
file's `deployment` object (`moerun.commands.deployment_input`) give the same Deployment.

`--mtp` drafts travel in the Deployment with their acceptance (`Mtp`), settled here once:
`--mtp-acceptance`, else the catalog's measurement for the model and the kind of prompts,
else the calibration profile's value, else the catalog's default."""

from __future__ import annotations

import argparse
from typing import Any

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import DEFAULT_MODEL, load_spec
from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE, load_profiles
from moerun.catalog.perf.mtp import acceptance_for
from moerun.commands.arg_types import fraction, mtp_draft_tokens, positive_int
from moerun.core.calibrate.calibration import choose_calibration
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.engine import ENGINES
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.model.kv_cache import KV_DTYPES
from moerun.core.model.weights import WEIGHT_FORMATS
from moerun.errors import UsageError


def add_deployment_args(p: argparse.ArgumentParser, *, model_positional: bool) -> None:
    """The one group of deployment flags every deployment-describing command takes."""
    g = p.add_argument_group("deployment")
    if model_positional:
        p.add_argument(
            "model_pos", nargs="?", metavar="MODEL", help="catalog id or config.json path"
        )
    g.add_argument("--model", help=f"catalog id or path to config.json (default {DEFAULT_MODEL})")
    g.add_argument("--gpu", help="GPU id from the catalog (moerun gpus)")
    g.add_argument("--num-gpus", type=positive_int, help="GPUs in one replica")
    g.add_argument("--weights", choices=WEIGHT_FORMATS, default="fp8")
    g.add_argument("--kv-dtype", choices=KV_DTYPES, default="fp8")
    g.add_argument("--engine", choices=ENGINES, default="vllm")
    g.add_argument("--tp", type=positive_int, help="tensor-parallel size (attention)")
    g.add_argument("--ep", type=positive_int, help="expert-parallel size")
    g.add_argument("--dp", type=positive_int, help="attention data-parallel ranks")
    g.add_argument("--pp", type=positive_int, help="pipeline-parallel stages")
    g.add_argument(
        "--mtp", type=mtp_draft_tokens, default=0, help="MTP draft tokens per step (0: off)"
    )
    g.add_argument("--max-context", type=positive_int, help="longest sequence to hold")
    g.add_argument("--mem-fraction", type=fraction, help="engine memory fraction")
    g.add_argument(
        "--max-num-batched-tokens",
        type=positive_int,
        help="tokens per forward pass per attention-DP rank (vLLM's --max-num-batched-tokens; "
        "SGLang's --chunked-prefill-size is this x DP, as deploy passes it; default: the "
        "engine's own, by GPU)",
    )
    g.add_argument(
        "--max-num-seqs",
        type=positive_int,
        help="running sequences per attention-DP rank (default: the engine's own, by GPU)",
    )
    g.add_argument(
        "--mixed-chunk",
        action="store_true",
        default=None,
        help="SGLang --enable-mixed-chunk: prefill batches also run the decodes (off under MTP)",
    )
    g.add_argument(
        "--max-prefill-tokens",
        type=positive_int,
        help="SGLang --max-prefill-tokens: prompt tokens one prefill batch admits past its "
        "first request (default: SGLang's own)",
    )


def prompt_kind(workload_name: str) -> str:
    """The prompts a workload sends: `fixed` is the benchmark's random tokens (moerun bench's
    synthetic words, vLLM's and InferenceX's random ids); sessions and traces are text."""
    return "random" if workload_name == "fixed" else "text"


def mtp_acceptance_choice(
    model: str, gpu: str, engine: str, num_draft_tokens: int, given: float | None, prompts: str
) -> tuple[float, dict[str, Any]]:
    """The per-token acceptance of `num_draft_tokens` drafts, and where it comes from: `given`
    (--mtp-acceptance), else the catalog's measurement for the model and `prompts` (random or
    text), else the calibration profile's for the GPU and engine, else the catalog default."""
    if given is not None:
        return given, {"value": given, "source": "--mtp-acceptance"}
    choice = acceptance_for(model, prompts, max(num_draft_tokens, 1))
    if choice is not None:
        return choice.value, choice.describe()
    profile = choose_calibration(load_profiles(), gpu, engine).profile
    value = profile.mtp_acceptance if profile else DEFAULT_MTP_ACCEPTANCE
    return value, {
        "value": value,
        "source": f"no measurement for {model} in the catalog: the calibration's value",
    }


def deployment_from_args(
    args: argparse.Namespace, prompts: str = "text"
) -> tuple[Deployment, bool]:
    """The Deployment the flags describe, its MTP drafts accepted as measured for `prompts`
    (random or text) unless --mtp-acceptance says; the bool says whether a layout was given."""
    return build_deployment(
        model=getattr(args, "model_pos", None) or args.model,
        gpu=args.gpu,
        num_gpus=args.num_gpus,
        weights=args.weights,
        kv_dtype=args.kv_dtype,
        engine=args.engine,
        tp=args.tp,
        dp=args.dp,
        ep=args.ep,
        pp=args.pp,
        mtp=args.mtp,
        mtp_acceptance=getattr(args, "mtp_acceptance", None),
        prompts=prompts,
        max_context=args.max_context,
        mem_fraction=args.mem_fraction,
        max_num_batched_tokens=args.max_num_batched_tokens,
        max_num_seqs=getattr(args, "max_num_seqs", None),
        mixed_chunk=bool(getattr(args, "mixed_chunk", False)),
        max_prefill_tokens=getattr(args, "max_prefill_tokens", None),
    )


def build_deployment(
    *,
    model: str | None,
    gpu: str | None,
    num_gpus: int | None,
    weights: str,
    kv_dtype: str,
    engine: str,
    tp: int | None,
    dp: int | None,
    ep: int | None,
    pp: int | None,
    mtp: int,
    max_context: int | None,
    mem_fraction: float | None,
    max_num_batched_tokens: int | None,
    max_num_seqs: int | None,
    mtp_acceptance: float | None = None,
    prompts: str = "text",
    mixed_chunk: bool = False,
    max_prefill_tokens: int | None = None,
) -> tuple[Deployment, bool]:
    """The Deployment these fields describe, and whether they name a layout (tp/dp/ep/pp);
    `mtp` drafts get `mtp_acceptance`, else the acceptance settled for `prompts`."""
    if gpu is None or num_gpus is None:
        raise UsageError("describe the hardware with --gpu GPU --num-gpus N (see `moerun gpus`)")
    if (mixed_chunk or max_prefill_tokens is not None) and engine != "sglang":
        raise UsageError(
            "--mixed-chunk and --max-prefill-tokens are SGLang flags: add --engine sglang"
        )
    spec = load_spec(model or DEFAULT_MODEL)
    explicit = any(v is not None for v in (tp, dp, pp, ep))
    num_dp, num_pp = dp or 1, pp or 1
    num_tp = tp if tp is not None else max(1, num_gpus // (num_dp * num_pp))
    dep = Deployment(
        model=spec,
        gpu=get_gpu(gpu),
        num_gpus=num_gpus,
        engine=get_engine(engine),
        reserve=get_reserve(),
        weights=weights,
        kv_dtype=kv_dtype,
        parallel=Parallel(tp=num_tp, dp=num_dp, pp=num_pp, ep=ep or 1),
        mem_fraction=mem_fraction,
        max_context=max_context,
        mtp=Mtp.drafting(
            mtp, mtp_acceptance_choice(spec.name, gpu, engine, mtp, mtp_acceptance, prompts)[0]
        ),
        max_num_batched_tokens=max_num_batched_tokens,
        max_num_seqs=max_num_seqs,
        mixed_chunk=mixed_chunk,
        max_prefill_tokens=max_prefill_tokens,
    )
    return dep, explicit
