"""`vllm serve` commands: parallel layout, node placement, MTP, parsers, PD disaggregation.

vLLM's layout semantics (vllm/config/parallel.py, docs/serving/data_parallel_deployment.md):
one engine rank holds TP x PP GPUs; `--data-parallel-size` ranks of it make GPUs = TP x PP x DP;
with `--enable-expert-parallel` the experts are spread over the TP x DP GPUs of a stage.
Placement over nodes follows the documented recipes:
  - ranks that fit in a node: multi-node data parallel (`--data-parallel-size-local` ranks per
    node, `--headless --data-parallel-start-rank` on the other nodes);
  - one rank larger than a node and DP 1: multiprocessing over nodes
    (`--nnodes --node-rank --master-addr`, `--headless` on the other nodes);
  - ranks larger than a node and DP > 1: the Ray data-parallel backend with
    VLLM_RAY_DP_PACK_STRATEGY=span, started from the head of a Ray cluster.
"""

from __future__ import annotations

import json

from moerun.core.deploy.launch import HEAD, POD_IP, EngineGroup, NodeRole, Step, rank_token
from moerun.errors import LayoutError
from moerun.render.group_context import (
    LISTEN_HOST,
    GroupContext,
    common_values,
    whole_nodes_problem,
)

KV_ROLE = {"prefill": "kv_producer", "decode": "kv_consumer"}


def base_argv(ctx: GroupContext) -> list[str]:
    """Everything but multi-node placement."""
    dep, par, v = ctx.deployment, ctx.deployment.parallel, common_values(ctx)
    argv = [*ctx.facts.launcher, ctx.checkpoint, "--served-model-name", ctx.served_model_name]
    argv += ["--host", LISTEN_HOST, "--port", v["port"]]
    argv += ["--tensor-parallel-size", str(par.tp)]
    if par.pp > 1:
        argv += ["--pipeline-parallel-size", str(par.pp)]
    if par.dp > 1:
        argv += ["--data-parallel-size", str(par.dp)]
    if par.ep > 1:
        argv += ["--enable-expert-parallel"]
    argv += ["--gpu-memory-utilization", v["mem_fraction"]]
    argv += ["--max-model-len", v["max_context"], "--kv-cache-dtype", ctx.kv_cache_dtype]
    argv += ["--max-num-batched-tokens", v["batched_tokens"]]
    # the sequence cap the plan priced: the deployment's, else vLLM's default on this GPU
    seqs = dep.max_num_seqs or dep.default_max_num_seqs
    if seqs is not None:
        argv += ["--max-num-seqs", str(seqs)]
    argv += ["--enable-chunked-prefill", "--enable-prefix-caching"]
    if ctx.parsers is not None:
        argv += ["--tool-call-parser", ctx.parsers.tool_call, "--enable-auto-tool-choice"]
        argv += ["--reasoning-parser", ctx.parsers.reasoning]
    # Cached-token counts in usage.prompt_tokens_details, which the gateway meters.
    argv += ["--enable-prompt-tokens-details"]
    if dep.mtp.enabled:
        spec = {"method": "mtp", "num_speculative_tokens": dep.mtp.num_draft_tokens}
        argv += ["--speculative-config", json.dumps(spec, separators=(",", ":"))]
    if ctx.role in KV_ROLE:
        # NixlConnector ignores kv_role (the router decides who prefills); it documents it.
        kv = {"kv_connector": "NixlConnector", "kv_role": KV_ROLE[ctx.role]}
        argv += ["--kv-transfer-config", json.dumps(kv, separators=(",", ":"))]
    return argv + ctx.platform_args


def build(ctx: GroupContext) -> EngineGroup:
    """The head and worker commands of one vLLM instance."""
    dep, par = ctx.deployment, ctx.deployment.parallel
    ports = ctx.facts.ports
    argv = base_argv(ctx)
    world, nodes, per_node = par.tp * par.pp, ctx.num_nodes, ctx.gpus_per_node
    env: list[tuple[str, str]] = ctx.platform_env
    if ctx.role in KV_ROLE:
        env += [("VLLM_NIXL_SIDE_CHANNEL_HOST", POD_IP)]
        env += [("VLLM_NIXL_SIDE_CHANNEL_PORT", str(ports["nixl_side_channel_port"]))]
    worker: NodeRole | None = None
    if nodes == 1:
        head = NodeRole((Step(tuple(argv), "vllm"),), serves_http=True)
    else:
        problem = whole_nodes_problem(ctx, world)
        if problem:
            raise LayoutError(problem)
        if world <= per_node:
            ranks_per_node = per_node // world
            dp = [
                "--data-parallel-size-local", str(ranks_per_node),
                "--data-parallel-address", HEAD,
                "--data-parallel-rpc-port", str(ports["dp_rpc_port"]),
            ]  # fmt: skip
            head_argv = [*argv, *dp]
            worker_argv = [*argv, *dp, "--headless"]
            worker_argv += ["--data-parallel-start-rank", rank_token(ranks_per_node)]
            head = NodeRole((Step(tuple(head_argv), "vllm"),), serves_http=True)
            worker = NodeRole((Step(tuple(worker_argv), "vllm"),), serves_http=False)
        elif par.dp == 1:
            mp = ["--nnodes", str(nodes), "--master-addr", HEAD]
            mp += ["--master-port", str(ports["master_port"])]
            head_argv = [*argv, *mp, "--node-rank", "0"]
            worker_argv = [*argv, *mp, "--node-rank", rank_token(), "--headless"]
            head = NodeRole((Step(tuple(head_argv), "vllm"),), serves_http=True)
            worker = NodeRole((Step(tuple(worker_argv), "vllm"),), serves_http=False)
        else:
            ray_port = str(ports["ray_port"])
            env += [("VLLM_RAY_DP_PACK_STRATEGY", "span")]
            ray_head = ("ray", "start", "--head", f"--port={ray_port}")
            serve = (*argv, "--data-parallel-backend", "ray")
            ray_worker = ("ray", "start", f"--address={HEAD}:{ray_port}", "--block")
            head = NodeRole((Step(ray_head, None), Step(serve, "vllm")), serves_http=True)
            worker = NodeRole((Step(ray_worker, None),), serves_http=False)
    return EngineGroup(
        name=ctx.name,
        role=ctx.role,
        engine="vllm",
        engine_version=ctx.version,
        image=ctx.image,
        deployment=dep,
        replicas=ctx.replicas,
        num_nodes=nodes,
        gpus_per_node=per_node,
        head=head,
        worker=worker,
        env=tuple(env),
        port=ctx.facts.port,
        health_path=ctx.facts.health_path,
        checkpoint=ctx.checkpoint,
        checkpoint_bytes=ctx.checkpoint_bytes,
    )
