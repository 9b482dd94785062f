"""The GPUs the emitted commands ask for equal the deployment's, per node and in total.

The commands are parsed back from the written shell scripts and read with each engine's own
semantics (from its source and docs), independently of how moerun wrote them:

vLLM: one engine rank is TP x PP GPUs; --data-parallel-size ranks of it. Multi-node data
parallel runs --data-parallel-size-local ranks per node; --nnodes splits one rank's TP x PP
over nodes; the Ray DP backend spreads all ranks over the Ray cluster's nodes.
SGLang: --tp-size is the whole TP group of a stage (attention DP splits it, it does not
multiply it); GPUs = tp_size x pp_size, over --nnodes nodes; in 0.5.22+ a bare --dp-size
counts model replicas (x GPUs), with --enable-dp-attention (older) it counts attention groups.
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Sequence
from pathlib import Path

from moerun.render.shell import group_script
from tests.render.factories import CHECK_ROLES, all_cases, group_for

CASES = all_cases()


def node_commands(script: str) -> list[list[str]]:
    """The commands of a script: lines joined at backslash-newline, `exec` dropped."""
    text = script.replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        if not line or line.startswith(("#", "set ", ": ", "export ", "POD_IP=")):
            continue
        words = shlex.split(line)
        out.append(words[1:] if words[0] == "exec" else words)
    return out


def flags(words: Sequence[str]) -> dict[str, str]:
    """--flag value pairs (value '' for a switch)."""
    out: dict[str, str] = {}
    for i, w in enumerate(words):
        if w.startswith("--"):
            nxt = words[i + 1] if i + 1 < len(words) else ""
            out[w] = "" if nxt.startswith("--") else nxt
    return out


def vllm_gpus(nodes: list[list[list[str]]]) -> list[int]:
    """GPUs vLLM uses on each node, from the commands of every node."""
    head = flags(next(c for c in nodes[0] if c[:2] == ["vllm", "serve"]))
    tp = int(head.get("--tensor-parallel-size", 1))
    pp = int(head.get("--pipeline-parallel-size", 1))
    dp = int(head.get("--data-parallel-size", 1))
    total = tp * pp * dp
    if head.get("--data-parallel-backend") == "ray":
        assert all(
            c[0][:2] == ["ray", "start"] and c[0][2].startswith("--address=") for c in nodes[1:]
        )
        assert total % len(nodes) == 0
        return [total // len(nodes)] * len(nodes)
    if "--nnodes" in head:
        nnodes = int(head["--nnodes"])
        assert len(nodes) == nnodes and dp == 1
        ranks = [int(flags(n[-1])["--node-rank"]) for n in nodes]
        assert ranks == list(range(nnodes))
        assert all("--headless" in n[-1] for n in nodes[1:]) and "--headless" not in nodes[0][-1]
        return [total // nnodes] * nnodes
    if "--data-parallel-size-local" in head:
        per_node, starts = [], []
        for n in nodes:
            f = flags(n[-1])
            local = int(f["--data-parallel-size-local"])
            starts.append(int(f.get("--data-parallel-start-rank", 0)))
            per_node.append(local * tp * pp)
        local = int(head["--data-parallel-size-local"])
        assert starts == [i * local for i in range(len(nodes))]
        assert sum(p // (tp * pp) for p in per_node) == dp
        return per_node
    assert len(nodes) == 1
    return [total]


def sglang_gpus(nodes: list[list[list[str]]]) -> tuple[list[int], int]:
    """GPUs SGLang uses on each node, and attention TP per DP group."""
    head = flags(nodes[0][-1])
    tp_size = int(head["--tp-size"])
    pp = int(head.get("--pp-size", 1))
    nnodes = int(head.get("--nnodes", 1))
    if "--enable-dp-attention" in head:
        attn_dp, replicas = int(head["--dp-size"]), 1
    else:
        attn_dp, replicas = int(head.get("--attn-dp-size", 1)), int(head.get("--dp-size", 1))
    assert tp_size % attn_dp == 0
    assert len(nodes) == nnodes
    if nnodes > 1:
        ranks = [int(flags(n[-1])["--node-rank"]) for n in nodes]
        assert ranks == list(range(nnodes))
        assert len({flags(n[-1])["--dist-init-addr"] for n in nodes}) == 1
    total = tp_size * pp * replicas
    assert total % nnodes == 0
    return [total // nnodes] * nnodes, tp_size // attn_dp


def test_gpu_counts_match_for_every_layout() -> None:
    checked = 0
    for case in CASES:
        for role in CHECK_ROLES:
            group = group_for(case, role)
            dep = group.deployment
            scripts = [group_script(group, r) for r in range(group.num_nodes)]
            nodes = [node_commands(s) for s in scripts]
            if case.engine == "vllm":
                per_node = vllm_gpus(nodes)
            else:
                per_node, attn_tp = sglang_gpus(nodes)
                assert attn_tp == dep.parallel.tp, case.label
            assert sum(per_node) == dep.num_gpus, case.label
            assert len(per_node) == dep.num_nodes, case.label
            assert set(per_node) == {min(dep.num_gpus, dep.gpu.gpus_per_node)}, case.label
            assert group.gpus_per_node == per_node[0]
            checked += 1
    assert checked == len(CASES) * len(CHECK_ROLES)


def test_k8s_pods_request_the_gpus_of_their_node() -> None:
    from moerun.catalog.deploy import load_deploy_facts
    from moerun.render.k8s import group_objects
    from tests.render.factories import plan_of

    facts = load_deploy_facts()
    for case in CASES[::7]:
        group = group_for(case)
        plan = plan_of((group,))
        workload = group_objects(plan, group, "ns", facts)[0]
        if workload["kind"] == "Deployment":
            templates = [workload["spec"]["template"]]
            assert group.num_nodes == 1
        else:
            lwt = workload["spec"]["leaderWorkerTemplate"]
            assert lwt["size"] == group.num_nodes
            templates = [lwt["leaderTemplate"], lwt["workerTemplate"]]
        for t in templates:
            res = t["spec"]["containers"][0]["resources"]
            assert res["limits"]["nvidia.com/gpu"] == str(
                group.deployment.num_gpus // group.num_nodes
            )
            assert res["requests"] == res["limits"]


def test_every_script_is_valid_bash(tmp_path: Path) -> None:
    for i, case in enumerate(CASES):
        group = group_for(case, CHECK_ROLES[i % len(CHECK_ROLES)], mtp=3 * (i % 2))
        for rank in range(group.num_nodes):
            (tmp_path / f"{i}-{rank}.sh").write_text(group_script(group, rank))
    check = 'for f in "$1"/*.sh; do bash -n "$f" || { echo "$f"; exit 1; }; done'
    subprocess.run(["bash", "-c", check, "-", str(tmp_path)], check=True)
