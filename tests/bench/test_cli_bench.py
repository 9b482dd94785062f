"""`moerun bench` end to end: outputs, bad input, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from moerun.bench.records import summarize_records
from moerun.bench.results import read_results
from moerun.cli import main
from tests.bench.conftest import ThreadServer, fixed_server, raw_server
from tests.fixtures.fixed_timing import FixedTiming

SMALL = ["--isl", "32", "--osl", "4", "--num-requests", "12", "--no-progress"]


def test_json_results_and_html(
    fast_server: ThreadServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, page = tmp_path / "r.json", tmp_path / "r.html"
    code = main(
        [
            "bench",
            fast_server.url + "/v1",
            *SMALL,
            "--concurrency",
            "3",
            "--json",
            "--output",
            str(out),
            "--html",
            str(page),
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    for key in ("output_tok_per_s", "input_tok_per_s", "req_per_s", "ttft_ms", "tpot_ms", "itl_ms"):
        assert key in summary
    assert set(summary["ttft_ms"]) == {"mean", "p50", "p90", "p99"}
    res = read_results(out)
    assert res.served_model == "fixed-timing" and res.deployment is None
    (run,) = res.runs
    assert run.workload["concurrency"] == 3 and len(run.records) == 12
    again = summarize_records(run.records, num_gpus=1)
    assert again["ttft_ms"] == pytest.approx(summary["ttft_ms"], rel=1e-3)
    assert again["itl_ms"] == pytest.approx(summary["itl_ms"], rel=1e-3)
    html = page.read_text()
    assert "<svg" in html and "ttft_ms CDF" in html and "<script" not in html


def test_sweep_and_deployment_flags(fast_server: ThreadServer, tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    code = main(
        [
            "bench",
            fast_server.url,
            *SMALL,
            "--sweep-concurrency",
            "1,4",
            "--output",
            str(out),
            "--gpu",
            "h200_sxm",
            "--num-gpus",
            "8",
            "--engine",
            "sglang",
        ]
    )
    assert code == 0
    res = read_results(out)
    assert [r.workload["concurrency"] for r in res.runs] == [1, 4]
    assert res.deployment is not None
    assert res.deployment["gpu"] == "h200_sxm" and res.deployment["engine"] == "sglang"
    assert res.deployment["num_gpus"] == 8
    # no layout flags: the file records the layout the default rule settles (the one `moerun
    # fit` and `moerun emulate` print for these flags, DP8 x EP8), so calibrate prices that
    layout = {k: res.deployment[k] for k in ("tp", "dp", "ep", "pp")}
    assert layout == {"tp": 1, "dp": 8, "ep": 8, "pp": 1}


def test_unreachable_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["bench", f"http://127.0.0.1:{port}", *SMALL, "--output", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "cannot reach" in err and "is the server running" in err


def test_not_openai(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = (
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\nnot here!"
    )
    with raw_server(page) as srv:
        assert main(["bench", srv.url, *SMALL, "--output", str(tmp_path / "r")]) == 2
    assert "does not look like an OpenAI-compatible server" in capsys.readouterr().err
    assert main(["bench", "ftp://x", *SMALL]) == 2


def test_bad_workload_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "w.jsonl"
    bad.write_text('{"input_tokens": 10}\n')
    assert main(["bench", "http://127.0.0.1:9", "--workload", str(bad), "--no-progress"]) == 2
    assert "output_tokens" in capsys.readouterr().err
    assert main(["bench", "http://127.0.0.1:9", "--workload", "nope"]) == 2


def test_compare_sim_needs_a_deployment(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "http://127.0.0.1:9", "--compare-sim"]) == 2
    assert "--compare-sim needs the deployment" in capsys.readouterr().err


def test_ctrl_c_writes_partial_results(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    with fixed_server(FixedTiming(ttft_s=0.02, itl_s=0.02)) as srv:
        cmd = [
            sys.executable,
            "-m",
            "moerun.cli",
            "bench",
            srv.url,
            "--isl",
            "16",
            "--osl",
            "5",
            "--num-requests",
            "100000",
            "--concurrency",
            "4",
            "--output",
            str(out),
            "--no-progress",
        ]
        proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy()
        )
        # interrupt once requests flow (not at a fixed time: a busy machine may still be
        # importing after 2 s, and a SIGINT then is a KeyboardInterrupt, not a stop)
        deadline = time.monotonic() + 60
        while not _talks_to(proc.pid, srv.port) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert b"interrupted" in err
    (run,) = read_results(out).runs
    assert run.interrupted and len(run.records) > 0
    assert run.summary["num_completed"] == len(run.records)


def _talks_to(pid: int, port: int) -> bool:
    """Whether process `pid` has a TCP connection to 127.0.0.1:`port`."""
    try:
        conns = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.raddr and c.raddr.port == port for c in conns)
