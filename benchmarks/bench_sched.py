"""Benchmark: the scheduler's cost against the code before it, on two cases.

Run: .venv/bin/python benchmarks/bench_sched.py [--baseline REV] [--repeats N]
`simulate` (issue 12): 10,000 closed-loop requests of 4,000 prompt and 1,000 output tokens
at concurrency 256 on one 8x H200 GLM-5.1-FP8 SGLang replica with bf16 KV: the KV cache
holds far fewer than 256 such requests, so the queue saturates and the engine retracts.
`plan`: the default `moerun plan --json --no-progress`, timed in-process around `main`.
The baseline is the same case on the source tree of REV (default a4b9c43, the commit before
SGLang's admission and retraction were modelled), unpacked with `git archive` and run in a
subprocess; both sides run alternately and the best of N is compared. Target: at most 1.5x.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CASE = r"""
import json, random, time
try:  # the catalog's performance data moved to catalog/perf after the baseline
    from moerun.catalog.perf.calibration import calibration_for
except ImportError:
    from moerun.catalog.calibration import calibration_for
from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.sim.build import SimOptions, simulate_deployment

dep = Deployment(
    model=load_spec("glm-5.1-fp8"), gpu=get_gpu("h200_sxm"), num_gpus=8,
    engine=get_engine("sglang"), reserve=get_reserve(), parallel=Parallel(tp=8),
    kv_dtype="bf16", max_context=32768,
)
wl = Workload.single_turn(
    input_len=LengthDist.fixed(4000), output_len=LengthDist.fixed(1000),
    num_requests=10_000, arrival=Arrival("closed", concurrency=256), rng=random.Random(0),
)
opts = SimOptions(params=calibration_for("h200_sxm", "vllm").params)
t0 = time.perf_counter()
res = simulate_deployment(dep, wl, opts)
wall = time.perf_counter() - t0
s = res.summary()
print(json.dumps({"wall_s": wall, "steps": res.num_steps, "preemptions": res.num_preemptions,
                  "ttft_p50_ms": s["ttft_ms"]["p50"], "tpot_p50_ms": s["tpot_ms"]["p50"],
                  "output_tok_per_s": s["output_tok_per_s"]}))
"""


PLAN = r"""
import contextlib, io, json, time
from moerun.cli import main
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
    main(["plan", "--json", "--no-progress"])
print(json.dumps({"wall_s": time.perf_counter() - t0}))
"""


def run_case(src: Path, code: str = CASE) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def unpack(rev: str, into: Path) -> Path:
    archive = into / "src.tar"
    with archive.open("wb") as f:
        subprocess.run(["git", "-C", str(ROOT), "archive", rev, "src"], stdout=f, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="a4b9c43")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_src = unpack(args.baseline, Path(tmp))
        base, new, base_plan, new_plan = [], [], [], []
        for _ in range(args.repeats):
            base.append(run_case(base_src))
            new.append(run_case(ROOT / "src"))
            base_plan.append(run_case(base_src, PLAN)["wall_s"])
            new_plan.append(run_case(ROOT / "src", PLAN)["wall_s"])
    b = min(base, key=lambda r: r["wall_s"])
    n = min(new, key=lambda r: r["wall_s"])
    for label, r in (("baseline " + args.baseline, b), ("this tree", n)):
        print(
            f"{label:>18}: {r['wall_s']:.2f} s, {r['steps']:,} steps, "
            f"{r['preemptions']:,} preemptions, TTFT p50 {r['ttft_p50_ms'] / 1e3:.1f} s, "
            f"TPOT p50 {r['tpot_p50_ms']:.1f} ms, {r['output_tok_per_s']:.0f} output tok/s"
        )
    ratio = n["wall_s"] / b["wall_s"]
    print(f"simulate ratio this/baseline: {ratio:.2f}x (target <= 1.5x): {verdict(ratio)}")
    bp, np_ = min(base_plan), min(new_plan)
    print(
        f"default plan: baseline {bp:.2f} s, this tree {np_:.2f} s, ratio {np_ / bp:.2f}x "
        f"(target <= 1.5x): {verdict(np_ / bp)}"
    )


def verdict(ratio: float) -> str:
    return "ok" if ratio <= 1.5 else "SLOW"


if __name__ == "__main__":
    main()
