"""Bad input across commands: exit 2, one line on stderr saying what and what to do, no
traceback, nothing left behind; outputs (paths, ports) checked before any work; Ctrl-C exits
130 without a traceback."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from moerun.cli import main

DEP = ["--model", "glm-5.1-fp8", "--gpu", "h200_sxm", "--num-gpus", "8"]
SIM = [*DEP, "--concurrency", "1", "--num-requests", "2"]
HEX64 = "1234567890" * 6 + "1234"  # all digits: YAML reads it as an int unless quoted
GW = 'backends:\n  - {name: a, kind: self-hosted, base_url: "http://127.0.0.1:9/v1"}\n'
GW += "models: {m: [a]}\n"


def _config_with_layers(n: object) -> str:
    """GLM-5.1's own config.json with num_hidden_layers replaced."""
    src = Path(__file__).parents[2] / "src/moerun/catalog/models/GLM-5.1.json"
    cfg = json.loads(src.read_text())
    cfg["num_hidden_layers"] = n
    return json.dumps(cfg)


@dataclass(frozen=True)
class Case:
    """One bad input: the argv, the files it needs, and a word the message must contain."""

    id: str
    argv: list[str]
    says: str
    files: dict[str, str] = field(default_factory=dict)


CASES = [
    # the list
    Case("layers-1e9-int", ["model", "show", "big/config.json"], "num_hidden_layers",
         {"big/config.json": _config_with_layers(1_000_000_000)}),
    Case("layers-1e9-float", ["fit", "big", "--gpu", "h200_sxm", "--num-gpus", "8"],
         "num_hidden_layers", {"big/config.json": _config_with_layers(1e9)}),
    Case("deploy-out-under-file", ["deploy", *DEP, "--target", "shell", "--out", "f/sub"],
         "not a folder", {"f": ""}),
    Case("bench-output-unwritable", ["bench", "http://127.0.0.1:9", "--output", "f/r.json"],
         "--output", {"f": ""}),
    Case("bench-output-no-folder", ["bench", "http://127.0.0.1:9", "--output", "no/r.json"],
         "does not exist"),
    Case("bench-html-under-file", ["bench", "http://127.0.0.1:9", "--html", "f/r.html"],
         "--html", {"f": ""}),
    Case("simulate-isl-beyond-context", ["simulate", *SIM, "--isl", "300000", "--osl", "10"],
         "context"),
    Case("plan-jurisdiction-xx", ["plan", "--jurisdictions", "XX"], "ISO 3166"),
    Case("plan-pricing-reserved", ["plan", "--pricing", "reserved"], "--prices"),
    Case("plan-mtp-9", ["plan", "--mtp", "9"], "--mtp"),
    Case("usage-missing-folder", ["usage", "--database-url", "sqlite:///nodir/u.db"],
         "no usage ledger"),
    Case("usage-missing-file", ["usage", "--database-url", "sqlite:///u.db"], "no usage ledger"),
    Case("gateway-mysql", ["gateway", "--config", "g.yaml", "--check"], "postgresql",
         {"g.yaml": GW + "database_url: mysql://u@h/db\n"}),
    Case("gateway-digit-key", ["gateway", "--config", "g.yaml", "--check"], "quote",
         {"g.yaml": GW + f"keys:\n  - {{name: k, key_sha256: {HEX64}}}\n"}),
    # more of the same kinds
    Case("fit-mtp-9", ["fit", *DEP, "--mtp", "9"], "--mtp"),
    Case("simulate-mtp-5", ["simulate", *SIM, "--mtp", "5"], "--mtp"),
    Case("plan-html-under-file", ["plan", "--html", "f/p.html"], "not a folder", {"f": ""}),
    Case("plan-nodes-1000", ["plan", "--nodes", "1000"], "--nodes"),
    Case("plan-jurisdiction-word", ["plan", "--jurisdictions", "Europe"], "ISO 3166"),
    Case("fit-unknown-gpu", ["fit", "glm-5.1", "--gpu", "h900", "--num-gpus", "8"], "h900"),
    Case("fit-zero-gpus", ["fit", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "0"],
         "at least 1"),
    Case("model-unknown", ["model", "show", "glm-9"], "glm-9"),
    Case("plan-unknown-workload", ["plan", "--workload", "poetry"], "poetry"),
    Case("plan-unknown-cert", ["plan", "--certifications", "iso9001"], "iso9001"),
    Case("plan-unknown-weights", ["plan", "--weights", "fp3"], "fp3"),
    Case("plan-unknown-engine", ["plan", "--engines", "trtllm"], "trtllm"),
    Case("plan-unknown-gpu", ["plan", "--gpus", "h900"], "h900"),
    Case("plan-missing-config", ["plan", "--config", "nope.yaml"], "nope.yaml"),
    Case("plan-missing-prices", ["plan", "--prices", "nope.yaml"], "nope.yaml"),
    Case("plan-negative-slo", ["plan", "--slo-ttft-ms", "-5"], "slo"),
    Case("deploy-unknown-target", ["deploy", *DEP, "--target", "helm", "--out", "o"], "helm"),
    Case("deploy-nonempty-out", ["deploy", *DEP, "--target", "shell", "--out", "o"],
         "--force", {"o/keep.txt": "x"}),
    Case("deploy-missing-plan", ["deploy", "nope.json", "--target", "shell", "--out", "o"],
         "nope.json"),
    Case("emulate-port-range", ["emulate", *DEP, "--port", "70000"], "port"),
    Case("gateway-missing-config", ["gateway", "--config", "nope.yaml", "--check"],
         "nope.yaml"),
    Case("gateway-redis-http", ["gateway", "--config", "g.yaml", "--check"], "redis",
         {"g.yaml": GW + "redis_url: http://127.0.0.1:6379\n"}),
    Case("calibrate-missing-file", ["calibrate", "nope.csv", "--dry-run"], "nope.csv"),
]  # fmt: skip


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def in_tmp(tmp_path: Path) -> Iterator[Path]:
    old = Path.cwd()
    os.chdir(tmp_path)
    try:
        yield tmp_path
    finally:
        os.chdir(old)


def test_at_least_thirty_cases() -> None:
    assert len({c.id for c in CASES}) == len(CASES) >= 30


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, in_tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for rel, text in case.files.items():
        (in_tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (in_tmp / rel).write_text(text)
    before = _tree(in_tmp)
    assert main(case.argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("moerun") and err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    assert case.says.lower() in err.lower(), err
    assert _tree(in_tmp) == before  # nothing left behind, nothing half-written


def test_emulate_on_a_busy_port_fails_before_saying_it_serves(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        assert main(["emulate", *DEP, "--port", str(port)]) == 2
    _, err = capsys.readouterr()
    assert err.count("\n") == 1 and "in use" in err and "serving" not in err
    assert "http://" not in err


def _interrupt(argv: list[str], ready: Callable[[subprocess.Popen[str]], bool]) -> tuple[int, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "moerun", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not ready(proc) and time.monotonic() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    return proc.returncode, err


def test_ctrl_c_in_plan_exits_130_without_traceback() -> None:
    started = time.monotonic()
    code, err = _interrupt(["plan"], lambda _: time.monotonic() - started > 3.0)
    assert code == 130 and "Traceback" not in err, err


def test_ctrl_c_in_emulate_exits_130_without_traceback(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def serving(_: subprocess.Popen[str]) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    code, err = _interrupt(["emulate", *DEP, "--port", str(port)], serving)
    assert code == 130 and "Traceback" not in err, err
