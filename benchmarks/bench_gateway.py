"""Benchmark: moerun's gateway (SQLite and PostgreSQL ledgers) against a direct connection
and LiteLLM's proxy, in one run.

Run: .venv/bin/python benchmarks/bench_gateway.py [--n 2000] [--n-litellm 300] [--no-litellm]

One mock OpenAI backend (uvicorn + uvloop; 8 content chunks per stream, plus role, reasoning,
finish and usage chunks) serves all three paths. Clients use keep-alive connections, as the
OpenAI SDKs do. Per target and scenario it measures client latency (p50/p99; TTFT for
streams) and the target process's CPU time per request from /proc (all threads, children
included), which is robust on a shared box. moerun runs its defaults: SQLite ledger on,
access log on (to a file), one API key; then the same with the ledger on a private PostgreSQL
cluster (initdb in a temporary directory, pinned with the gateway), whose CPU per request is
counted into moerun's. LiteLLM (`litellm[proxy]`, 1 worker, no database) is
installed into its own virtual environment under ~/.cache/moerun-bench; if that fails, the
benchmark says so and reports the rest. Following the gateway research method, the gateways
run on CPU 1, the backend and the load generator on CPU 0 (--no-pin to turn that off).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path
from typing import Any

import psutil
import yaml

from moerun.serve.gateway.chunks import ChunkQueue
from moerun.wire.client import Pool

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.fixtures.private import PrivatePostgres

CACHE = Path(os.environ.get("MOERUN_BENCH_CACHE", Path.home() / ".cache" / "moerun-bench"))
LITELLM_SPEC = "litellm[proxy]==1.108.7"  # unpinned, pip backtracks for minutes (research note)
BODY = {
    "model": "glm-5.1",
    "max_tokens": 16,
    "messages": [
        {"role": "system", "content": "You are helpful. " * 50},
        {"role": "user", "content": "hi"},
    ],
}
SCENARIOS = (("json", 1), ("stream", 1), ("json", 8), ("stream", 8))
TARGETS = {"cpu_ms_json": 1.5, "cpu_ms_stream": 3.0, "added_p50_ms": 1.0, "rps_per_core_x": 10.0}
PG_TARGETS = {"cpu_ms_json": 1.5, "added_p50_ms": 1.5}  # issue 13 item 7, PostgreSQL included

BACKEND = r"""
import json, sys, uvicorn
N = 8
def chunk(delta, finish=None, usage=None, choices=True):
    d = {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m",
         "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
         if choices else []}
    if usage is not None:
        d["usage"] = usage
    return b"data: " + json.dumps(d, separators=(",", ":")).encode() + b"\n\n"
USAGE = {"prompt_tokens": 212, "completion_tokens": N, "total_tokens": 212 + N,
         "prompt_tokens_details": {"cached_tokens": 200}}
JSON = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
    "content": "hello " * N, "reasoning_content": "thinking"}}], "usage": USAGE}).encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        m = await receive(); body += m.get("body", b"")
        if not m.get("more_body"): break
    if scope["path"].endswith("/models") or scope["path"] == "/health":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        return await send({"type": "http.response.body", "body": b"{}"})
    req = json.loads(body)
    if not req.get("stream"):
        await send({"type": "http.response.start", "status": 200, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(JSON)).encode())]})
        return await send({"type": "http.response.body", "body": JSON})
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/event-stream")]})
    parts = [chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "thinking"})]
    parts += [chunk({"content": "hello "}) for _ in range(N)] + [chunk({}, "stop")]
    if (req.get("stream_options") or {}).get("include_usage"):
        parts.append(chunk(None, usage=USAGE, choices=False))
    for p in parts:
        await send({"type": "http.response.body", "body": p, "more_body": True})
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
            log_level="warning", access_log=False)
"""


class _Holder:
    conn: Any = None
    client_gone = False


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def cpu_s(pid: int) -> float:
    """User + system CPU of a process and its children, in seconds."""
    proc = psutil.Process(pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        t = p.cpu_times()
        total += t.user + t.system
    return total


async def load(
    port: int, path: str, key: str | None, stream: bool, n: int, c: int
) -> dict[str, Any]:
    """n requests at concurrency c over keep-alive connections; latencies in ms."""
    body = dict(BODY, stream=True, stream_options={"include_usage": True}) if stream else BODY
    payload = json.dumps(body).encode()
    auth = f"authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\ncontent-type: application/json\r\n"
        f"{auth}content-length: {len(payload)}\r\n\r\n"
    ).encode()
    pool = Pool(f"http://127.0.0.1:{port}", asyncio.get_running_loop())
    lat: list[float] = []
    ttft: list[float] = []
    errors = 0
    todo = n

    async def worker() -> None:
        nonlocal todo, errors
        while todo > 0:
            todo -= 1
            t0 = time.perf_counter()
            body = ChunkQueue()
            conn = await pool.send(head, payload, body, 5.0, 60.0, _Holder())
            status = conn.status
            first = None
            while (piece := await body.next_chunk(60.0)) is not None:
                if first is None and b"data:" in piece:
                    first = time.perf_counter()
            conn.release()
            if status != 200:
                errors += 1
                continue
            lat.append((time.perf_counter() - t0) * 1000)
            if stream and first is not None:
                ttft.append((first - t0) * 1000)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    wall = time.perf_counter() - t0
    pool.close()
    out: dict[str, Any] = {"n": n, "c": c, "errors": errors, "rps": len(lat) / wall}
    if lat:
        out |= {"p50_ms": pct(lat, 0.5), "p99_ms": pct(lat, 0.99), "mean_ms": statistics.mean(lat)}
    if ttft:
        out |= {"ttft_p50_ms": pct(ttft, 0.5), "ttft_p99_ms": pct(ttft, 0.99)}
    return out


def measure(
    pid: int, port: int, path: str, key: str | None, n: int, db: PrivatePostgres | None = None
) -> dict[str, Any]:
    """Every scenario against one target, with its CPU per request (the database's included)."""
    results: dict[str, Any] = {}
    for kind, c in SCENARIOS:
        asyncio.run(load(port, path, key, kind == "stream", min(50, n), c))  # warm up
        before, db_before = cpu_s(pid), db.cpu_s() if db else 0.0
        r = asyncio.run(load(port, path, key, kind == "stream", n, c))
        db_ms = ((db.cpu_s() - db_before) * 1000 / n) if db else 0.0
        r["cpu_ms_per_req"] = (cpu_s(pid) - before) * 1000 / n + db_ms
        if db:
            r["db_cpu_ms_per_req"] = db_ms
        results[f"{kind}_c{c}"] = r
        print(
            f"  {kind:6} c={c}: " + json.dumps({k: round(v, 3) for k, v in r.items()}), flush=True
        )
    return results


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except Exception:
            time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout_s} s")


def start(args: list[str], cpu: int | None, log: Path, env: dict[str, str] | None = None):
    if cpu is not None and shutil.which("taskset"):
        args = ["taskset", "-c", str(cpu), *args]
    with open(log, "wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def start_gateway(
    work: Path,
    name: str,
    be_port: int,
    port: int,
    key: str,
    database_url: str,
    cpu: int | None,
    sync: str = "normal",
) -> subprocess.Popen[bytes]:
    """`moerun gateway` with its defaults and one key, the ledger at database_url."""
    cfg = {
        "backends": [
            {
                "name": "local",
                "kind": "self-hosted",
                "model": "m",
                "base_url": f"http://127.0.0.1:{be_port}/v1",
            }
        ],
        "models": {"glm-5.1": ["local"]},
        "keys": [{"name": "bench", "key_sha256": hashlib.sha256(key.encode()).hexdigest()}],
        "database_url": database_url,
        "ledger": {"spool_dir": str(work / f"spool-{name}"), "sync": sync},
    }
    (work / f"gw-{name}.yaml").write_text(yaml.safe_dump(cfg))
    args = [
        sys.executable,
        "-m",
        "moerun.cli",
        "gateway",
        "--config",
        str(work / f"gw-{name}.yaml"),
    ]
    gw = start([*args, "--port", str(port)], cpu, work / f"gw-{name}.log")
    wait_http(f"http://127.0.0.1:{port}/health", gw, 60)
    return gw


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it lingers."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def litellm_python(log: Path) -> Path:
    """The LiteLLM venv's python, installing it on first use (raises if that fails)."""
    env_dir = CACHE / "litellm-venv"
    py = env_dir / "bin" / "python"
    if py.exists() and (env_dir / "bin" / "litellm").exists():
        return py
    print(f"installing {LITELLM_SPEC} into {env_dir} (about a minute) ...", flush=True)
    venv.create(env_dir, with_pip=True, clear=True)
    with open(log, "wb") as out:
        subprocess.run(
            [str(py), "-m", "pip", "install", "-q", LITELLM_SPEC],
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=900,
        )
    return py


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=2000, help="requests per scenario (direct, moerun)")
    p.add_argument("--n-litellm", type=int, default=300)
    p.add_argument("--no-litellm", action="store_true")
    p.add_argument("--no-pin", action="store_true")
    p.add_argument(
        "--ledger-sync",
        choices=("normal", "full"),
        default="normal",
        help="ledger.sync for both ledgers (full: PostgreSQL flushes its WAL on every commit)",
    )
    a = p.parse_args()
    pin = not a.no_pin and (os.cpu_count() or 1) >= 2
    gw_cpu, be_cpu = (1, 0) if pin else (None, None)
    if pin:
        os.sched_setaffinity(0, {0})
    work = Path(tempfile.mkdtemp(prefix="moerun-bench-gw-"))
    procs: list[subprocess.Popen[bytes]] = []
    results: dict[str, Any] = {}
    try:
        be_port, gw_port, ll_port = 18001, 18002, 18003
        (work / "backend.py").write_text(BACKEND)
        backend = start(
            [sys.executable, str(work / "backend.py"), str(be_port)], be_cpu, work / "be.log"
        )
        procs.append(backend)
        wait_http(f"http://127.0.0.1:{be_port}/health", backend, 20)
        print("direct (baseline):", flush=True)
        results["direct"] = measure(backend.pid, be_port, "/v1/chat/completions", None, a.n)

        key = "sk-bench-" + os.urandom(8).hex()
        database_url = f"sqlite:///{work / 'usage.db'}"
        gw = start_gateway(
            work, "sqlite", be_port, gw_port, key, database_url, gw_cpu, a.ledger_sync
        )
        procs.append(gw)
        print("moerun gateway (SQLite ledger):", flush=True)
        results["moerun"] = measure(gw.pid, gw_port, "/v1/chat/completions", key, a.n)
        stop(gw)

        pg = PrivatePostgres()
        try:
            pg.start()
            if gw_cpu is not None:  # the ledger's database shares the gateway's CPU
                for proc in pg.processes():
                    os.sched_setaffinity(proc.pid, {gw_cpu})
            gw = start_gateway(
                work, "pg", be_port, gw_port + 10, key, pg.url, gw_cpu, a.ledger_sync
            )
            procs.append(gw)
            print("moerun gateway (PostgreSQL ledger):", flush=True)
            results["moerun_pg"] = measure(
                gw.pid, gw_port + 10, "/v1/chat/completions", key, a.n, pg
            )
            stop(gw)
        finally:
            pg.close()

        if not a.no_litellm:
            try:
                py = litellm_python(work / "litellm-install.log")
                master = "sk-bench-" + os.urandom(16).hex()
                ll_cfg = {
                    "model_list": [
                        {
                            "model_name": "glm-5.1",
                            "litellm_params": {
                                "model": "hosted_vllm/m",
                                "api_base": f"http://127.0.0.1:{be_port}/v1",
                                "api_key": "dummy",
                            },
                        }
                    ],
                    "litellm_settings": {"num_retries": 0, "request_timeout": 30, "callbacks": []},
                    "general_settings": {"master_key": "os.environ/LITELLM_MASTER_KEY"},
                }
                (work / "litellm.yaml").write_text(yaml.safe_dump(ll_cfg))
                env = {
                    **os.environ,
                    "LITELLM_MASTER_KEY": master,
                    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                    "LITELLM_LOG": "ERROR",
                }
                ll = start(
                    [
                        str(py.parent / "litellm"),
                        "--config",
                        str(work / "litellm.yaml"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(ll_port),
                        "--num_workers",
                        "1",
                    ],
                    gw_cpu,
                    work / "litellm.log",
                    env,
                )
                procs.append(ll)
                wait_http(f"http://127.0.0.1:{ll_port}/health/liveliness", ll, 120)
                print("LiteLLM proxy:", flush=True)
                results["litellm"] = measure(
                    ll.pid, ll_port, "/v1/chat/completions", master, a.n_litellm
                )
            except Exception as exc:
                results["litellm_error"] = f"{type(exc).__name__}: {exc} (logs in {work})"
                print(f"LiteLLM NOT measured: {results['litellm_error']}", flush=True)
    finally:
        for proc in reversed(procs):
            if proc.poll() is None:
                stop(proc)
    report(results, pin)


def report(results: dict[str, Any], pin: bool) -> None:
    d, m, ll = results["direct"], results["moerun"], results.get("litellm")
    mp = results["moerun_pg"]
    print(
        "\n== summary ("
        + ("gateways on CPU 1, backend + client on CPU 0" if pin else "unpinned")
        + ")"
    )
    rows = []
    for name, r in (("direct", d), ("moerun", m), ("moerun-pg", mp), ("litellm", ll)):
        if r is None:
            continue
        rows.append(
            (
                name,
                r["json_c1"]["cpu_ms_per_req"] if name != "direct" else float("nan"),
                r["stream_c1"]["cpu_ms_per_req"] if name != "direct" else float("nan"),
                r["json_c1"]["p50_ms"] - d["json_c1"]["p50_ms"],
                r["json_c1"]["p99_ms"] - d["json_c1"]["p99_ms"],
                r["stream_c1"]["ttft_p50_ms"] - d["stream_c1"]["ttft_p50_ms"],
                r["stream_c1"]["p50_ms"] - d["stream_c1"]["p50_ms"],
                r["json_c8"]["rps"],
                r["stream_c8"]["rps"],
            )
        )
    print(
        f"{'target':9} {'cpu ms/json':>11} {'cpu ms/strm':>11} {'+p50 json':>9} {'+p99 json':>9} "
        f"{'+ttft p50':>9} {'+p50 strm':>9} {'rps json c8':>11} {'rps strm c8':>11}"
    )
    for r in rows:
        print(
            f"{r[0]:9} {r[1]:11.3f} {r[2]:11.3f} {r[3]:9.3f} {r[4]:9.3f} {r[5]:9.3f} {r[6]:9.3f} "
            f"{r[7]:11.0f} {r[8]:11.0f}"
        )
    cpu_json, cpu_stream = m["json_c1"]["cpu_ms_per_req"], m["stream_c1"]["cpu_ms_per_req"]
    added = m["json_c1"]["p50_ms"] - d["json_c1"]["p50_ms"]
    checks = [
        (
            "CPU per non-streamed request",
            cpu_json,
            "ms",
            cpu_json <= TARGETS["cpu_ms_json"],
            "<= 1.5",
        ),
        (
            "CPU per 8-chunk stream",
            cpu_stream,
            "ms",
            cpu_stream <= TARGETS["cpu_ms_stream"],
            "<= 3",
        ),
        ("added p50 latency (non-streamed)", added, "ms", added < TARGETS["added_p50_ms"], "< 1"),
    ]
    pg_cpu = mp["json_c1"]["cpu_ms_per_req"]
    pg_added = mp["json_c1"]["p50_ms"] - d["json_c1"]["p50_ms"]
    print(
        "PostgreSQL's own share (ms CPU per request, json/stream c=1): "
        f"{mp['json_c1']['db_cpu_ms_per_req']:.3f} / {mp['stream_c1']['db_cpu_ms_per_req']:.3f}"
    )
    checks += [
        (
            "CPU per non-streamed request, PostgreSQL ledger (its CPU included)",
            pg_cpu,
            "ms",
            pg_cpu < PG_TARGETS["cpu_ms_json"],
            "< 1.5",
        ),
        (
            "added p50 latency (non-streamed), PostgreSQL ledger",
            pg_added,
            "ms",
            pg_added < PG_TARGETS["added_p50_ms"],
            "< 1.5",
        ),
    ]
    if ll is not None:
        for kind in ("json", "stream"):
            ratio = ll[f"{kind}_c8"]["cpu_ms_per_req"] / m[f"{kind}_c8"]["cpu_ms_per_req"]
            checks.append(
                (
                    f"req/s per core vs LiteLLM ({kind}, c=8)",
                    ratio,
                    "x",
                    ratio >= TARGETS["rps_per_core_x"],
                    ">= 10",
                )
            )
    else:
        print(f"LiteLLM: not measured ({results.get('litellm_error', 'skipped')})")
    for name, value, unit, ok, target in checks:
        print(f"{'PASS' if ok else 'MISS'}  {name}: {value:.3f} {unit} (target {target})")
    print(json.dumps(results, default=lambda x: round(x, 4)))


if __name__ == "__main__":
    main()
