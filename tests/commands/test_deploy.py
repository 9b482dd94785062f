"""`moerun deploy` end to end: files, summary, JSON, determinism, atomic writes, bad input."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from moerun.cli import main
from moerun.commands import outdir
from moerun.serve.gateway.config import load_config
from tests.render.test_manifests import compose_validator

GLM_H200 = ["--model", "glm-5.1", "--gpu", "h200_sxm"]


def deploy(*args: str) -> int:
    return main(["deploy", *args])


def read_tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_k8s_single_node_writes_manifests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert (
        deploy(*GLM_H200, "--num-gpus", "8", "--tp", "8", "--target", "k8s", "--out", str(out)) == 0
    )
    files = set(read_tree(out))
    assert files == {
        "gateway-backends.yaml",
        "k8s/00-common.yaml",
        "k8s/10-glm-5-1-h200-sxm.yaml",
        "k8s/30-gateway.yaml",
        "k8s/40-inference-pool.yaml",
    }
    text = capsys.readouterr().out
    assert "wrote 5 files" in text and "vllm serve zai-org/GLM-5.1-FP8" in text
    assert "--tool-call-parser glm47" in text and "--reasoning-parser glm45" in text
    backends = yaml.safe_load((out / "gateway-backends.yaml").read_text())
    entry = backends["backends"][0]
    assert entry["base_url"] == "http://glm-5-1-h200-sxm.default.svc.cluster.local:8000/v1"
    assert entry["model"] == "zai-org/GLM-5.1-FP8" and entry["jurisdiction"] is None
    assert backends["models"] == {"glm-5.1": ["glm-5-1-h200-sxm"]}


def test_json_lists_files_and_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*GLM_H200, "--num-gpus", "16", "--engine", "sglang", "--mtp", "3"]
    args += ["--target", "shell", "--out", str(tmp_path / "o"), "--json", "--jurisdiction", "us"]
    assert deploy(*args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["files"] == sorted(data["files"])
    assert [c["node"] for c in data["commands"]] == [0, 1]
    assert all("--speculative-algorithm EAGLE" in c["command"] for c in data["commands"])
    group = data["groups"][0]
    assert group["num_nodes"] == 2 and group["gpus_per_node"] == 8
    backends = yaml.safe_load((tmp_path / "o" / "gateway-backends.yaml").read_text())
    assert backends["backends"][0]["jurisdiction"] == "US"
    for name in data["files"]:
        if name.endswith(".sh"):
            path = tmp_path / "o" / name
            assert os.access(path, os.X_OK)
            subprocess.run(["bash", "-n", str(path)], check=True)  # valid shell


@pytest.mark.parametrize("target", ["shell", "compose", "k8s"])
def test_same_input_same_bytes(tmp_path: Path, target: str) -> None:
    args = [*GLM_H200, "--num-gpus", "8", "--engine", "sglang", "--target", target]
    assert deploy(*args, "--out", str(tmp_path / "a"), "--json") == 0
    assert deploy(*args, "--out", str(tmp_path / "b"), "--json") == 0
    assert read_tree(tmp_path / "a") == read_tree(tmp_path / "b")


def test_failure_leaves_no_half_written_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = []
    real = outdir.write_file

    def failing(path: Path, text: str) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, text)

    monkeypatch.setattr(outdir, "write_file", failing)
    out = tmp_path / "out"
    args = [*GLM_H200, "--num-gpus", "8", "--target", "k8s", "--out", str(out)]
    assert deploy(*args) == 1  # an OS failure is not the user's input: internal error
    assert "No space left" in capsys.readouterr().err
    assert len(calls) == 3
    assert list(tmp_path.iterdir()) == []  # no out/, no temporary folder
    # An existing folder is kept intact when the replacement fails.
    out.mkdir()
    (out / "keep.txt").write_text("old")
    calls.clear()
    assert deploy(*args, "--force") == 1
    assert read_tree(out) == {"keep.txt": b"old"}
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_existing_folder_needs_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "old.txt").write_text("x")
    args = [*GLM_H200, "--num-gpus", "8", "--target", "shell", "--out", str(out)]
    assert deploy(*args) == 2
    err = capsys.readouterr().err
    assert "exists and is not empty; pass --force" in err and err.count("\n") == 1
    assert deploy(*args, "--force") == 0
    assert "old.txt" not in read_tree(out)
    empty = tmp_path / "empty"
    empty.mkdir()
    assert deploy(*[*args[:-1], str(empty)]) == 0  # an empty folder is fine


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "h100_sxm", "--num-gpus", "8"], "cannot run"),
        (["--gpu", "h200_sxm", "--num-gpus", "8", "--tp", "2"], "TP x DP x PP"),
        (
            ["--gpu", "h200_sxm", "--num-gpus", "8", "--engine-version", "0.1.0"],
            "no flag data for vllm 0.1.0",
        ),
        (
            ["--gpu", "h200_sxm", "--num-gpus", "8", "--weights", "nvfp4", "--gpu", "b200_sxm"],
            "--hf-repo",
        ),
        (["--gpu", "h200_sxm", "--num-gpus", "8", "--jurisdiction", "Mars"], "ISO 3166"),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert deploy("--model", "glm-5.1", *args, "--target", "k8s", "--out", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert message in err and err.startswith("moerun: error:") and err.count("\n") == 1
    assert not (tmp_path / "o").exists()


def test_compose_is_one_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = [*GLM_H200, "--num-gpus", "16", "--target", "compose", "--out", str(tmp_path / "o")]
    assert deploy(*args) == 2
    assert "Compose describes one host" in capsys.readouterr().err
    args = [*GLM_H200, "--num-gpus", "8", "--target", "compose", "--out", str(tmp_path / "o")]
    assert deploy(*args) == 0
    doc = yaml.safe_load((tmp_path / "o" / "compose.yaml").read_text())
    (svc,) = doc["services"].values()
    assert svc["entrypoint"][:2] == ["vllm", "serve"]
    assert svc["environment"]["HF_TOKEN"] == "${HF_TOKEN:-}"


def test_older_release_changes_the_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = [*GLM_H200, "--num-gpus", "8", "--engine", "sglang", "--tp", "1", "--dp", "8"]
    base += ["--ep", "8", "--target", "shell", "--json"]
    assert deploy(*base, "--out", str(tmp_path / "new")) == 0
    new = json.loads(capsys.readouterr().out)["commands"][0]["command"]
    assert deploy(*base, "--out", str(tmp_path / "old"), "--engine-version", "0.5.21") == 0
    old = json.loads(capsys.readouterr().out)["commands"][0]["command"]
    assert "--tp-size 8 --attn-dp-size 8" in new
    assert "--tp-size 8 --dp-size 8 --enable-dp-attention" in old


def write_plan(path: Path, options: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"options": options}))
    return path


def dep(**over: Any) -> dict[str, Any]:
    d: dict[str, Any] = {k: None for k in (
        "model", "weights", "kv_dtype", "engine", "tp", "dp", "ep", "pp", "mtp",
        "max_context", "mem_fraction", "max_num_batched_tokens")}  # fmt: skip
    d.update(model="glm-5.1", gpu="h200_sxm", num_gpus=8, tp=8)
    d.update(over)
    return d


MANAGED = {
    "provider": "together",
    "model": "zai-org/GLM-5.1",
    "base_url": "https://api.together.xyz/v1",
}


def option(rank: int, kind: str, **fields: Any) -> dict[str, Any]:
    """A plan option as `moerun plan --json` writes it."""
    base: dict[str, Any] = {"rank": rank, "kind": kind, "replicas": 1, "deployment": None}
    base.update(disaggregation=None, managed=None)
    base.update(fields)
    return base


PD = {
    "prefill": {"deployment": dep(), "instances": 2},
    "decode": {"deployment": dep(num_gpus=16, tp=1, dp=16, ep=16, mtp=3), "instances": 1},
}
OPTIONS = [
    option(1, "self-hosted", replicas=2, deployment=dep()),
    option(2, "hybrid", deployment=dep(engine="sglang"), managed=MANAGED),
    option(3, "managed", managed=MANAGED),
    option(4, "self-hosted", disaggregation=PD),
]


def test_plan_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = write_plan(tmp_path / "plan.json", OPTIONS)
    assert deploy(str(plan), "--target", "k8s", "--out", str(tmp_path / "o1"), "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["groups"][0]["replicas"] == 2 and data["groups"][0]["layout"] == "TP8"

    assert (
        deploy(str(plan), "--option", "2", "--target", "compose", "--out", str(tmp_path / "o2"))
        == 0
    )
    backends = yaml.safe_load((tmp_path / "o2" / "gateway-backends.yaml").read_text())
    assert [b["kind"] for b in backends["backends"]] == ["self-hosted", "managed"]
    assert backends["backends"][1]["api_key_env"] == "TOGETHER_API_KEY"
    assert backends["backends"][0]["base_url"] == "http://localhost:30000/v1"

    assert (
        deploy(str(plan), "--option", "3", "--target", "shell", "--out", str(tmp_path / "o3")) == 0
    )
    assert set(read_tree(tmp_path / "o3")) == {"gateway-backends.yaml"}

    capsys.readouterr()
    assert (
        deploy(
            str(plan), "--option", "4", "--target", "k8s", "--out", str(tmp_path / "o4"), "--json"
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    roles = [(g["role"], g["replicas"], g["num_nodes"]) for g in data["groups"]]
    assert roles == [("prefill", 2, 1), ("decode", 1, 2)]
    assert any("NixlConnector" in c["command"] for c in data["commands"])
    router = [c for c in data["commands"] if c["role"] == "router"]
    assert (
        router
        and "vllm-router --vllm-pd-disaggregation --service-discovery" in router[0]["command"]
    )
    assert (
        deploy(str(plan), "--option", "4", "--target", "shell", "--out", str(tmp_path / "o5")) == 0
    )
    script = (tmp_path / "o5" / "glm-5-1-h200-sxm-router.sh").read_text()
    assert '--prefill "http://${PREFILL_ADDR_0}:8000"' in script
    assert '--prefill "http://${PREFILL_ADDR_1}:8000"' in script
    subprocess.run(["bash", "-n", str(tmp_path / "o5" / "glm-5-1-h200-sxm-router.sh")], check=True)


def test_gateway_loads_what_deploy_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = write_plan(tmp_path / "plan.json", OPTIONS)
    assert deploy(str(plan), "--option", "2", "--target", "k8s", "--out", str(tmp_path / "o")) == 0
    loaded = load_config(str(tmp_path / "o" / "gateway-backends.yaml"), {"TOGETHER_API_KEY": "x"})
    assert list(loaded.backends) == ["glm-5-1-h200-sxm", "together"]
    cm = next(yaml.safe_load_all((tmp_path / "o" / "k8s" / "30-gateway.yaml").read_text()))
    (tmp_path / "cm.yaml").write_text(cm["data"]["gateway.yaml"])
    secrets = {
        "TOGETHER_API_KEY": "x",
        "MOERUN_DATABASE_URL": "postgresql+psycopg://u:p@pg:5432/db",
        "MOERUN_REDIS_URL": "redis://redis:6379/0",
    }
    loaded_cm = load_config(str(tmp_path / "cm.yaml"), secrets)
    assert loaded_cm.models
    assert loaded_cm.database_url == secrets["MOERUN_DATABASE_URL"]


@pytest.mark.parametrize(
    ("extra", "options", "message"),
    [
        (["--option", "9"], OPTIONS, "no option of rank 9 (ranks: 1, 2, 3, 4)"),
        (["--gpu", "h200_sxm"], OPTIONS, "either a plan file or deployment flags"),
        (["--engine", "sglang"], OPTIONS, "not both (--engine)"),
        (
            [],
            [{"rank": 1, "kind": "self-hosted", "deployment": dep(gpu="h100_sxm")}],
            "does not fit",
        ),
        (
            [],
            [{"rank": 1, "kind": "self-hosted", "deployment": dep(tpp=8)}],
            "unknown field(s) tpp",
        ),
        (
            [],
            [{"rank": 1, "kind": "managed", "deployment": None, "managed": None}],
            "needs `managed`",
        ),
        ([], [{"rank": 1, "kind": "hybrid", "deployment": dep(tp=3)}], "needs `managed`"),
        ([], [{"rank": 1, "kind": "self-hosted", "deployment": dep(tp=3)}], "does not divide"),
    ],
)
def test_bad_plans(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    options: list[Any],
    message: str,
) -> None:
    plan = write_plan(tmp_path / "plan.json", options)
    assert deploy(str(plan), *extra, "--target", "k8s", "--out", str(tmp_path / "o")) == 2
    assert message in capsys.readouterr().err
    (tmp_path / "bad.json").write_text("{not json")
    assert deploy(str(tmp_path / "bad.json"), "--target", "k8s", "--out", str(tmp_path / "o")) == 2
    assert "is not a JSON plan" in capsys.readouterr().err


def test_amd_gpus_need_an_image_and_their_own_devices(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # MI355X: no image pattern is known (MI300X/MI325X get the support matrix's ROCm image)
    args = ["--gpu", "mi355x", "--num-gpus", "8", "--engine", "sglang", "--target", "k8s"]
    assert deploy(*args, "--out", str(tmp_path / "a")) == 2
    assert "no official sglang image for amd GPUs; pass --image" in capsys.readouterr().err
    args[args.index("k8s")] = "shell"
    assert deploy(*args, "--out", str(tmp_path / "s")) == 0  # hosts bring their own install
    args[args.index("shell")] = "k8s"
    image = ["--image", "example.com/sglang-rocm:0.5.23"]
    assert deploy(*args, *image, "--out", str(tmp_path / "k")) == 0
    text = (tmp_path / "k" / "k8s" / "10-glm-5-1-mi355x.yaml").read_text()
    assert "amd.com/gpu: '8'" in text and "nvidia.com/gpu" not in text
    assert "example.com/sglang-rocm:0.5.23" in text
    args[args.index("k8s")] = "compose"
    assert deploy(*args, *image, "--out", str(tmp_path / "c")) == 0
    doc = yaml.safe_load((tmp_path / "c" / "compose.yaml").read_text())
    compose_validator().validate(doc)
    (svc,) = doc["services"].values()
    assert svc["devices"] == ["/dev/kfd", "/dev/dri"] and "deploy" not in svc
    assert svc["environment"]["ROCR_VISIBLE_DEVICES"] == "0,1,2,3,4,5,6,7"
