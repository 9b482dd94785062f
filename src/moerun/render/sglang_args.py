"""SGLang launch commands: parallel layout, DP attention by release, MTP, parsers, PD.

SGLang's layout semantics (sglang/srt/arg_groups/parallel_hook.py, fields/parallel.py):
`--tp-size` is the whole tensor-parallel group of a pipeline stage, and attention data
parallelism splits it (tp_size % attn_dp_size == 0), so DP attention over moerun's tp x dp GPUs
is `--tp-size tp*dp` with dp attention groups, never tp_size x dp GPUs. GPUs of one instance =
tp_size x pp_size, over `--nnodes` nodes that all run the same command with their
`--node-rank` and the head's `--dist-init-addr`.

Since 0.5.22 attention DP is `--attn-dp-size N` and `--dp-size N --enable-dp-attention` is
deprecated (`--dp-size` alone now counts model replicas); older releases only have the latter.
"""

from __future__ import annotations

from moerun.core.deploy.launch import HEAD, EngineGroup, NodeRole, Step, rank_token
from moerun.render.group_context import LISTEN_HOST, GroupContext, common_values

BOOTSTRAP_ANNOTATION = "sglang.ai/bootstrap-port"


def base_argv(ctx: GroupContext) -> list[str]:
    """Everything but multi-node placement."""
    dep, par, v = ctx.deployment, ctx.deployment.parallel, common_values(ctx)
    argv = [*ctx.facts.launcher, "--model-path", ctx.checkpoint]
    argv += ["--served-model-name", ctx.served_model_name]
    argv += ["--host", LISTEN_HOST, "--port", v["port"]]
    argv += ["--tp-size", str(par.tp * par.dp)]
    if par.dp > 1:
        if ctx.flags.accepts("--attn-dp-size"):
            argv += ["--attn-dp-size", str(par.dp)]
        else:
            argv += ["--dp-size", str(par.dp), "--enable-dp-attention"]
    if par.pp > 1:
        argv += ["--pp-size", str(par.pp)]
    if par.ep > 1:
        argv += ["--ep-size", str(par.ep)]
        if dep.uses_deepep:
            # DP attention hands tokens to experts with DeepEP (--enable-deepep-moe is the
            # deprecated spelling); elsewhere SGLang's default all-to-all is kept
            argv += ["--moe-a2a-backend", "deepep"]
    argv += ["--mem-fraction-static", v["mem_fraction"]]
    argv += ["--context-length", v["max_context"], "--kv-cache-dtype", ctx.kv_cache_dtype]
    argv += ["--chunked-prefill-size", v["batched_tokens"]]
    if dep.mixed_chunk:
        argv += ["--enable-mixed-chunk"]
    if dep.max_prefill_tokens is not None:
        argv += ["--max-prefill-tokens", str(dep.max_prefill_tokens)]
    if dep.max_num_seqs is not None:
        # SGLang's limit is for the whole instance, split over attention-DP workers; left
        # unset, SGLang sizes it from its KV pool (48 with MTP), as the plan priced it
        argv += ["--max-running-requests", str(dep.max_num_seqs * par.dp)]
    if ctx.parsers is not None:
        argv += ["--tool-call-parser", ctx.parsers.tool_call]
        argv += ["--reasoning-parser", ctx.parsers.reasoning]
    # Cached-token counts in usage.prompt_tokens_details, which the gateway meters.
    argv += ["--enable-cache-report"]
    if dep.mtp.enabled:
        # The GLM-5 README recipe: EAGLE over the MTP layer, top-1 chain of N steps.
        n = dep.mtp.num_draft_tokens
        argv += ["--speculative-algorithm", "EAGLE", "--speculative-num-steps", str(n)]
        argv += ["--speculative-eagle-topk", "1", "--speculative-num-draft-tokens", str(n + 1)]
    if ctx.role in ("prefill", "decode"):
        argv += ["--disaggregation-mode", ctx.role]
        if ctx.facts.disagg_transfer_backend:
            argv += ["--disaggregation-transfer-backend", ctx.facts.disagg_transfer_backend]
        if ctx.role == "prefill":
            argv += ["--disaggregation-bootstrap-port", str(bootstrap_port(ctx))]
    return argv + ctx.platform_args


def bootstrap_port(ctx: GroupContext) -> int:
    """Port of the prefill server's KV bootstrap server."""
    return ctx.facts.ports["disagg_bootstrap_port"]


def build(ctx: GroupContext) -> EngineGroup:
    """The head and worker commands of one SGLang instance."""
    argv = base_argv(ctx)
    nodes = ctx.num_nodes
    worker: NodeRole | None = None
    if nodes == 1:
        head = NodeRole((Step(tuple(argv), "sglang"),), serves_http=True)
    else:
        dist = ["--nnodes", str(nodes)]
        dist += ["--dist-init-addr", f"{HEAD}:{ctx.facts.ports['dist_init_port']}"]
        head_argv = (*argv, *dist, "--node-rank", "0")
        worker_argv = (*argv, *dist, "--node-rank", rank_token())
        head = NodeRole((Step(head_argv, "sglang"),), serves_http=True)
        # Nodes other than rank 0 run schedulers only; the HTTP server is on the head.
        worker = NodeRole((Step(worker_argv, "sglang"),), serves_http=False)
    annotations: tuple[tuple[str, str], ...] = ()
    extra_ports: tuple[tuple[str, int], ...] = ()
    if ctx.role == "prefill":
        annotations = ((BOOTSTRAP_ANNOTATION, str(bootstrap_port(ctx))),)
        extra_ports = (("bootstrap", bootstrap_port(ctx)),)
    return EngineGroup(
        name=ctx.name,
        role=ctx.role,
        engine="sglang",
        engine_version=ctx.version,
        image=ctx.image,
        deployment=ctx.deployment,
        replicas=ctx.replicas,
        num_nodes=nodes,
        gpus_per_node=ctx.gpus_per_node,
        head=head,
        worker=worker,
        env=tuple(ctx.platform_env),
        port=ctx.facts.port,
        health_path=ctx.facts.health_path,
        checkpoint=ctx.checkpoint,
        checkpoint_bytes=ctx.checkpoint_bytes,
        pod_annotations=annotations,
        extra_ports=extra_ports,
    )
