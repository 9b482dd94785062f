"""Benchmark: GuideLLM and `moerun bench` on the same load against `moerun emulate`.

Run: scripts/install_guidellm.sh && .venv/bin/python benchmarks/bench_guidellm.py [--quick]

Starts the emulator (GLM-5.1 on 8x H200, real time; a fresh one per measurement, so every
run meets an empty prefix cache) and runs the same closed loop with both clients: chat
completions, fixed prompt and output lengths, streaming, ignore_eos. GuideLLM needs a
tokenizer; it gets a word-level one over moerun's synthetic vocabulary (written here, no
download), so its prompts have as many words as tokens and the emulator's word rule counts
them as GuideLLM does. Prints output throughput and median TTFT from each, and the ratio
(issue 7 asks for agreement within 10%). GuideLLM's throughput is its output token total over
its benchmark duration, the definition moerun uses.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from moerun.core.load.synthetic_text import VOCAB

VENV = Path(os.environ.get("GUIDELLM_VENV", Path.home() / ".cache/moerun/guidellm-venv"))
MOERUN = Path(sys.executable).with_name("moerun")
UNK = "thing"  # an ordinary word: decoding never drops it, the emulator counts it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_tokenizer(folder: Path) -> None:
    """A word-level tokenizer over moerun's vocabulary: one word, one token."""
    vocab = {w: i for i, w in enumerate([UNK, *VOCAB])}
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": [],
        "normalizer": None, "pre_tokenizer": {"type": "WhitespaceSplit"}, "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK},
    }  # fmt: skip
    (folder / "tokenizer.json").write_text(json.dumps(tok))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 10**6}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))


def start_emulator(port: int) -> subprocess.Popen[bytes]:
    cmd = [str(MOERUN), "emulate", "--gpu", "h200_sxm", "--num-gpus", "8", "--port", str(port),
           "--default-output-tokens", "100000"]  # fmt: skip
    proc = subprocess.Popen(cmd)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("the emulator did not start")


def run_guidellm(
    url: str, tok: Path, out: Path, isl: int, osl: int, c: int, n: int
) -> dict[str, float]:
    cmd = [str(VENV / "bin/guidellm"), "run",
           "--backend", f"kind=openai_http,target={url},model=glm-5.1",
           "--tokenizer", f"kind=huggingface_auto,model={tok}",
           "--profile", f"kind=concurrent,streams={c}",
           "--constraint", f"kind=max_requests,count={n}",
           "--data", f"kind=synthetic_text,prompt_tokens={isl},output_tokens={osl}",
           "--output", f"kind=json,path={out}", "--disable-console"]  # fmt: skip
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    bench: dict[str, Any] = json.loads(out.read_text())["benchmarks"][0]
    m = bench["metrics"]
    return {
        "output_tok_per_s": m["output_token_count"]["successful"]["total_sum"] / bench["duration"],
        "ttft_p50_ms": m["time_to_first_token_ms"]["successful"]["median"],
        "prompt_tokens_p50": m["prompt_token_count"]["successful"]["median"],
    }


def run_moerun(url: str, out: Path, isl: int, osl: int, c: int, n: int) -> dict[str, float]:
    cmd = [str(MOERUN), "bench", url, "--isl", str(isl), "--osl", str(osl), "--concurrency", str(c),
           "--num-requests", str(n), "--json", "--no-progress", "--output", str(out)]  # fmt: skip
    s = json.loads(subprocess.run(cmd, check=True, capture_output=True).stdout)
    return {
        "output_tok_per_s": s["output_tok_per_s"],
        "ttft_p50_ms": s["ttft_ms"]["p50"],
        "prompt_tokens_p50": s["total_input_tokens"] / s["num_completed"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one small load only")
    args = ap.parse_args()
    if not (VENV / "bin/guidellm").exists():
        sys.exit(f"guidellm is not installed in {VENV}: run scripts/install_guidellm.sh")
    loads = [(512, 64, 16, 64)] if args.quick else [(512, 64, 16, 64), (2048, 128, 64, 192)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        write_tokenizer(folder)
        for isl, osl, c, n in loads:
            print(f"load: {isl} in / {osl} out, closed loop of {c}, {n} requests, chat, streaming")
            g = on_fresh_emulator(
                lambda url: run_guidellm(url, folder, folder / "g.json", isl, osl, c, n)  # noqa: B023
            )
            m = on_fresh_emulator(
                lambda url: run_moerun(url, folder / "m.json", isl, osl, c, n)  # noqa: B023
            )
            for key in ("output_tok_per_s", "ttft_p50_ms", "prompt_tokens_p50"):
                print(
                    f"  {key:18s} moerun {m[key]:9.1f}   guidellm {g[key]:9.1f}   "
                    f"ratio {m[key] / g[key]:5.3f}"
                )


def on_fresh_emulator(measure: Callable[[str], dict[str, float]]) -> dict[str, float]:
    """Each measurement gets a new emulator: an empty prefix cache, as a cold server has."""
    port = free_port()
    emu = start_emulator(port)
    try:
        return measure(f"http://127.0.0.1:{port}")
    finally:
        emu.terminate()
        emu.wait()


if __name__ == "__main__":
    main()
