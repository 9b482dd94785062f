"""Measured serving runs: the catalog's published measurements (CSV) and `moerun bench` results
(JSON), read into one shape for calibration and the accuracy benchmark."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from moerun.catalog.engines import get_engine
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import model_index
from moerun.core.deploy.deployment import budget_flag_ranks
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.acceptance import PROMPT_KINDS
from moerun.errors import CatalogError, MoerunError

BUILTIN_FILES = ("glm5-fp8-8xh200-vllm.csv", "qwen3-235b-8gpu-trtllm-offline.csv")
# Published SGLang runs (README.md lists each source and run configuration). Kept apart from
# BUILTIN_FILES so `moerun calibrate` without files fits what it fitted before; load them with
# `catalog_measurements`. DeepSeek-V3.2 rows wait for that model in the catalog.
SGLANG_FILES = ("glm5-fp8-8xh200-sglang.csv", "deepseek-r1-fp8-8xb200-sglang.csv")
PENDING_MODEL_FILES = ("deepseek-v32-sglang.csv",)
SPLITS = ("fit", "holdout")
_CSV_METRICS = {
    "ttft_median_ms": "ttft_p50_ms",
    "ttft_p99_ms": "ttft_p99_ms",
    "tpot_median_ms": "tpot_p50_ms",
    "tpot_p99_ms": "tpot_p99_ms",
    "output_tok_per_s": "output_tok_per_s",
    # sources that publish run means instead of medians (InferenceX)
    "ttft_mean_ms": "ttft_mean_ms",
    "tpot_mean_ms": "tpot_mean_ms",
}


@dataclass(frozen=True, slots=True)
class MeasuredRun:
    """One measured benchmark run: what ran, the load, and the measured metrics."""

    id: str
    model: str  # catalog id
    weights: str
    gpu: str
    num_gpus: int
    engine: str
    engine_version: str
    parallel: Parallel
    mtp_tokens: int
    isl: int
    osl: int
    concurrency: int | None  # None: all requests at once (offline)
    num_prompts: int
    measured: dict[str, float]
    source: str
    # The KV-cache dtype the run used: the engine default (bf16 for these models) unless the
    # run's launch command set one.
    kv_dtype: str = "bf16"
    # Lengths: fixed at isl/osl (1.0), or uniform in [ratio * isl, isl] as the benchmark
    # clients' `--random-range-ratio` draws them (sglang.bench_serving defaults to 0.0).
    random_range_ratio: float = 1.0
    split: str = "fit"  # "fit": may be fitted to; "holdout": evaluation only
    checkpoint: str | None = None  # the checkpoint run, when it differs from `model`'s
    mtp_accept_len: float | None = None  # measured mean accepted tokens per step
    # the accept length was pinned by the engine (SGLANG_SIMULATE_ACC_LEN): `mtp_accept_len` is
    # the pinned value, shared by every sequence of a step
    mtp_accept_pinned: bool = False
    # "random": random token ids (vLLM / InferenceX benchmark_serving); "text": real text
    # (sglang.bench_serving's `random` samples ShareGPT token ids, so it is text)
    prompts: str = "random"
    # the client's warm-up: the first requests it sent, left out of the measured metrics
    warmup_requests: int = 0
    # the launch command's request cap (`--max-running-requests`, `--max-num-seqs`) for the
    # whole server, when it set one; None: the engine's default
    max_running_requests: int | None = None
    # the launch command's token budget per forward pass for the whole server
    # (`--chunked-prefill-size`, `--max-num-batched-tokens`), when it set one; None: the
    # engine's default on that GPU
    max_batched_tokens: int | None = None
    # the launch command's static memory fraction (SGLang `--mem-fraction-static`, vLLM
    # `--gpu-memory-utilization`), when it set one; None: the engine's default
    mem_fraction: float | None = None
    # SGLang launch flags, when the launch command set them: --enable-mixed-chunk and
    # --max-prefill-tokens (per scheduler)
    mixed_chunk: bool = False
    max_prefill_tokens: int | None = None

    @property
    def group(self) -> str:
        """The cross-validation group: runs of one input length."""
        return f"isl={self.isl}"


def model_id_for(hf_repo: str) -> str:
    """The catalog id of a Hugging Face repo id (quantized re-uploads map to the base model)."""
    index = model_index()
    wanted = hf_repo.lower()
    for mid, e in index.items():
        if e.hf_repo.lower() == wanted:
            return mid
    name = wanted.split("/")[-1]
    base = re.sub(r"-(fp8|fp4|nvfp4|mxfp4|int4|awq)$", "", name)
    for mid, e in index.items():
        if e.hf_repo.lower().split("/")[-1] in (name, base):
            return mid
    raise CatalogError(f"no catalog model for {hf_repo!r}; known: {sorted(index)}")


def parallel_from_text(text: str, num_gpus: int) -> Parallel:
    """`tp8`, `tp8 ep`, `tp8 attention-dp ep`, `dp8 ep8` as a Parallel."""
    t = text.lower()
    tp = int(m.group(1)) if (m := re.search(r"tp(\d+)", t)) else num_gpus
    if "attention-dp" in t or "dp-attention" in t:
        return Parallel(tp=1, dp=tp, ep=tp if "ep" in t.replace("dp", "") else 1)
    dp = int(m.group(1)) if (m := re.search(r"(?<![a-z])dp(\d+)", t)) else 1
    ep_match = re.search(r"ep(\d+)", t)
    ep = int(ep_match.group(1)) if ep_match else (tp * dp if re.search(r"\bep\b", t) else 1)
    return Parallel(tp=tp, dp=dp, ep=ep)


def parse_csv(text: str, where: str) -> list[MeasuredRun]:
    """Rows of a measurement CSV (the catalog's format)."""
    runs = []
    for i, row in enumerate(csv.DictReader(io.StringIO(text)), start=2):
        try:
            num_gpus = int(row["num_gpus"])
            conc = row["max_concurrency"].strip()
            measured = {ours: float(row[col]) for col, ours in _CSV_METRICS.items() if row.get(col)}
            runs.append(
                MeasuredRun(
                    id=row["id"],
                    model=model_id_for(row["model"]),
                    weights=row["weights"],
                    gpu=row["gpu"],
                    num_gpus=num_gpus,
                    engine=row["engine"],
                    engine_version=row["engine_version"],
                    parallel=parallel_from_text(row["parallelism"], num_gpus),
                    mtp_tokens=int(row["mtp_tokens"] or 0),
                    isl=int(row["isl"]),
                    osl=int(row["osl"]),
                    concurrency=int(conc) if conc.isdigit() else None,
                    num_prompts=int(row["num_prompts"]),
                    measured=measured,
                    source=row["source"],
                    kv_dtype=row.get("kv_dtype") or "bf16",
                    random_range_ratio=float(row.get("random_range_ratio") or 1.0),
                    split=_split(row.get("split") or "fit"),
                    checkpoint=row.get("checkpoint") or None,
                    prompts=_prompts(row.get("prompts") or "random"),
                    mtp_accept_len=float(row["mtp_accept_len"])
                    if row.get("mtp_accept_len")
                    else None,
                    max_running_requests=_positive(row, "max_running_requests"),
                    max_batched_tokens=_positive(row, "max_batched_tokens"),
                    mem_fraction=_fraction(row, "mem_fraction"),
                    mtp_accept_pinned=_pinned(row),
                    mixed_chunk=_flag(row, "mixed_chunk"),
                    max_prefill_tokens=_positive(row, "max_prefill_tokens"),
                )
            )
            _sglang_flags_only(runs[-1])
        except (KeyError, ValueError) as exc:
            raise CatalogError(f"{where}: line {i}: bad or missing field ({exc})") from None
    return runs


def _fraction(row: dict[str, str], column: str) -> float | None:
    """A fraction in (0, 1] from an optional column (None when empty)."""
    text = row.get(column)
    if not text or not text.strip():
        return None
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0 < value <= 1:
        raise ValueError(f"{column} must be a number in (0, 1], got {text!r}")
    return value


def _positive(row: dict[str, str], column: str) -> int | None:
    """A positive whole number from an optional column (None when empty)."""
    text = row.get(column)
    if not text or not text.strip():
        return None
    value = int(text)
    if value <= 0:
        raise ValueError(f"{column} must be positive, not {value}")
    return value


def _sglang_flags_only(run: MeasuredRun) -> None:
    """SGLang's prefill flags on a run of another engine cannot be run (ValueError)."""
    if (run.mixed_chunk or run.max_prefill_tokens is not None) and run.engine != "sglang":
        raise ValueError(f"mixed_chunk and max_prefill_tokens are SGLang flags, not {run.engine}'s")


def _flag(row: dict[str, str], column: str) -> bool:
    """An optional on/off launch flag column: "true", or empty (off)."""
    text = (row.get(column) or "").strip()
    if text not in ("", "true"):
        raise ValueError(f"{column} must be 'true' or empty, not {text!r}")
    return text == "true"


def _pinned(row: dict[str, str]) -> bool:
    """The optional `mtp_accept_pinned` column: "true" (with the pinned `mtp_accept_len`), or
    empty."""
    text = (row.get("mtp_accept_pinned") or "").strip()
    if not text:
        return False
    if text != "true":
        raise ValueError(f"mtp_accept_pinned must be 'true' or empty, not {text!r}")
    if not row.get("mtp_accept_len"):
        raise ValueError("mtp_accept_pinned needs the pinned value in mtp_accept_len")
    return True


def _prompts(text: str) -> str:
    if text not in PROMPT_KINDS:
        raise ValueError(f"prompts must be one of {PROMPT_KINDS}, not {text!r}")
    return text


def _split(text: str) -> str:
    if text not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {text!r}")
    return text


# How far the measured prefix-cache hit rate may exceed zero before a run is refused: a chat
# template's fixed opening (a few tokens of every prompt) is cached legitimately.
CACHE_HIT_TOLERANCE = 0.05


def refuse_cache_hits(summary: dict[str, Any], workload: dict[str, Any], where: str) -> None:
    """CatalogError when the server's prefix cache served prompt tokens that calibration would
    simulate as computed: calibration replays cold, unshared prompts."""
    measured = summary.get("prefix_cache_hit_rate")
    if not isinstance(measured, int | float) or not measured > CACHE_HIT_TOLERANCE:
        return  # within the tolerance, or not in the file (NaN: vllm bench, inference-perf)
    asked = summary.get("workload_prefix_hit_rate")
    if workload.get("shared_prefix") or (isinstance(asked, int | float) and asked > 0):
        why = "the workload shares prefixes, which calibration does not simulate: rerun without"
        why += " --shared-prefix"
    else:
        why = (
            "the workload asked for none, so the server had seen these prompts before (a sweep "
            "that reused prompts?): rerun with this `moerun bench`, which sends fresh prompts "
            "per run and per level"
        )
    raise CatalogError(
        f"{where}: the server's prefix cache served {measured:.1%} of prompt tokens; {why}"
    )


def parse_bench_json(data: dict[str, Any], where: str) -> list[MeasuredRun]:
    """A `moerun bench --json-out` result: one closed-loop fixed-length run (or a sweep)."""
    runs = data.get("runs", [data])
    out = []
    for j, run in enumerate(runs):
        try:
            dep = run.get("deployment") or data["deployment"]
            wl, summary = run["workload"], run["summary"]
            if not dep or not dep.get("model") or not dep.get("gpu"):
                raise CatalogError(
                    f"{where}: run {j}: the results do not say what ran; rerun `moerun bench` "
                    "with the deployment flags (--model --gpu --num-gpus ...)"
                )
            if run.get("interrupted"):
                raise CatalogError(f"{where}: run {j} was interrupted; calibrate on complete runs")
            if wl.get("workload", "fixed") != "fixed" or not wl.get("concurrency"):
                raise CatalogError(
                    f"{where}: run {j}: calibration needs closed-loop fixed-length runs "
                    "(--workload fixed --concurrency N)"
                )
            refuse_cache_hits(summary, wl, f"{where}: run {j} ({run.get('label', '')})")
            n = int(dep["num_gpus"])
            par = Parallel(
                tp=dep.get("tp") or n // ((dep.get("dp") or 1) * (dep.get("pp") or 1)),
                dp=dep.get("dp") or 1,
                pp=dep.get("pp") or 1,
                ep=dep.get("ep") or 1,
            )
            measured = {
                "ttft_p50_ms": summary["ttft_ms"]["p50"],
                "ttft_p99_ms": summary["ttft_ms"]["p99"],
                "tpot_p50_ms": summary["tpot_ms"]["p50"],
                "tpot_p99_ms": summary["tpot_ms"]["p99"],
                "output_tok_per_s": summary["output_tok_per_s"],
            }
            out.append(
                MeasuredRun(
                    id=f"{Path(where).stem}-{j}",
                    model=dep["model"],
                    weights=dep.get("weights", "fp8"),
                    gpu=dep["gpu"],
                    num_gpus=n,
                    engine=dep.get("engine", "vllm"),
                    engine_version=str(dep.get("engine_version") or "unknown"),
                    parallel=par,
                    mtp_tokens=int(dep.get("mtp") or 0),
                    isl=int(wl["isl"]),
                    osl=int(wl["osl"]),
                    concurrency=int(wl["concurrency"]),
                    num_prompts=int(summary.get("num_requests") or wl.get("num_requests")),
                    measured={k: float(v) for k, v in measured.items()},
                    source=where,
                    kv_dtype=dep.get("kv_dtype") or "fp8",
                    max_batched_tokens=_deployed_flag(dep, par.dp, "max_num_batched_tokens"),
                    max_running_requests=_deployed_flag(dep, par.dp, "max_num_seqs"),
                    mem_fraction=float(dep["mem_fraction"]) if dep.get("mem_fraction") else None,
                    mixed_chunk=bool(dep.get("mixed_chunk")),
                    max_prefill_tokens=(
                        int(dep["max_prefill_tokens"]) if dep.get("max_prefill_tokens") else None
                    ),
                )
            )
            _sglang_flags_only(out[-1])
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"{where}: run {j}: not a moerun bench result ({exc})") from None
    return out


def _deployed_flag(dep: dict[str, Any], dp: int, name: str) -> int | None:
    """The value of the flag a bench result's engine ran with for the deployment's per-rank
    `name` (`max_num_batched_tokens`, `max_num_seqs`), as `moerun deploy` passes it: the
    deployment's value, else the engine's default on the GPU, times the ranks the engine divides
    the flag over (`budget_flag_ranks`: SGLang's --chunked-prefill-size and
    --max-running-requests are per server, vLLM's per engine core); None where the engine has
    no fixed default (SGLang sizes its request cap from memory and deploy passes none)."""
    engine = dep.get("engine", "vllm")
    per_rank = dep.get(name)
    if per_rank is None:
        per_rank = getattr(get_engine(engine).batch_default(get_gpu(dep["gpu"])), name)
    if per_rank is None:
        return None
    return int(per_rank) * budget_flag_ranks(engine, dp)


def load_measurements(path: Path) -> list[MeasuredRun]:
    """Measured runs from a CSV or a bench JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"cannot read {path}: {exc.strerror}") from None
    if path.suffix == ".json":
        try:
            return parse_bench_json(json.loads(text), str(path))
        except json.JSONDecodeError as exc:
            raise CatalogError(f"{path}: not JSON ({exc.msg})") from None
    return parse_csv(text, str(path))


def catalog_measurements(names: tuple[str, ...]) -> list[MeasuredRun]:
    """Measured runs from the named files of the catalog's `data/measurements/`."""
    root = resources.files("moerun.catalog").joinpath("data/measurements")
    runs: list[MeasuredRun] = []
    for name in names:
        runs.extend(parse_csv(root.joinpath(name).read_text("utf-8"), f"measurements/{name}"))
    return runs


def all_catalog_measurements() -> tuple[list[MeasuredRun], list[str]]:
    """Every run of every file in the catalog's `data/measurements/`, and the files it cannot
    read yet (rows waiting for a catalog model: README.md says which), each with why."""
    root = resources.files("moerun.catalog").joinpath("data/measurements")
    runs: list[MeasuredRun] = []
    skipped: list[str] = []
    for name in sorted(f.name for f in root.iterdir() if f.name.endswith(".csv")):
        try:
            runs += catalog_measurements((name,))
        except MoerunError as exc:
            skipped.append(f"{name} ({str(exc).splitlines()[0][:50]})")
    return runs, skipped


def builtin_measurements() -> list[MeasuredRun]:
    """The catalog's published measurements that `moerun calibrate` fits by default."""
    return catalog_measurements(BUILTIN_FILES)
