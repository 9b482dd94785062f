"""One `moerun bench` invocation: probe the endpoint, run each sweep point, stop on Ctrl-C."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from moerun.bench.http import HttpTransport
from moerun.bench.prompts import PromptText
from moerun.bench.records import RequestRecord, summarize_records
from moerun.bench.results import RunResult
from moerun.bench.runner import BenchConfig, LoadGenerator
from moerun.bench.transport import Transport
from moerun.core.load.metrics import Slo
from moerun.core.load.prefix_reuse import implied_hit_rate
from moerun.core.load.workload import Workload
from moerun.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class SweepPoint:
    """One run of a sweep: its label, workload flags (for the record) and workload."""

    label: str
    flags: dict[str, object]
    workload: Workload
    slo: Slo | None


class Progress:
    """What the driver tells its caller as a run goes (the CLI draws a bar from it)."""

    def start(self, label: str, total: int) -> None:
        """A run of `total` requests begins."""

    def advance(self, record: RequestRecord) -> None:
        """One request ended."""

    def stop(self) -> None:
        """The run ended."""


def base_url(url: str) -> str:
    """The server root: `http://host:port/v1` and `http://host:port` name the same server."""
    url = url.rstrip("/")
    return url[:-3] if url.endswith("/v1") else url


@dataclass(frozen=True, slots=True)
class ServerCard:
    """What `GET /v1/models` says: the model id to send, and from `moerun emulate` its time
    scale (`moerun_time_scale`, else 1) and the MTP acceptance it drafts at
    (`moerun_mtp_acceptance`, else None)."""

    model: str
    time_scale: float = 1.0
    mtp_acceptance: float | None = None


def _positive(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and value > 0 else None


async def probe_model(transport: Transport, url: str, served_model: str | None) -> ServerCard:
    """The model id to send (`served_model`, else the first of `GET /v1/models`) and what an
    emulator's card says (`ServerCard`). UsageError when the server cannot be reached or does
    not answer as an OpenAI server."""
    res = await transport.send("GET", "/v1/models", None, timeout_s=30.0)
    if res.error and not res.status:
        raise UsageError(
            f"cannot reach {url}: {res.error} (is the server running? is the URL right?)"
        )
    try:
        data = json.loads(res.body) if res.status == 200 else None
        ids = [m["id"] for m in data["data"]] if isinstance(data, dict) else None
    except (ValueError, KeyError, TypeError):
        ids = None
    if ids is None:
        if served_model is not None and res.status in (404, 405):
            return ServerCard(served_model)  # some gateways do not list models
        raise UsageError(
            f"{url} does not look like an OpenAI-compatible server: GET /v1/models answered "
            f"HTTP {res.status or '-'} without a model list (give the server root, e.g. "
            "http://127.0.0.1:8000)"
        )
    assert isinstance(data, dict)
    card = data["data"][0] if ids else {}
    scale = _positive(card.get("moerun_time_scale")) or 1.0
    acceptance = card.get("moerun_mtp_acceptance")
    if not isinstance(acceptance, int | float) or not 0.0 <= acceptance < 1.0:
        acceptance = None
    if served_model is None and not ids:
        raise UsageError(f"{url} lists no models: name one with --served-model")
    return ServerCard(served_model or str(ids[0]), scale, acceptance)


async def run_points(
    transport: Transport,
    config: BenchConfig,
    prompts: PromptText,
    points: list[SweepPoint],
    *,
    num_gpus: int,
    now: Callable[[], float],
    progress: Progress | None = None,
    stop: asyncio.Event | None = None,
) -> list[RunResult]:
    """Run each sweep point in turn; after an interruption, the partial run is the last.

    Each point of a sweep gets its own prompt text (`prompts.for_level`), so a level never
    finds an earlier level's prompts in the server's prefix cache and starts as cold as the
    simulator does; within a level, shared segments (system prompts, trace blocks) are shared."""
    runs: list[RunResult] = []
    for i, point in enumerate(points):
        prog = progress or Progress()
        prog.start(point.label, point.workload.num_requests)
        level_prompts = prompts.for_level(i) if len(points) > 1 else prompts
        gen = LoadGenerator(transport, config, level_prompts, now=now, on_record=prog.advance)
        started_unix_s = time.time()  # the wall clock, for reports that want dates
        try:
            outcome = await gen.run(point.workload, stop)
        finally:
            prog.stop()
        summary = summarize_records(outcome.records, num_gpus=num_gpus, slo=point.slo)
        summary["workload_prefix_hit_rate"] = implied_hit_rate(point.workload)
        runs.append(
            RunResult(
                point.label,
                point.flags,
                outcome.records,
                summary,
                outcome.duration_s,
                outcome.interrupted,
                outcome.num_unfinished,
                prompt_salt=level_prompts.salt,
                started_unix_s=started_unix_s,
            )
        )
        if outcome.interrupted:
            break
    return runs


def run_bench(
    url: str,
    config_for: Callable[[str, float], BenchConfig],
    prompts: PromptText,
    points: list[SweepPoint],
    *,
    served_model: str | None,
    num_gpus: int,
    headers: dict[str, str],
    progress: Progress | None = None,
) -> tuple[ServerCard, list[RunResult]]:
    """Probe and run everything on a fresh event loop; Ctrl-C ends the current run early
    and keeps what it measured. Returns what the server's card said and the runs."""

    async def main() -> tuple[ServerCard, list[RunResult]]:
        try:
            transport = HttpTransport(base_url(url), headers=headers)
        except ValueError as exc:
            raise UsageError(f"bench URL: {exc}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread
            loop.add_signal_handler(signal.SIGINT, stop.set)
        try:
            card = await probe_model(transport, url, served_model)
            runs = await run_points(
                transport, config_for(card.model, card.time_scale), prompts, points,
                num_gpus=num_gpus, now=transport.now, progress=progress, stop=stop,
            )  # fmt: skip
            return card, runs
        finally:
            await transport.aclose()
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)

    return _run(main())


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop when it is installed (a faster loop: more streams per core)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is optional
        return asyncio.run(coro)
    return uvloop.run(coro)
