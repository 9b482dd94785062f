"""Benchmark: the digital twin at real time, and the emulator's concurrent-stream capacity.

Run: .venv/bin/python benchmarks/bench_emulator.py [--quick]

For each load, a fresh `moerun emulate` (GLM-5.1 on 8x H200, vLLM, real time) is measured by
`moerun bench --compare-sim`, which also runs `moerun simulate` on the same deployment and
workload (the baseline). Printed: measured and predicted output throughput, median TTFT and
median ITL, and their ratios (issue 7: within 10%). The saturated load opens 500 streams at
once, so it is also the capacity check (issue 7: the emulator serves >= 500 concurrent
streams), and the last load has 1,000 streams decoding at once: if the emulator could not
keep up, its steps would run late and the measured ITL would exceed the predicted one.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

MOERUN = Path(sys.executable).with_name("moerun")
DEPLOYMENT = ["--gpu", "h200_sxm", "--num-gpus", "8", "--engine", "vllm"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def measure(load: list[str], engine: list[str], out: Path) -> dict[str, Any]:
    port = free_port()
    emu = subprocess.Popen([str(MOERUN), "emulate", *DEPLOYMENT, *engine, "--port", str(port)])
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        cmd = [str(MOERUN), "bench", f"http://127.0.0.1:{port}", *DEPLOYMENT, *engine, *load,
               "--compare-sim", "--json", "--no-progress", "--output", str(out)]  # fmt: skip
        result: dict[str, Any] = json.loads(
            subprocess.run(cmd, check=True, capture_output=True).stdout
        )
        return result
    finally:
        emu.terminate()
        emu.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="smaller loads")
    args = ap.parse_args()
    k = 2 if args.quick else 1
    loads = {
        "low load (Poisson 2/s, 2000 in / 200 out)": [
            "--request-rate", "2", "--isl", "2000", "--osl", "200", "--num-requests", str(60 // k),
            "--shared-prefix", "1000",
        ],
        "saturated (500 streams at once, 1000 in / 200 out)": [
            "--request-rate", "inf", "--isl", "1000", "--osl", "200",
            "--num-requests", str(500 // k),
        ],
        "capacity (1000 streams decoding at once, --max-num-seqs 1024, 200 in / 300 out)": [
            "--request-rate", "inf", "--isl", "200", "--osl", "300",
            "--num-requests", str(1000 // k),
        ],
    }  # fmt: skip
    engines = {name: ["--max-num-seqs", "1024"] if "capacity" in name else [] for name in loads}
    with TemporaryDirectory() as tmp:
        for name, load in loads.items():
            s = measure(load, engines[name], Path(tmp) / "r.json")
            p = s["predicted"]
            print(f"{name}: {s['num_completed']}/{s['num_requests']} completed")
            rows = (
                ("output tok/s", s["output_tok_per_s"], p["output_tok_per_s"]),
                ("TTFT p50 ms", s["ttft_ms"]["p50"], p["ttft_ms"]["p50"]),
                ("ITL p50 ms", s["itl_ms"]["p50"], p["itl_ms"]["p50"]),
            )
            for label, m, pr in rows:
                print(f"  {label:13s} measured {m:9.1f}   simulate {pr:9.1f}   ratio {m / pr:5.3f}")


if __name__ == "__main__":
    main()
