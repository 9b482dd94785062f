"""Benchmark: prediction accuracy against every published measurement in the catalog.

Run: .venv/bin/python benchmarks/bench_accuracy.py [--quick] [--points] [--waves N]

1. Fitted groups (the catalog's measured runs, `moerun calibrate`'s groups): per (GPU, engine,
   model) the median absolute % error of TTFT, TPOT and output throughput, cross-validated
   (each input length predicted by a fit on the others; a group of one input length is
   reported in sample and marked so).
2. NVIDIA's silicon points from aiconfigurator-core (`catalog/data/validation/`), never fitted:
   per (GPU, engine, model) median TTFT and TPOT error and the share of TPOT predictions within
   20%, predicted with the calibration moerun would use (its kernel tables plus the profile for
   that GPU and engine, or the one it extrapolates from); beside it the same for
   AIConfigurator's own predictions of those points (`aic_predictions.csv`, computed with its
   estimation API by scripts/aic_predictions.py; "-" where the catalog has none). Each point
   runs as `validation/silicon_launch.yaml` says it was launched and measured; `--points`
   prints every point, `--waves N` simulates N measured requests per client (its client sent
   50; the default 4 gives the same medians).
3. AIConfigurator's question: GLM-5-FP8 on 8x H200 with SGLang, 4000 in / 1000 out, TTFT <= 2 s
   and TPOT <= 50 ms (medians): the best output tok/s per GPU over closed-loop concurrencies.
4. Holdout runs: every catalog row marked `split: holdout` (never fitted by any profile), each
   predicted with the profile `calibration_for` gives its GPU and engine, its MTP drafts accepted
   at the row's measured accept length (or the catalog's acceptance for its kind of prompt);
   per row and the median per (GPU, engine, model). Rows the catalog cannot price (a GPU or a
   model it lacks) are listed as skipped.
"""

from __future__ import annotations

import argparse
import random
from collections import defaultdict
from dataclasses import replace
from typing import Any

import numpy as np

from moerun.catalog.perf.aic_predictions import aic_predictions, aic_predictions_source
from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE, calibration_for
from moerun.catalog.perf.kernels import WAVES, silicon_launch, silicon_runs
from moerun.catalog.perf.measurements import (
    MeasuredRun,
    all_catalog_measurements,
    builtin_measurements,
)
from moerun.catalog.perf.mtp import acceptance_for
from moerun.commands.calibrate import calibrate_runs, model_type
from moerun.commands.calibration_points import deployment_for, point_for
from moerun.core.calibrate.calibration import predict
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.perf.acceptance import per_token_acceptance
from moerun.core.sim.build import SimOptions, simulate_deployment
from moerun.errors import MoerunError

METRICS = ("ttft_p50_ms", "tpot_p50_ms", "output_tok_per_s")
SILICON_GROUPS = (
    ("h200_sxm", "sglang", "zhipuai/GLM-5"),
    ("h200_sxm", "sglang", "deepseek-ai/DeepSeek-V3"),
    ("b200_sxm", "sglang", "zhipuai/GLM-5"),
)


def ape(pred: float, meas: float) -> float:
    """Absolute percentage error."""
    return abs(pred - meas) / meas * 100


def fitted_groups() -> None:
    """Cross-validated error of every fitted (GPU, engine, model) group."""
    runs = [r for r in builtin_measurements() if r.concurrency is not None]
    runs = [r for r in runs if r.engine in ("vllm", "sglang") and r.split == "fit"]
    # each group refitted as its catalog profile was: its held parameters stay fixed
    groups_runs: dict[tuple[str, str], list[MeasuredRun]] = defaultdict(list)
    for r in runs:
        groups_runs[(r.gpu, r.engine)].append(r)
    report: dict[str, list[dict[str, Any]]] = {"groups": []}
    for (gpu, engine), members in sorted(groups_runs.items()):
        prof = calibration_for(gpu, engine).profile
        held = prof.held if prof is not None and (prof.gpu, prof.engine) == (gpu, engine) else {}
        report["groups"] += calibrate_runs(members, DEFAULT_MTP_ACCEPTANCE, held)["groups"]
    by_id = {r.id: r for r in runs}
    print("1. fitted groups: median absolute % error (cross-validated over input lengths)")
    print(
        f"  {'gpu':9} {'engine':7} {'model':14} {'runs':>4}  {'TTFT':>7} {'TPOT':>7} {'tok/s':>7}"
    )
    for g in report["groups"]:
        by_model: dict[str, list[dict[str, object]]] = defaultdict(list)
        for row in g["rows"]:
            by_model[by_id[row["id"]].model].append(row)
        single = len({by_id[r["id"]].isl for r in g["rows"]}) == 1
        for model, rows in sorted(by_model.items()):
            cells = []
            for m in METRICS:
                errs = [
                    ape(r["cross_validated"][m], r["measured"][m])  # type: ignore[index]
                    for r in rows
                    if r["measured"][m]  # type: ignore[index]
                ]
                cells.append(f"{np.median(errs):6.1f}%" if errs else "      -")
            note = "  (one input length: in sample)" if single else ""
            print(
                f"  {g['gpu']:9} {g['engine']:7} {model:14} {len(rows):>4}  "
                + " ".join(cells)
                + note
            )
        print(
            f"    profile parameters: { {k: round(v, 6) for k, v in g['params'].values().items()} }"
        )


def silicon(quick: bool, waves: int, points: bool = False) -> None:
    """Error on NVIDIA's silicon points (validation only), moerun's beside AIConfigurator's."""
    print("\n2. aiconfigurator-core 0.12.0 silicon points (validation, never fitted)")
    print(f"   AIConfigurator's predictions: {aic_predictions_source()}")
    print(
        f"  {'':9} {'':7} {'':24} {'':>3}  {'---------- moerun ----------':25}  "
        f"{'------ AIConfigurator ------':25}"
    )
    print(
        f"  {'gpu':9} {'engine':7} {'model':24} {'pts':>3}  "
        + f"{'TTFT':>7} {'TPOT':>7} {'TPOT<=20%':>9}  " * 2
        + f"{'coverage':>8}  calibration"
    )
    groups: dict[tuple[str, str, str], list[MeasuredRun]] = defaultdict(list)
    seen = set()
    for r in silicon_runs(waves):
        key = (r.gpu, r.engine, r.checkpoint or r.model)
        point = (key, r.isl, r.osl, r.concurrency)
        if key in SILICON_GROUPS and point not in seen:
            seen.add(point)
            groups[key].append(r)
    aic = aic_predictions()
    for key in SILICON_GROUPS:
        runs = groups.get(key, [])
        if quick:
            runs = runs[:5]
        if not runs:
            continue
        # as a user's prediction of that model gets it (its architecture's residual, if any)
        cal = calibration_for(key[0], key[1], model_type(runs[0]))
        tpot, ttft, cover = [], [], []
        aic_tpot, aic_ttft = [], []
        lines = []
        for r in sorted(runs, key=lambda r: (r.isl, r.osl, r.concurrency or 0)):
            opts = SimOptions(params=cal.params, kv_capacity_factor=cal.kv_capacity_factor)
            p = point_for(r, opts, 0.0)
            pred = predict(p, cal.params)
            tpot.append(ape(pred["tpot_p50_ms"], r.measured["tpot_p50_ms"]))
            ttft.append(ape(pred["ttft_p50_ms"], r.measured["ttft_p50_ms"]))
            cover.append(p.model.kernel_coverage(_decode_batch(r)))
            a = aic.get(r.id)
            if a is not None and a.ttft_ms is not None and a.tpot_ms is not None:
                aic_tpot.append(ape(a.tpot_ms, r.measured["tpot_p50_ms"]))
                aic_ttft.append(ape(a.ttft_ms, r.measured["ttft_p50_ms"]))
            m = r.measured
            lines.append(
                f"    {r.isl:>5}/{r.osl:<5} C{r.concurrency or 0:<4} TTFT ms measured "
                f"{m['ttft_p50_ms']:>8,.0f} moerun {pred['ttft_p50_ms']:>8,.0f} AIC "
                f"{a.ttft_ms if a and a.ttft_ms else float('nan'):>8,.0f}   TPOT ms measured "
                f"{m['tpot_p50_ms']:>5.1f} moerun {pred['tpot_p50_ms']:>5.1f} AIC "
                f"{a.tpot_ms if a and a.tpot_ms else float('nan'):>5.1f}"
            )
        print(
            f"  {key[0]:9} {key[1]:7} {key[2]:24} {len(runs):>3}  "
            f"{_errors(ttft, tpot)}  {_errors(aic_ttft, aic_tpot)}"
            f"{'' if len(aic_tpot) in (0, len(runs)) else f' ({len(aic_tpot)} pts)'}"
            f"  {np.mean(cover):8.0%}  {cal.note}"
        )
        if points:
            print("\n".join(lines))
    print(
        "  AIConfigurator: cli_estimate agg, SILICON database, its current engine data, each "
        "point's batch / layout / quantisation, KV dtype inferred (aic_predictions.SOURCE.yaml)"
    )
    launch = silicon_launch()
    print(
        f"  moerun: each point as AIConfigurator's generator launched and measured it "
        f"(silicon_launch.yaml): SGLang mixed chunks {'on' if launch.mixed_chunk else 'off'}, "
        f"--max-prefill-tokens ISL + {launch.max_prefill_tokens_over_isl}, clients started "
        f"together, {launch.warmup_requests_per_client} warm-up requests per client left out, "
        f"{min(waves, launch.requests_per_client)} measured per client, KV dtype as SGLang's "
        f"auto resolves it (fp8 for DSA models on {', '.join(launch.kv_dtype_dsa_fp8_gpus)})"
    )


def _errors(ttft: list[float], tpot: list[float]) -> str:
    """Median TTFT and TPOT APE and the share of TPOT within 20% ("-" without points)."""
    if not tpot:
        return f"{'-':>7} {'-':>7} {'-':>9}"
    within = float(np.mean(np.array(tpot) <= 20)) * 100
    return f"{np.median(ttft):6.1f}% {np.median(tpot):6.1f}% {within:8.0f}%"


def _decode_batch(r: MeasuredRun) -> object:
    from moerun.core.perf.step_time import StepBatch

    ctx = r.isl + r.osl / 2
    n = float(r.concurrency or 1)
    return StepBatch(decode_seqs=n, decode_attended=n * min(ctx, 2048), decode_context=n * ctx)


def aic_question(quick: bool) -> None:
    """GLM-5-FP8, 8x H200, SGLang, 4000/1000: best tok/s/GPU with TTFT <= 2 s, TPOT <= 50 ms."""
    run = MeasuredRun(
        id="aic-question",
        model="glm-5-fp8",
        weights="fp8",
        gpu="h200_sxm",
        num_gpus=8,
        engine="sglang",
        engine_version="",
        parallel=deployment_for(next(iter(silicon_runs())), 0.0).parallel,
        mtp_tokens=0,
        isl=4000,
        osl=1000,
        concurrency=1,
        num_prompts=1,
        measured={},
        source="",
        kv_dtype="fp8",
    )
    dep = deployment_for(run, 0.0)
    cal = calibration_for("h200_sxm", "sglang", "glm_moe_dsa")
    best = 0.0
    print("\n3. AIConfigurator's question: GLM-5-FP8, 8x H200, SGLang, 4000/1000")
    for conc in (4, 8, 16, 32) if quick else (4, 8, 16, 24, 32, 48, 64, 96):
        wl = Workload.single_turn(
            input_len=LengthDist.fixed(4000),
            output_len=LengthDist.fixed(1000),
            num_requests=max(32, 3 * conc),
            arrival=Arrival("closed", concurrency=conc, staggered=True),
            rng=random.Random(0),
        )
        opts = SimOptions(params=cal.params)
        res = simulate_deployment(replace(dep, kv_dtype="fp8"), wl, opts)
        s = res.summary()
        ttft, tpot = s["ttft_ms"]["p50"], s["tpot_ms"]["p50"]
        per_gpu = s["output_tok_per_s"] / 8
        ok = ttft <= 2000 and tpot <= 50
        best = max(best, per_gpu) if ok else best
        print(
            f"  concurrency {conc:>3}: TTFT {ttft:8,.0f} ms  TPOT {tpot:5.1f} ms  "
            f"{per_gpu:6.0f} tok/s/GPU  {'meets' if ok else 'misses'}"
        )
    print(f"  best within the SLO: {best:.0f} output tok/s/GPU (target band 70-200)")


def holdout_runs() -> None:
    """Every holdout row of the catalog, predicted with its GPU and engine's profile."""
    print("\n4. holdout runs (never fitted): measured / predicted, error")
    every, skipped = all_catalog_measurements()
    runs = [r for r in every if r.split == "holdout"]
    by_group: dict[tuple[str, str, str], list[list[float]]] = defaultdict(list)
    for r in runs:
        if r.engine not in ("vllm", "sglang") or r.concurrency is None:
            skipped.append(f"{r.id} ({r.engine}, offline)")
            continue
        try:
            # as a user's prediction of this model gets it (a GPU without tables reads the
            # roofline's fractions of peak off this model's steps on the profile's GPU)
            cal = calibration_for(r.gpu, r.engine, model_type(r))
            acc = _acceptance(r)
            opts = SimOptions(params=cal.params, kv_capacity_factor=cal.kv_capacity_factor)
            pred = predict(point_for(r, opts, acc), cal.params)
        except MoerunError as exc:
            skipped.append(f"{r.id} ({str(exc).splitlines()[0][:60]})")
            continue
        errs, cells = [], []
        for m in METRICS:
            meas = r.measured.get(m)
            if not meas:
                errs.append(float("nan"))
                cells.append(f"{'-':>24}")
                continue
            e = (pred[m] - meas) / meas * 100
            errs.append(abs(e))
            cells.append(f"{meas:9,.1f}/{pred[m]:9,.1f} {e:+4.0f}%")
        layout = f"tp{r.parallel.tp}" + (
            f" dp{r.parallel.dp} ep{r.parallel.ep}" if r.parallel.dp > 1 else ""
        )
        print(
            f"  {r.id:9} {r.gpu:9} {r.engine:6} {r.engine_version[:14]:14} {layout:12} "
            f"mtp{r.mtp_tokens} C{r.concurrency:<5} " + " ".join(cells)
        )
        by_group[(r.gpu, r.engine, r.checkpoint or r.model)].append(errs)
    print(f"  {'':9} {'':60} {'TTFT p50':>24} {'TPOT p50':>24} {'output tok/s':>24}")
    for (gpu, engine, model), rows in sorted(by_group.items()):
        cols = np.array(rows).T
        meds = [f"{np.median(c[~np.isnan(c)]):.1f}%" if (~np.isnan(c)).any() else "-" for c in cols]
        print(
            f"  median {gpu} {engine} {model} ({len(rows)} rows): TTFT {meds[0]}  "
            f"TPOT {meds[1]}  tok/s {meds[2]}"
        )
    if skipped:
        print(f"  skipped: {', '.join(skipped)}")


def _acceptance(r: MeasuredRun) -> float:
    """The row's measured per-token acceptance, else the catalog's for its prompts."""
    if not r.mtp_tokens:
        return 0.0
    if r.mtp_accept_len:
        return per_token_acceptance(r.mtp_accept_len, r.mtp_tokens)
    choice = acceptance_for(r.model, r.prompts, r.mtp_tokens)
    return choice.value if choice is not None else DEFAULT_MTP_ACCEPTANCE


def extrapolation(write: bool) -> None:
    """Section 5: the measured error of extrapolated predictions (the band they carry)."""
    from moerun.commands.calibrate import (
        architecture_residual_rows,
        extrapolation_errors,
        layout_extrapolation_errors,
        model_extrapolation_errors,
    )

    residuals = architecture_residual_rows()
    print("\n5. architecture residuals: per-step time of one architecture beyond another's")
    for res in residuals:
        print(
            f"  {res['engine']} {res['engine_version']} on {res['gpu']}: {res['to_model_type']} "
            f"{res['step_overhead_s'] * 1e3:+.2f} ms per step over {res['from_model_type']} "
            f"({len(res['runs'])} runs against {len(res['base_runs'])}; in-sample "
            + ", ".join(f"{k} {v:.1f}%" for k, v in res["in_sample_mape"].items())
            + ")"
        )
    if write:  # the rows below price each run's architecture with it
        from moerun.catalog.perf.architecture import write_residuals

        print(f"  wrote {write_residuals(residuals)}")

    rows = extrapolation_errors()
    print("   extrapolation: a profile fitted on one GPU predicting another GPU's runs")
    for row in rows:
        errs = "  ".join(f"{m} {v:.1f}%" for m, v in row["median_ape_pct"].items())
        print(
            f"  {row['profile']:20} on {row['to_gpu']:9} ({len(row['runs'])} runs, no MTP): " + errs
        )
    model_rows = model_extrapolation_errors()
    print(
        "   and a profile predicting its own GPU's runs it was not fitted on, per architecture"
        "\n   (another: cross-model; its own: held out; no MTP, or MTP at the measured accept "
        "length)"
    )
    for row in model_rows:
        errs = "  ".join(f"{m} {v:.1f}%" for m, v in row["median_ape_pct"].items())
        kind = "held out" if row["to_model_type"] in row["from_model_types"] else "cross-model"
        print(
            f"  {row['profile']:20} on {row['to_model_type']:12} {kind:11} ({len(row['runs'])} "
            f"runs: {', '.join(row['runs'])}): " + errs
        )
    layout_rows = layout_extrapolation_errors()
    print(
        "   and a profile predicting its own GPU's runs of a kind of layout its runs did not use"
        "\n   (any architecture; no MTP, or MTP at the measured accept length; the rows above "
        "count only\n   runs of the layouts each profile was fitted on)"
    )
    for row in layout_rows:
        errs = "  ".join(f"{m} {v:.1f}%" for m, v in row["median_ape_pct"].items())
        print(
            f"  {row['profile']:20} on {row['to_layout']:12} ({len(row['runs'])} runs: "
            f"{', '.join(row['runs'])}): " + errs
        )
    rows = rows + model_rows + layout_rows
    if write:
        from moerun.catalog.perf.extrapolation import write_extrapolation

        print(f"  wrote {write_extrapolation(rows)}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="fewer silicon points and loads")
    ap.add_argument(
        "--write-extrapolation",
        action="store_true",
        help="store section 5's errors in the catalog (catalog/data/extrapolation_error.yaml)",
    )
    ap.add_argument("--only-extrapolation", action="store_true", help="section 5 only")
    ap.add_argument(
        "--points", action="store_true", help="section 2 point by point (median TTFT and TPOT)"
    )
    ap.add_argument(
        "--waves",
        type=int,
        default=WAVES,
        help="measured requests per client simulated on each silicon point (its client sent 50)",
    )
    args = ap.parse_args()
    if not args.only_extrapolation:
        fitted_groups()
        silicon(args.quick, args.waves, args.points)
        aic_question(args.quick)
        holdout_runs()
    extrapolation(args.write_extrapolation)


if __name__ == "__main__":
    main()
