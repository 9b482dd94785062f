"""NVIDIA's measured end-to-end points from aiconfigurator-core (`data/validation/`): a
validation set. moerun never fits to them; benchmarks/bench_accuracy.py reports its error."""

from __future__ import annotations

import csv
import io
from functools import cache
from importlib import resources

from moerun.catalog.measurements import MeasuredRun
from moerun.core.deploy.parallel import Parallel

# Requests per closed-loop point: not recorded in the file; enough waves for a steady state
MIN_PROMPTS, WAVES = 32, 4


@cache
def silicon_runs() -> tuple[MeasuredRun, ...]:
    """The silicon points as measured runs (median TTFT and TPOT; fixed lengths)."""
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
                num_prompts=max(MIN_PROMPTS, WAVES * conc),
                measured={
                    "ttft_p50_ms": float(r["ttft_ms"]),
                    "tpot_p50_ms": float(r["tpot_ms"]),
                },
                source=r["source"],
                split="holdout",
                checkpoint=r["model_path"],
            )
        )
    return tuple(out)
