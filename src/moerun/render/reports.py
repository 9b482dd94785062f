"""Model, fit and plan answers as JSON-ready dicts and as rich tables."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.fit_table import PlanRow
from moerun.core.deploy.memory_fit import MemoryFit
from moerun.core.deploy.parallel import Parallel
from moerun.core.model.flops import flops_per_token
from moerun.core.model.kv_cache import kv_bytes_per_token, kv_layouts
from moerun.core.model.model_spec import ModelSpec
from moerun.core.model.weights import FORMAT_PLAN, weight_bytes

GB = 1e9
ACTIVE_DEFINITION = (
    "active_params: parameters one token uses in the main model, counting the input embedding "
    "and the output head; active_params_no_embedding drops the embedding lookup; "
    "active_params_compute drops both"
)


def model_dict(spec: ModelSpec) -> dict[str, Any]:
    """Everything `moerun model show --json` prints."""
    kv = {layout: kv_bytes_per_token(spec, layout) for layout in kv_layouts(spec)}
    arch = spec.arch
    kv_mtp = {
        layout: kv_bytes_per_token(spec, layout, num_mtp_layers=arch.num_mtp_layers)
        for layout in kv_layouts(spec)
    }
    weights = {fmt: weight_bytes(spec, fmt).total_bytes for fmt in FORMAT_PLAN}
    weights_main = {
        fmt: weight_bytes(spec, fmt, include_mtp=False).total_bytes for fmt in FORMAT_PLAN
    }
    high_precision = {fmt: weight_bytes(spec, fmt).high_precision_bytes for fmt in FORMAT_PLAN}
    contexts = (1, 2048, 32768, 131072, spec.max_position_embeddings)
    return {
        "name": spec.name,
        "model_type": arch.model_type,
        "total_params_main": spec.total_params_main,
        "total_params_stored": spec.total_params_stored,
        "mtp_params": spec.mtp_params,
        "mtp_stores_embed_head": arch.mtp_stores_embed_head,
        "active_params": spec.active_params,
        "active_params_no_embedding": spec.active_params_no_embedding,
        "active_params_compute": spec.active_params_compute,
        "active_params_definition": ACTIVE_DEFINITION,
        "params_breakdown": spec.breakdown(),
        "kv_bytes_per_token": kv,
        "kv_bytes_per_token_with_mtp": kv_mtp,
        "weight_bytes": weights,
        "weight_bytes_main": weights_main,
        "weight_bytes_high_precision": high_precision,
        "flops_per_token": {
            "decode": {str(c): flops_per_token(spec, c, "decode") for c in contexts},
            "prefill": {str(c): flops_per_token(spec, c, "prefill") for c in contexts},
        },
        "architecture": {
            "num_layers": arch.num_layers,
            "num_moe_layers": arch.num_moe_layers,
            "num_mtp_layers": arch.num_mtp_layers,
            "hidden_size": arch.hidden_size,
            "vocab_size": arch.vocab_size,
            "attention": arch.attention_kind,
            "num_attention_heads": arch.num_attention_heads,
            "num_kv_heads": arch.num_kv_heads,
            "index_topk": arch.indexer.topk if arch.indexer else None,
            "num_indexer_layers": arch.indexer.num_indexer_layers if arch.indexer else None,
            "num_routed_experts": arch.moe.num_routed_experts if arch.moe else None,
            "num_experts_per_tok": arch.moe.num_experts_per_tok if arch.moe else None,
            "max_position_embeddings": spec.max_position_embeddings,
            "checkpoint_format": spec.checkpoint_format,
        },
    }


def fit_dict(
    dep: Deployment, fit: MemoryFit, best: tuple[Parallel, MemoryFit] | None
) -> dict[str, Any]:
    """Everything `moerun fit --json` prints."""
    out: dict[str, Any] = {
        "model": dep.model.name,
        "gpu": dep.gpu.id,
        "num_gpus": dep.num_gpus,
        "num_nodes": dep.num_nodes,
        "engine": dep.engine.name,
        "weights": dep.weights,
        "kv_dtype": dep.kv_dtype,
        "layout": fit.layout,
        "parallel": _parallel_dict(dep.parallel),
        "mtp_tokens": dep.mtp.num_draft_tokens,
        "mem_fraction": dep.effective_mem_fraction,
        "fits": fit.fits,
        "reasons": list(fit.reasons),
        "gpu_memory_bytes": fit.gpu_memory_bytes,
        "budget_bytes_per_gpu": fit.budget_bytes_per_gpu,
        "weights_bytes_per_gpu": fit.weights_bytes_per_gpu,
        "reserve_bytes_per_gpu": {
            "activations": fit.activation_bytes_per_gpu,
            "cuda_graphs": fit.cuda_graph_bytes_per_gpu,
            "non_torch": fit.non_torch_bytes_per_gpu,
        },
        "kv_free_bytes_per_gpu": fit.kv_free_bytes_per_gpu,
        "kv_layout": fit.kv_layout,
        "kv_bytes_per_token_per_gpu": fit.kv_bytes_per_token_per_gpu,
        "page_size_tokens": fit.page_size_tokens,
        "kv_capacity_tokens": fit.kv_capacity_tokens,
        "kv_capacity_tokens_per_rank": fit.kv_capacity_tokens_per_rank,
        "max_context": fit.max_context,
        "max_concurrency_at_context": fit.max_concurrency_at_context,
    }
    if best is not None:
        par, bfit = best
        out["best_layout"] = {
            "layout": par.describe(),
            "parallel": _parallel_dict(par),
            "weights_bytes_per_gpu": bfit.weights_bytes_per_gpu,
            "kv_capacity_tokens": bfit.kv_capacity_tokens,
            "max_concurrency_at_context": bfit.max_concurrency_at_context,
        }
    return out


def _parallel_dict(par: Parallel) -> dict[str, int]:
    return {"tp": par.tp, "dp": par.dp, "pp": par.pp, "ep": par.ep}


def print_model(console: Console, d: dict[str, Any]) -> None:
    """Human view of `model show`."""
    a = d["architecture"]
    console.print(f"[bold]{d['name']}[/bold]  ({d['model_type']}, {a['attention']} attention)")
    t = Table(title="Parameters", show_header=True)
    t.add_column("what")
    t.add_column("parameters", justify="right")
    t.add_column("B", justify="right")
    rows = [
        ("total, main model (no MTP)", d["total_params_main"]),
        ("total, as stored (with MTP)", d["total_params_stored"]),
        ("active per token (with embedding + head)", d["active_params"]),
        ("active, without input embedding", d["active_params_no_embedding"]),
        ("active, without embedding and head", d["active_params_compute"]),
    ]
    for name, value in rows:
        t.add_row(name, f"{value:,}", f"{value / 1e9:.2f}")
    for comp, value in d["params_breakdown"].items():
        if value:
            t.add_row(f"  {comp}", f"{value:,}", f"{value / 1e9:.2f}")
    console.print(t)
    k = Table(title="KV cache per token (all layers)")
    k.add_column("layout")
    k.add_column("bytes", justify="right")
    k.add_column("with MTP layer", justify="right")
    for layout, value in d["kv_bytes_per_token"].items():
        k.add_row(layout, f"{value:,}", f"{d['kv_bytes_per_token_with_mtp'][layout]:,}")
    console.print(k)
    w = Table(title="Weights")
    w.add_column("format")
    w.add_column("bytes (with MTP)", justify="right")
    w.add_column("GB", justify="right")
    w.add_column("GB main only", justify="right")
    w.add_column("GB kept high precision", justify="right")
    for fmt, value in d["weight_bytes"].items():
        w.add_row(
            fmt,
            f"{value:,}",
            f"{value / GB:.1f}",
            f"{d['weight_bytes_main'][fmt] / GB:.1f}",
            f"{d['weight_bytes_high_precision'][fmt] / GB:.1f}",
        )
    console.print(w)
    console.print(f"[dim]{ACTIVE_DEFINITION}[/dim]")


def print_fit(console: Console, d: dict[str, Any]) -> None:
    """Human view of `fit`."""
    verdict = "[green]FITS[/green]" if d["fits"] else "[red]DOES NOT FIT[/red]"
    console.print(
        f"{d['model']} on {d['num_gpus']}x {d['gpu']} ({d['num_nodes']} node(s)), {d['weights']} "
        f"weights, {d['kv_dtype']} KV, {d['engine']}, {d['layout']}: {verdict}"
    )
    if "layout_used" in d:
        console.print(f"layout: {d['layout_used']}", highlight=False)
    for reason in d["reasons"]:
        console.print(f"  - {reason}")
    t = Table(show_header=False)
    t.add_column("what")
    t.add_column("value", justify="right")
    r = d["reserve_bytes_per_gpu"]
    t.add_row("GPU memory (as the device reports it)", f"{d['gpu_memory_bytes'] / GB:.1f} GB")
    t.add_row(
        f"budget at mem fraction {d['mem_fraction']:.2f}",
        f"{d['budget_bytes_per_gpu'] / GB:.1f} GB",
    )
    t.add_row("weights per GPU", f"{d['weights_bytes_per_gpu'] / GB:.1f} GB")
    t.add_row(
        "engine reserve (activations / graphs / other)",
        f"{r['activations'] / GB:.1f} / {r['cuda_graphs'] / GB:.1f} / {r['non_torch'] / GB:.1f} GB",
    )
    t.add_row("free for KV per GPU", f"{d['kv_free_bytes_per_gpu'] / GB:.1f} GB")
    t.add_row(
        f"KV bytes per token per GPU ({d['kv_layout']})", f"{d['kv_bytes_per_token_per_gpu']:,}"
    )
    t.add_row("KV capacity (tokens, replica)", f"{d['kv_capacity_tokens']:,}")
    t.add_row(
        f"sequences of {d['max_context']:,} tokens at once", f"{d['max_concurrency_at_context']:,}"
    )
    console.print(t)
    best = d.get("best_layout")
    if best:
        console.print(
            f"best valid layout on these GPUs: [bold]{best['layout']}[/bold] "
            f"({best['weights_bytes_per_gpu'] / GB:.1f} GB weights/GPU, "
            f"{best['kv_capacity_tokens']:,} KV tokens, "
            f"{best['max_concurrency_at_context']:,} max-context sequences)"
        )
    elif "best_layout" in d:
        console.print("no valid layout over these GPUs fits")


def plan_row_dict(row: PlanRow) -> dict[str, Any]:
    """JSON form of a plan row."""
    return {
        "gpu": row.gpu,
        "num_gpus": row.num_gpus,
        "num_nodes": row.num_nodes,
        "weights": row.weights,
        "layout": row.layout,
        "fits": row.fits,
        "reason": row.reason,
        "weights_bytes_per_gpu": row.weights_bytes_per_gpu,
        "kv_free_bytes_per_gpu": row.kv_free_bytes_per_gpu,
        "kv_capacity_tokens": row.kv_capacity_tokens,
        "concurrency_at_context": row.concurrency_at_context,
    }


def print_plan(console: Console, model: str, context: int, rows: list[PlanRow]) -> None:
    """Human view of the plan's fit table."""
    t = Table(title=f"Where {model} fits (best valid layout per configuration)")
    for col, just in (
        ("GPU", "left"),
        ("GPUs", "right"),
        ("nodes", "right"),
        ("weights", "left"),
        ("layout", "left"),
        ("fits", "left"),
        ("weights/GPU GB", "right"),
        ("KV free/GPU GB", "right"),
        ("KV tokens", "right"),
        (f"{context // 1000}K seqs", "right"),
        ("why not", "left"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        t.add_row(
            r.gpu,
            str(r.num_gpus),
            str(r.num_nodes),
            r.weights,
            r.layout,
            "[green]yes[/green]" if r.fits else "[red]no[/red]",
            f"{r.weights_bytes_per_gpu / GB:.1f}",
            f"{r.kv_free_bytes_per_gpu / GB:.1f}" if r.fits else "",
            f"{r.kv_capacity_tokens:,}" if r.fits else "",
            str(r.concurrency_at_context) if r.fits else "",
            r.reason,
        )
    console.print(t)
