"""What moerun takes from aiconfigurator-core (scripts/extract_kernel_tables.py): measured
kernel tables (`data/kernels/<gpu>/<engine>.json.gz`, SOURCE.yaml) and NVIDIA's measured
end-to-end silicon points (`data/validation/`), a validation set that is never fitted."""

from __future__ import annotations

import csv
import gzip
import io
import json
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any

import yaml

from moerun.catalog.files import read_package_file
from moerun.catalog.models import load_spec
from moerun.catalog.perf.measurements import MeasuredRun
from moerun.core.deploy.parallel import Parallel
from moerun.core.perf.tables import (
    AttentionKey,
    Curve,
    DeepepMoeKey,
    GemmGrid,
    Grid,
    KernelTables,
    MoeKey,
)
from moerun.errors import CatalogError

MS = 1e-3


def _file(gpu: str, name: str) -> Any:
    return resources.files("moerun.catalog").joinpath("data", "kernels", gpu, name)


@cache
def kernel_source() -> str:
    """The package the tables came from, as SOURCE.yaml names it."""
    text = resources.files("moerun.catalog").joinpath("data/kernels/SOURCE.yaml").read_text()
    for line in text.splitlines():
        if line.startswith("package:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


@dataclass(frozen=True)
class EagerTimed:
    """A table its collector timed without CUDA graphs (`kernels/timing.yaml`): not kernel
    time; `donor`'s graph-timed table of the same GPU and dtype stands in for it."""

    engine: str
    dtype: str
    donor: str


@cache
def eager_timed() -> tuple[EagerTimed, ...]:
    """The GEMM tables `kernels/timing.yaml` lists as timed eagerly."""
    return parse_timing(
        resources.files("moerun.catalog").joinpath("data/kernels/timing.yaml").read_text()
    )


def parse_timing(text: str) -> tuple[EagerTimed, ...]:
    """The `eager_timed` rows of a timing.yaml text; each needs its source and evidence."""
    rows = []
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise CatalogError("kernels/timing.yaml: not a mapping")
    for i, row in enumerate(data.get("eager_timed") or []):
        try:
            if row["table"] != "gemm":
                raise ValueError(f"table {row['table']!r}: only gemm tables are substituted")
            if not (row["source"] and row["evidence"] and row["as_of"]):
                raise ValueError("source, evidence and as_of are required")
            rows.append(EagerTimed(str(row["engine"]), str(row["dtype"]), str(row["donor"])))
        except (KeyError, TypeError, ValueError) as exc:
            raise CatalogError(f"kernels/timing.yaml: row {i}: {exc}") from None
    return tuple(rows)


@cache
def load_kernel_tables(gpu: str, engine: str) -> KernelTables | None:
    """The tables measured for `engine` on `gpu` (None when the catalog has none), with any
    eagerly timed GEMM table replaced by its donor's graph-timed one (`eager_timed`)."""
    f = _file(gpu, f"{engine}.json.gz")
    if not f.is_file():
        return None
    try:
        raw = json.loads(gzip.decompress(f.read_bytes()))
        nccl = _file(gpu, "nccl.json.gz")
        nccl_raw = json.loads(gzip.decompress(nccl.read_bytes())) if nccl.is_file() else {}
        tables = _tables(gpu, engine, raw, nccl_raw)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CatalogError(f"kernels/{gpu}/{engine}.json.gz: unreadable ({exc})") from None
    return graph_timed(tables, eager_timed())


def graph_timed(tables: KernelTables, rules: tuple[EagerTimed, ...]) -> KernelTables:
    """`tables` with each GEMM dtype that `rules` lists for its engine taken from the rule's
    donor engine on the same GPU, or dropped where the donor has none; the source says which."""
    gemm = dict(tables.gemm)
    notes = []
    for rule in rules:
        if rule.engine != tables.engine or rule.dtype not in gemm:
            continue
        donor = load_kernel_tables(tables.gpu, rule.donor) if rule.donor != rule.engine else None
        del gemm[rule.dtype]
        if donor is not None and rule.dtype in donor.gemm:
            gemm[rule.dtype] = donor.gemm[rule.dtype]
            notes.append(f"{rule.dtype} GEMMs from {rule.donor}'s graph-timed table")
        else:
            notes.append(f"{rule.dtype} GEMMs unmeasured")
    if not notes:
        return tables
    why = f"{tables.engine}'s were timed without CUDA graphs (kernels/timing.yaml)"
    return replace(tables, gemm=gemm, source=f"{tables.source} ({'; '.join(notes)}: {why})")


def _tables(gpu: str, engine: str, raw: dict[str, Any], nccl: dict[str, Any]) -> KernelTables:
    gemm = {
        dtype: GemmGrid(
            tuple(float(x) for x in g["m"]),
            tuple(float(x) for x in g["n"]),
            tuple(float(x) for x in g["k"]),
            tuple(None if v is None else v * MS for v in g["latency_ms"]),
        )
        for dtype, g in raw.get("gemm", {}).items()
    }
    moe = {
        MoeKey(
            r["dtype"], r["hidden"], r["inter"], r["topk"], r["experts"], r["moe_tp"], r["moe_ep"]
        ): Curve(tuple(float(t) for t in r["tokens"]), tuple(v * MS for v in r["latency_ms"]))
        for r in raw.get("moe", [])
        if len(r["tokens"]) >= 2
    }
    attention = {}
    for a in raw.get("attention", []):
        nb, ns = len(a["batch"]), len(a["seq"])
        flat = a["latency_ms"]
        cells = [
            [None if v is None else v * MS for v in flat[i * ns : (i + 1) * ns]] for i in range(nb)
        ]
        grid = Grid.from_cells(
            [float(b) for b in a["batch"]],
            [float(s) for s in a["seq"]],
            cells,
            # decode module tables extend past their measured contexts along the nearest row's
            # shape (Grid.from_cells says why and what it was measured against)
            shape_beyond=a["op"] == "module" and a["phase"] == "decode",
        )
        if grid is not None:
            key = AttentionKey(
                a["op"],
                a["phase"],
                a["architecture"],
                a["gemm_dtype"],
                a["kv_dtype"],
                a["num_heads"],
            )
            attention[key] = grid
    all_reduce = {
        int(r["num_gpus"]): Curve(
            tuple(float(b) for b in r["bytes"]), tuple(v * MS for v in r["latency_ms"])
        )
        for r in raw.get("all_reduce", [])
    }
    for r in nccl.get("nccl", []):
        # NCCL where the engine's own all-reduce was not measured for that GPU count
        if r["op"] == "all_reduce" and int(r["num_gpus"]) not in all_reduce:
            all_reduce[int(r["num_gpus"])] = Curve(
                tuple(float(b) for b in r["bytes"]), tuple(v * MS for v in r["latency_ms"])
            )
    alltoall, alltoall_normal = (
        {
            (int(r["hidden"]), int(r["topk"]), int(r["experts"])): Curve(
                tuple(float(t) for t in r["tokens"]), tuple(v * MS for v in r["latency_ms"])
            )
            for r in raw.get(name, [])
        }
        for name in ("alltoall", "alltoall_normal")
    )
    moe_deepep = {
        DeepepMoeKey(
            r["phase"], r["dtype"], r["hidden"], r["inter"], r["topk"], r["experts"], r["moe_ep"]
        ): Curve(
            tuple(float(t) for t in r["tokens_per_rank"]), tuple(v * MS for v in r["latency_ms"])
        )
        for r in raw.get("moe_deepep", [])
    }
    return KernelTables(
        gpu,
        engine,
        str(raw.get("package", kernel_source())),
        gemm,
        moe,
        attention,
        all_reduce,
        alltoall,
        alltoall_normal,
        moe_deepep,
    )


# Measured requests simulated per client of a silicon point: its client sent 50
# (silicon_launch.yaml); 4 give the same median errors per group as 50 at a twelfth of the
# cost (`benchmarks/bench_accuracy.py --waves 50`)
WAVES = 4


@dataclass(frozen=True, slots=True)
class SiliconLaunch:
    """How the silicon points were launched and measured (`silicon_launch.yaml`)."""

    mixed_chunk: bool
    max_prefill_tokens_over_isl: int
    clients_start_together: bool
    requests_per_client: int
    warmup_requests_per_client: int
    length_stddev: float
    source: str
    # SGLang's `auto` KV dtype: fp8 for DSA models on these GPUs, else `kv_dtype_otherwise`
    kv_dtype_dsa_fp8_gpus: tuple[str, ...]
    kv_dtype_otherwise: str

    def kv_dtype(self, gpu: str, model: str) -> str:
        """The KV dtype a point of `model` on `gpu` ran with."""
        dsa = load_spec(model).arch.indexer is not None
        return "fp8" if dsa and gpu in self.kv_dtype_dsa_fp8_gpus else self.kv_dtype_otherwise


def parse_silicon_launch(text: str) -> SiliconLaunch:
    """The launch description from its YAML text (CatalogError when a field is missing)."""
    where = "validation/silicon_launch.yaml"
    try:
        data = yaml.safe_load(text)
        sg, client = data["sglang"], data["client"]
        launch = SiliconLaunch(
            mixed_chunk=bool(sg["enable_mixed_chunk"]),
            max_prefill_tokens_over_isl=int(sg["max_prefill_tokens_over_isl"]),
            clients_start_together=bool(client["clients_start_together"]),
            requests_per_client=int(client["requests_per_client"]),
            warmup_requests_per_client=int(client["warmup_requests_per_client"]),
            length_stddev=float(client["length_stddev"]),
            source=str(data["source"]),
            kv_dtype_dsa_fp8_gpus=tuple(str(g) for g in sg["kv_dtype_dsa_fp8_gpus"]),
            kv_dtype_otherwise=str(sg["kv_dtype_otherwise"]),
        )
    except (yaml.YAMLError, KeyError, TypeError, ValueError) as e:
        raise CatalogError(f"{where}: {e!s}; it needs sglang, client and source") from e
    if not launch.clients_start_together or launch.length_stddev != 0:
        # the simulator's closed loop starts its clients together on fixed lengths
        raise CatalogError(f"{where}: only clients started together on fixed lengths are run")
    if launch.kv_dtype_otherwise not in ("bf16", "fp8"):
        raise CatalogError(f"{where}: kv_dtype_otherwise must be bf16 or fp8")
    if min(launch.requests_per_client, launch.max_prefill_tokens_over_isl) < 1:
        raise CatalogError(f"{where}: requests per client and the prefill margin are positive")
    return launch


@cache
def silicon_launch() -> SiliconLaunch:
    """How the catalog's silicon points were launched and measured."""
    return parse_silicon_launch(read_package_file("validation/silicon_launch.yaml"))


@cache
def silicon_runs(waves: int = WAVES) -> tuple[MeasuredRun, ...]:
    """The silicon points as measured runs (median TTFT and TPOT; fixed lengths), launched
    and measured as `silicon_launch.yaml` says: SGLang with mixed chunks and a prefill cap of
    the prompt plus a margin, every client starting together, warm-up requests left out."""
    launch = silicon_launch()
    text = resources.files("moerun.catalog").joinpath("data/validation/aic_silicon_sample.csv")
    rows = list(csv.DictReader(io.StringIO(text.read_text("utf-8"))))
    out = []
    for r in rows:
        tp, dp, ep = int(r["tp"]), int(r["attention_dp"]), int(r["moe_ep"])
        num_gpus = tp * dp
        conc = int(r["concurrency"])
        out.append(
            MeasuredRun(
                id=r["id"],
                model=r["model"],
                weights="fp8",
                gpu=r["gpu"],
                num_gpus=num_gpus,
                engine=r["engine"],
                engine_version=r["engine_version"],
                parallel=Parallel(tp=tp, dp=dp, ep=ep),
                mtp_tokens=0,
                isl=int(r["isl"]),
                osl=int(r["osl"]),
                concurrency=conc,
                num_prompts=min(waves, launch.requests_per_client) * conc,
                measured={
                    "ttft_p50_ms": float(r["ttft_ms"]),
                    "tpot_p50_ms": float(r["tpot_ms"]),
                },
                source=r["source"],
                split="holdout",
                checkpoint=r["model_path"],
                warmup_requests=launch.warmup_requests_per_client * conc,
                kv_dtype=launch.kv_dtype(r["gpu"], r["model"]),
                mixed_chunk=launch.mixed_chunk and r["engine"] == "sglang",
                max_prefill_tokens=(
                    int(r["isl"]) + launch.max_prefill_tokens_over_isl
                    if r["engine"] == "sglang"
                    else None
                ),
            )
        )
    return tuple(out)
