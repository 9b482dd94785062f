"""Produce GuideLLM 0.8.1 results against `moerun emulate` for calibration tests.

Run: scripts/install_guidellm.sh
     .venv/bin/python scripts/make_guidellm_fixture.py OUT_DIR [TIME_SCALE]

For each prompt length it starts a fresh emulator (GLM-5.1 FP8 on 8x H200, vLLM, the
catalog's calibration: the parameters a refit should recover; by default 10x slower than real
time, see TIME_SCALE), runs GuideLLM's concurrent profile over the stream counts (chat,
streaming, fixed prompt and output lengths, a word-level tokenizer over moerun's vocabulary
so GuideLLM's token counts are the emulator's), and writes GuideLLM's own `benchmarks.json`
as `guidellm-isl<N>.json`, then a trimmed copy `guidellm-isl<N>.small.json` (GuideLLM's
structure with only what moerun reads: the configuration, the summary metrics, and per
request its timings and token counts; no prompt or answer text) small enough to keep as a
test fixture.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from bench_guidellm import MOERUN, VENV, free_port, write_tokenizer

ISLS = (512, 1024, 2048)
OSL = 64
STREAMS = "4,16"
NUM_REQUESTS = 32
# The emulator runs this many times slower than real time, so that a busy machine's timing
# jitter (a few ms) is small against its step times; `moerun calibrate --time-scale` and
# `moerun bench --import --time-scale` take the same number to convert GuideLLM's seconds.
TIME_SCALE = float(sys.argv[2]) if len(sys.argv) > 2 else 0.1
_TIMINGS = ("request_start", "first_token_iteration", "last_token_iteration", "request_end")
_METRICS = (
    "request_totals",
    "request_latency",
    "prompt_token_count",
    "output_token_count",
    "time_to_first_token_ms",
    "inter_token_latency_ms",
    "time_per_output_token_ms",
)
_STATS = ("mean", "median", "count", "total_sum", "percentiles")


def _request(req: dict[str, Any]) -> dict[str, Any]:
    info = req.get("info") or {}
    return {
        "request_id": req.get("request_id"),
        "info": {
            "status": info.get("status"),
            "error": info.get("error"),
            "timings": {k: (info.get("timings") or {}).get(k) for k in _TIMINGS},
        },
        "input_metrics": {k: (req.get("input_metrics") or {}).get(k)
                          for k in ("text_tokens", "cached_tokens")},
        "output_metrics": {"text_tokens": (req.get("output_metrics") or {}).get("text_tokens")},
    }  # fmt: skip


def _metric(value: Any) -> Any:
    if not isinstance(value, dict) or not isinstance(value.get("successful"), dict):
        return value
    return {
        status: {k: v for k, v in (value.get(status) or {}).items() if k in _STATS}
        for status in ("successful", "errored")
    }


def trim(doc: dict[str, Any]) -> dict[str, Any]:
    """GuideLLM's document with only what moerun reads: no prompt or answer text, no
    scheduler internals, per request its timings and token counts."""
    out = {"metadata": doc["metadata"], "config": doc["config"], "benchmarks": []}
    for bench in doc["benchmarks"]:
        reqs = bench["requests"]
        out["benchmarks"].append(
            {
                "type_": bench.get("type_"),
                "config": {"strategy": bench["config"]["strategy"]},
                "metrics": {k: _metric(bench["metrics"][k]) for k in _METRICS},
                "requests": {s: [_request(r) for r in reqs.get(s) or []]
                             for s in ("successful", "errored", "incomplete")},
                "start_time": bench["start_time"],
                "end_time": bench["end_time"],
                "duration": bench["duration"],
            }
        )  # fmt: skip
    return out


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    """`moerun emulate` (GLM-5.1 FP8 on 8x H200, vLLM) at TIME_SCALE, once it listens."""
    cmd = [str(MOERUN), "emulate", "--gpu", "h200_sxm", "--num-gpus", "8", "--port", str(port),
           "--time-scale", str(TIME_SCALE), "--default-output-tokens", "100000"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the emulator did not start")


def run(url: str, tok: Path, out: Path, isl: int) -> None:
    """One GuideLLM run: the concurrent profile over STREAMS."""
    cmd = [str(VENV / "bin/guidellm"), "run",
           "--backend", f"kind=openai_http,target={url},model=glm-5.1",
           "--tokenizer", f"kind=huggingface_auto,model={tok}",
           "--profile", "kind=concurrent", "--override", "profile.streams", STREAMS,
           "--constraint", f"kind=max_requests,count={NUM_REQUESTS}",
           "--data", f"kind=synthetic_text,prompt_tokens={isl},output_tokens={OSL}",
           "--output", f"kind=json,path={out}", "--disable-console"]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    """Write the results under the directory given."""
    dest = Path(sys.argv[1])
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok = Path(tmp)
        write_tokenizer(tok)
        for isl in ISLS:
            port = free_port()
            emu = start_emulator(port)
            try:
                out = dest / f"guidellm-isl{isl}.json"
                run(f"http://127.0.0.1:{port}", tok, out, isl)
            finally:
                emu.terminate()
                emu.wait(10)
            small = trim(json.loads(out.read_text()))
            (dest / f"guidellm-isl{isl}.small.json").write_text(json.dumps(small) + "\n")
            print(f"isl {isl}: {out}")


if __name__ == "__main__":
    main()
