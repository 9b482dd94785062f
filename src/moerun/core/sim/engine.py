"""One engine replica, scheduled as vLLM v1 or SGLang schedule, priced by the step-time model.

vLLM v1 (`policy="mixed"`): every step serves the running decodes first, then continues
partial prefills, then admits waiting requests first-come first-served, all within one token
budget (`max_num_batched_tokens`) and `max_num_seqs`; a prompt longer than what is left of
the budget is chunked (or, with chunked prefill off, waits for a step it fits in whole).
SGLang (`policy="prefill_first"`): a step is either a prefill batch (the chunked request,
then new ones, up to the chunk size and, past the first, `--max-prefill-tokens`) or a decode
batch; prefill runs whenever a request can be admitted, pausing decodes. With mixed chunks
(`--enable-mixed-chunk`) a prefill batch also runs the running decodes, whose tokens come
out of its chunk and prefill budgets (SGLang's `mix_with_running`). A new request
is admitted only when its prompt plus its (capped) output fits in the KV cache left after
every running request's remaining output x `new_token_ratio` (SGLang's PrefillAdder); when
one does not, no prefill is tried again until a request leaves the batch (`batch_is_full`).
The ratio decays each decode step and is re-estimated after a retraction.

When the KV cache cannot hold the next decode step, vLLM preempts the most recently admitted
request and recomputes it first; SGLang retracts the request with the fewest output tokens
(then the longest prompt) to the back of the queue. Prefixes may still be cached.

Decoding sequences advance together, so the replica tracks them in aggregate: each decode
step emits `E = 1 + a + ... + a^k` tokens per sequence on average (k MTP drafts, acceptance a),
a sequence's finishing step is known when it starts decoding, and context sums are kept as
closed forms. A step costs O(1) plus the requests that start or end in it.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass

from moerun.core.deploy.engine import Admission
from moerun.core.model.flops import sum_capped
from moerun.core.perf.step_time import StepBatch, StepModel
from moerun.core.sim.kv_pool import KVPool, Node, Segment
from moerun.core.sim.remaining import ClippedRemaining

POLICIES = ("mixed", "prefill_first")
_EPS = 1e-9


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """Scheduler settings of one replica."""

    policy: str
    max_num_batched_tokens: int
    max_num_seqs: int
    kv_capacity_tokens: int
    page_tokens: int
    max_context: int
    chunked_prefill: bool = True
    prefix_caching: bool = True
    # SGLang's admission estimate (required by, and only used with, prefill_first)
    admission: Admission | None = None
    # SGLang only: --enable-mixed-chunk (a prefill batch also runs the running decodes) and
    # --max-prefill-tokens (prompt tokens per prefill batch beyond its first request)
    mixed_chunk: bool = False
    max_prefill_tokens: int | None = None

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}")
        if self.policy == "prefill_first" and self.admission is None:
            raise ValueError("the prefill_first (SGLang) policy needs its admission settings")
        if min(self.max_num_batched_tokens, self.max_num_seqs, self.kv_capacity_tokens) <= 0:
            raise ValueError("token budget, sequence cap and KV capacity must be positive")
        if (self.mixed_chunk or self.max_prefill_tokens is not None) and (
            self.policy != "prefill_first"
        ):
            raise ValueError("mixed chunks and a prefill-token cap are SGLang (prefill_first)")


@dataclass(frozen=True, slots=True)
class SimRequest:
    """One request submitted to a replica. `output_key` names the output's segment, so a
    later turn whose prompt continues this one finds it cached. `mode`: normal,
    prefill_only (disaggregated prefill: ends after its first token) or preloaded
    (disaggregated decode: its prompt's KV arrives computed, its first token already sent)."""

    request_id: int
    segments: tuple[Segment, ...]
    output_tokens: int
    arrival_s: float
    output_key: str | None = None
    mode: str = "normal"

    @property
    def input_tokens(self) -> int:
        """Prompt length."""
        return sum(n for _, n in self.segments)


@dataclass(frozen=True, slots=True)
class StepReport:
    """What one step did; its events happen at `start_s + duration_s`."""

    start_s: float
    duration_s: float
    batch: StepBatch
    tokens: tuple[tuple[int, int], ...]  # (request_id, output tokens emitted), if tracked
    first_token: tuple[int, ...]
    finished: tuple[tuple[int, int, int], ...]  # (request_id, cached_tokens, output_tokens)
    rejected: tuple[tuple[int, str], ...]
    preempted: tuple[int, ...]


class _Req:
    __slots__ = (
        "cached",
        "computed",
        "decode_start",
        "finish_step",
        "first_sent",
        "generated",
        "path",
        "private",
        "prompt",
        "req",
        "target",
    )

    def __init__(self, req: SimRequest) -> None:
        self.req = req
        self.prompt = req.input_tokens
        self.generated = 0  # output tokens produced before the current decode run
        self.target = self.prompt  # tokens the prefill must reach (prompt + recomputed output)
        self.computed = 0
        self.cached: int | None = None  # prefix-cache hit of the first admission
        self.path: list[Node] = []
        self.private = 0
        self.first_sent = False
        self.decode_start = 0
        self.finish_step = 0


class EngineReplica:
    """A replica you `submit` requests to and `step` forward; pure, with no clock of its own."""

    def __init__(
        self, model: StepModel, config: EngineConfig, *, track_tokens: bool = False
    ) -> None:
        self.model = model
        self.config = config
        self.track_tokens = track_tokens
        self.kv = KVPool(
            config.kv_capacity_tokens, config.page_tokens, prefix_caching=config.prefix_caching
        )
        mtp = model.dep.mtp
        self.max_step_tokens = mtp.max_tokens_per_step
        self.e = mtp.tokens_per_step
        self._step_var = mtp.tokens_per_step_variance
        indexer = model.dep.model.arch.indexer
        self.topk: int | None = indexer.topk if indexer is not None else None
        self.sglang = config.policy == "prefill_first"
        if self.sglang:
            # SGLang's decode batch is its own forward pass, not bounded by the chunk size
            self.max_seqs = max(1, config.max_num_seqs)
        else:
            self.max_seqs = max(
                1, min(config.max_num_seqs, config.max_num_batched_tokens // self.max_step_tokens)
            )
        self.admission = config.admission
        self.new_token_ratio = config.admission.init if config.admission else 1.0
        self._ratio_floor = config.admission.minimum if config.admission else 1.0
        self._ratio_decay = config.admission.decay if config.admission else 0.0
        self.batch_is_full = False
        self._remaining = (
            ClippedRemaining(self.e, config.admission.clip_max_new_tokens)
            if self.sglang and config.admission
            else None
        )
        self.waiting: list[_Req] = []
        self.prefilling: list[_Req] = []
        self.decoding: dict[int, _Req] = {}
        self.running: dict[int, None] = {}  # admission order: the last is preempted first
        self._finish_heap: list[tuple[int, int]] = []
        self._cross_heap: list[tuple[int, int]] = []
        self.decode_step = 0
        # closed forms over decoding sequences: context_i = base_i + E * decode_step
        self._ctx_base = 0.0
        self._below: dict[int, float] = {}
        self._below_base = 0.0
        self._growth_base = 0.0
        self._rejected: list[tuple[int, str]] = []
        self._awaiting_first: list[int] = []  # preloaded requests: first token on first decode
        self.num_preemptions = 0

    # ---- queue -------------------------------------------------------------------------
    def submit(self, req: SimRequest) -> None:
        """Queue a request (rejected at the next step if it can never run)."""
        total = req.input_tokens + req.output_tokens
        cfg = self.config
        if req.output_tokens < 1 or req.input_tokens < 1:
            self._rejected.append(
                (req.request_id, "a request needs at least one input and one output token")
            )
        elif total > cfg.max_context:
            self._rejected.append(
                (
                    req.request_id,
                    f"{total} tokens (prompt + output) exceed the max context of {cfg.max_context}",
                )
            )
        elif total > cfg.kv_capacity_tokens:
            self._rejected.append(
                (
                    req.request_id,
                    f"{total} tokens exceed the KV cache of {cfg.kv_capacity_tokens} tokens",
                )
            )
        else:
            self.waiting.append(_Req(req))

    @property
    def busy(self) -> bool:
        """Whether anything waits, runs, or has a rejection to report."""
        return bool(self.waiting or self.prefilling or self.decoding or self._rejected)

    @property
    def num_running(self) -> int:
        """Requests admitted (prefilling or decoding)."""
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        """Requests not yet admitted."""
        return len(self.waiting)

    def load(self) -> int:
        """Requests waiting or running (a router's load signal)."""
        return len(self.waiting) + len(self.running)

    def kv_usage(self) -> float:
        """Fraction of the KV cache held by running requests and cached prefixes."""
        self.kv.external_tokens = self._growth()
        return min(1.0, self.kv.used_tokens / self.kv.capacity_tokens)

    def abort(self, request_id: int) -> None:
        """Drop a request wherever it is (its client went away)."""
        for lst in (self.waiting, self.prefilling):
            for r in lst:
                if r.req.request_id == request_id:
                    lst.remove(r)
                    self._release(r)
                    return
        dec = self.decoding.get(request_id)
        if dec is not None:
            self._leave_decode(dec)
            self._release(dec)

    # ---- decode aggregates ---------------------------------------------------------------
    def _growth(self) -> float:
        return self.e * len(self.decoding) * self.decode_step - self._growth_base

    def _gen(self, remaining: int, steps: int) -> int:
        return min(remaining, math.floor(self.e * steps + _EPS))

    def _enter_decode(self, r: _Req) -> None:
        e, s, rid = self.e, self.decode_step, r.req.request_id
        remaining = r.req.output_tokens - r.generated
        r.decode_start = s
        r.finish_step = s + self._decode_steps(rid, remaining) - 1
        heapq.heappush(self._finish_heap, (r.finish_step, rid))
        self.decoding[rid] = r
        if self._remaining is not None:
            self._remaining.add(rid, remaining, s)
        ctx = r.prompt + r.generated
        base = ctx - e * s
        self._ctx_base += base
        self._growth_base += e * s
        if self.topk is not None and ctx < self.topk:
            self._below[rid] = base
            self._below_base += base
            heapq.heappush(self._cross_heap, (s + math.ceil((self.topk - ctx) / e), rid))

    def _decode_steps(self, rid: int, remaining: int) -> int:
        """Decode steps to emit `remaining` tokens: remaining / E, spread by the randomness of
        accepted drafts when MTP is on (per step the accepted run is random, so requests of
        one length do not finish together, as they do not in the engine). The spread is the
        normal approximation of the sum of per-step tokens, seeded by the request, so the
        same inputs give the same schedule."""
        nominal = (remaining - _EPS) / self.e
        if self._step_var <= 0.0 or remaining <= 1:
            return max(1, math.ceil(nominal))
        sd = math.sqrt(remaining * self._step_var / self.e**3)
        z = random.Random(rid * 1_000_003 + remaining).gauss(0.0, 1.0)
        fewest = math.ceil(remaining / self.max_step_tokens)
        return min(max(math.ceil(nominal + z * sd), fewest, 1), remaining)

    def _leave_decode(self, r: _Req, finished: bool = False) -> None:
        rid = r.req.request_id
        del self.decoding[rid]
        if self._remaining is not None:
            self._remaining.remove(rid)
        base = r.prompt + r.generated - self.e * r.decode_start
        self._ctx_base -= base
        self._growth_base -= self.e * r.decode_start
        below = self._below.pop(rid, None)
        if below is not None:
            self._below_base -= below
        if finished:
            r.generated = r.req.output_tokens
        else:
            r.generated += self._gen(
                r.req.output_tokens - r.generated, self.decode_step - r.decode_start
            )

    def _release(self, r: _Req) -> None:
        self.kv.release(r.path)
        self.kv.free(r.private)
        r.path, r.private = [], 0
        self.running.pop(r.req.request_id, None)

    # ---- one step --------------------------------------------------------------------
    def step(self, now_s: float) -> StepReport:
        """Schedule and run one engine step starting at `now_s`."""
        rejected = tuple(self._rejected)
        self._rejected.clear()
        if self.sglang:
            chunks, with_decode, preempted = self._schedule_sglang()
        else:
            chunks, with_decode, preempted = self._schedule_vllm()
        batch = self._batch(chunks, with_decode)
        duration = self.model.step_time_s(batch) if (chunks or with_decode) else 0.0
        first, finished, tokens = self._advance(chunks, with_decode)
        return StepReport(
            now_s,
            duration,
            batch,
            tuple(tokens),
            tuple(first),
            tuple(finished),
            rejected,
            tuple(preempted),
        )

    def _schedule_vllm(self) -> tuple[list[tuple[_Req, int]], bool, list[int]]:
        """Decodes first (preempting the newest until they fit), then prefill chunks."""
        preempted: list[int] = []
        budget = self.config.max_num_batched_tokens
        if self.decoding:
            preempted = self._make_room_for_decode()
            budget -= len(self.decoding) * self.max_step_tokens
        return self._schedule_prefill(budget), bool(self.decoding), preempted

    def _schedule_sglang(self) -> tuple[list[tuple[_Req, int]], bool, list[int]]:
        """A prefill batch when one can be admitted, else a decode batch (SGLang's
        get_next_batch_to_run / update_running_batch)."""
        adm = self.admission
        assert adm is not None
        if not self.running:
            # the scheduler was idle: the estimate starts over, the batch is empty
            self.new_token_ratio = adm.init
            self.batch_is_full = False
        chunks = self._schedule_prefill_sglang(adm)
        if chunks or not self.decoding:
            # a mixed batch advances the decodes too; the ratio decays and retraction is
            # checked only on decode batches (SGLang's update_running_batch)
            return chunks, bool(chunks and self.decoding and self.config.mixed_chunk), []
        preempted = self._retract_for_decode(adm)
        if not preempted:
            ratio = self.new_token_ratio - self._ratio_decay
            self.new_token_ratio = ratio if ratio > self._ratio_floor else self._ratio_floor
        return [], bool(self.decoding), preempted

    def _make_room_for_decode(self) -> list[int]:
        """Preempt the latest admitted requests until every decode's next tokens fit."""
        preempted = []
        while self.decoding:
            self.kv.external_tokens = self._growth()
            if self.kv.can_allocate(len(self.decoding) * self.max_step_tokens):
                break
            victim_id = next(reversed(self.running))
            victim = self.decoding.get(victim_id)
            if victim is None:
                victim = next(r for r in self.prefilling if r.req.request_id == victim_id)
                self.prefilling.remove(victim)
            else:
                self._leave_decode(victim)
            self._release(victim)
            victim.target = victim.prompt + victim.generated
            victim.computed = 0
            self.waiting.insert(0, victim)
            preempted.append(victim_id)
            self.num_preemptions += 1
        return preempted

    def _schedule_prefill(self, budget: int) -> list[tuple[_Req, int]]:
        """Prefill chunks for this step: partial prefills first, then admissions (FCFS)."""
        chunks: list[tuple[_Req, int]] = []
        self.kv.external_tokens = self._growth()
        for r in self.prefilling:
            if budget <= 0:
                break
            n = min(r.target - r.computed, budget)
            if not self.kv.can_allocate(n):
                break
            self.kv.allocate(n)
            r.private += n
            chunks.append((r, n))
            budget -= n
        while self.waiting and budget > 0 and len(self.running) < self.max_seqs:
            r = self.waiting[0]
            if r.req.mode == "preloaded":
                if not self._admit_preloaded(r):
                    break
                continue
            hit = min(self.kv.peek(r.req.segments), r.target - 1)  # the last token is computed
            need = r.target - hit
            if not self.config.chunked_prefill and need > budget:
                break  # waits for a step with room for the whole prompt
            n = min(need, budget)
            if not self.kv.can_allocate(n):
                break
            self._start_prefill(r, hit, n)
            chunks.append((r, n))
            budget -= n
        return chunks

    def _admit_preloaded(self, r: _Req) -> bool:
        """A disaggregated decode request: its KV arrives computed; hold it, compute nothing."""
        need = r.target
        if not self.kv.can_allocate(need):
            return False
        self.kv.allocate(need)
        r.private, r.computed, r.cached = need, r.target, 0
        self.waiting.pop(0)
        self.running[r.req.request_id] = None
        if not r.first_sent:
            self._awaiting_first.append(r.req.request_id)
            r.first_sent = True
        self._enter_decode(r)
        return True

    def _start_prefill(self, r: _Req, hit: int, n: int) -> None:
        """Admit the head of the queue with a first chunk of `n` tokens past a `hit` prefix."""
        _, path = self.kv.match(r.req.segments)
        self.waiting.pop(0)
        self.kv.acquire(path, hit)
        if r.cached is None:
            r.cached = hit
        r.path, r.computed = path, hit
        self.kv.allocate(n)
        r.private += n
        self.running[r.req.request_id] = None
        self.prefilling.append(r)

    def _schedule_prefill_sglang(self, adm: Admission) -> list[tuple[_Req, int]]:
        """SGLang's PrefillAdder: the chunked request continues, then waiting requests are
        admitted first-come first-served while their prompt and capped output fit in the KV
        left after the running requests' expected output (remaining x new_token_ratio)."""
        if not self.prefilling and (self.batch_is_full or not self.waiting):
            return []
        if not self.prefilling and len(self.running) >= self.max_seqs:
            self.batch_is_full = True
            return []
        kv, page, clip = self.kv, self.config.page_tokens, adm.clip_max_new_tokens
        kv.external_tokens = self._growth()
        reserved = 0.0
        if self._remaining is not None and self.decoding:
            reserved = self._remaining.total(self.decode_step) * self.new_token_ratio
        # mixed chunks: the decodes that join the batch take one token each from every budget
        # (PrefillAdder's mixed_with_decode_tokens = the running batch's size)
        mixed = len(self.decoding) if self.config.mixed_chunk else 0
        rem_total = kv.available_tokens - reserved - mixed
        rem_chunk = self.config.max_num_batched_tokens - mixed
        cap = self.config.max_prefill_tokens
        rem_input = cap - mixed if cap is not None else None
        chunks: list[tuple[_Req, int]] = []
        for r in self.prefilling:
            n = min(r.target - r.computed, rem_chunk)
            if n <= 0 or not kv.can_allocate(n):
                break
            kv.allocate(n)
            r.private += n
            chunks.append((r, n))
            rem_chunk -= n
            rem_input = rem_input - n if rem_input is not None else None
            last = r.computed + n >= r.target
            rem_total -= -(-n // page) * page
            rem_total -= min(r.req.output_tokens - r.generated, clip) if last else 0
        while self.waiting and rem_chunk > 0:
            if len(self.running) >= self.max_seqs:
                self.batch_is_full = True
                break
            r = self.waiting[0]
            if r.req.mode == "preloaded":
                if not self._admit_preloaded(r):
                    break
                continue
            hit = 0 if r.req.mode == "preloaded" else min(kv.peek(r.req.segments), r.target - 1)
            need = r.target - hit
            max_new = min(r.req.output_tokens - r.generated, clip)
            alone = not self.running
            if need + max_new >= rem_total and not alone:
                self.batch_is_full = True  # NO_TOKEN: wait until a request leaves
                break
            if rem_input is not None and need >= rem_input and chunks:
                break  # past the prefill-token cap: the next batch takes it
            if need <= rem_chunk or not self.config.chunked_prefill:
                if need > rem_chunk and chunks:
                    break
                n, reserve = need, -(-need // page) * page + max_new
            else:
                n = rem_chunk // page * page
                if n <= 0:
                    break
                reserve = n
            if not kv.can_allocate(n):
                self.batch_is_full = True
                break
            self._start_prefill(r, hit, n)
            chunks.append((r, n))
            rem_total -= reserve
            rem_chunk -= n
            rem_input = rem_input - n if rem_input is not None else None
        return chunks

    def _retract_for_decode(self, adm: Admission) -> list[int]:
        """SGLang's retract_decode: when the next decode step does not fit, retract at least
        one request (fewest output tokens, then longest prompt) until it does; the survivors
        re-estimate the ratio as (decoded + retract steps x requests) / (max new + 1)."""
        need = len(self.decoding) * self.max_step_tokens
        kv = self.kv
        kv.external_tokens = self._growth()
        if kv.free_tokens >= need or kv.can_allocate(need):
            return []
        s = self.decode_step

        def generated(r: _Req) -> int:
            return r.generated + self._gen(r.req.output_tokens - r.generated, s - r.decode_start)

        order = sorted(self.decoding.values(), key=lambda r: (generated(r), -r.prompt))
        preempted: list[int] = []
        for victim in order:
            if len(self.decoding) <= 1:
                break
            self._leave_decode(victim)
            self._release(victim)
            victim.target = victim.prompt + victim.generated
            victim.computed = 0
            self.waiting.append(victim)  # the back of the queue
            preempted.append(victim.req.request_id)
            self.num_preemptions += 1
            self.kv.external_tokens = self._growth()
            if self.kv.can_allocate(len(self.decoding) * self.max_step_tokens):
                break
        survivors = list(self.decoding.values())
        decoded = sum(generated(r) for r in survivors)
        max_new = sum(r.req.output_tokens for r in survivors)
        n = len(survivors)
        self.new_token_ratio = min(1.0, (decoded + adm.retract_decode_steps * n) / (max_new + 1))
        self.batch_is_full = False
        return preempted

    def _batch(self, chunks: list[tuple[_Req, int]], with_decode: bool) -> StepBatch:
        topk = self.topk
        p_tokens = p_att = p_ctx = p_logits = 0
        for r, n in chunks:
            first, last = r.computed + 1, r.computed + n
            p_tokens += n
            p_att += sum_capped(first, last, topk)
            p_ctx += sum_capped(first, last, None)
            if last == r.target:
                p_logits += 1
        n_dec = len(self.decoding) if with_decode else 0
        d_ctx = d_att = 0.0
        if n_dec:
            s = self.decode_step
            d_ctx = self._ctx_base + self.e * n_dec * s
            if topk is None:
                d_att = d_ctx
            else:
                while self._cross_heap and self._cross_heap[0][0] <= s:
                    _, rid = heapq.heappop(self._cross_heap)
                    below = self._below.pop(rid, None)
                    if below is not None:
                        self._below_base -= below
                n_below = len(self._below)
                d_att = self._below_base + self.e * n_below * s + topk * (n_dec - n_below)
        return StepBatch(
            prefill_tokens=p_tokens,
            prefill_seqs=len(chunks),
            prefill_attended=p_att,
            prefill_context=p_ctx,
            prefill_logits=p_logits,
            decode_seqs=n_dec,
            decode_attended=d_att,
            decode_context=d_ctx,
        )

    def _advance(
        self, chunks: list[tuple[_Req, int]], with_decode: bool
    ) -> tuple[list[int], list[tuple[int, int, int]], list[tuple[int, int]]]:
        first: list[int] = []
        finished: list[tuple[int, int, int]] = []
        tokens: list[tuple[int, int]] = []
        if with_decode:
            s = self.decode_step
            if self.track_tokens:
                for rid, r in self.decoding.items():
                    rem = r.req.output_tokens - r.generated
                    upto = rem if r.finish_step == s else self._gen(rem, s + 1 - r.decode_start)
                    got = upto - self._gen(rem, s - r.decode_start)
                    if got:
                        tokens.append((rid, got))
            self.decode_step = s + 1
            first.extend(self._awaiting_first)
            self._awaiting_first.clear()
            heap = self._finish_heap
            while heap and heap[0][0] <= s:
                f, rid = heapq.heappop(heap)
                done = self.decoding.get(rid)
                if done is None or done.finish_step != f:
                    continue  # preempted or aborted since
                self._leave_decode(done, finished=True)
                finished.append(self._finish(done))
                self.batch_is_full = False
        for r, n in chunks:
            r.computed += n
            if r.computed < r.target:
                continue
            self.prefilling.remove(r)
            if self.config.prefix_caching:
                r.path, moved = self.kv.insert(r.req.segments, r.path)
                moved = min(moved, r.private)
                self.kv.free(moved)
                r.private -= moved
            if not r.first_sent:
                r.first_sent = True
                r.generated = 1
                first.append(r.req.request_id)
                if self.track_tokens:
                    tokens.append((r.req.request_id, 1))
            if r.generated >= r.req.output_tokens or r.req.mode == "prefill_only":
                finished.append(self._finish(r))
            else:
                self._enter_decode(r)
        return first, finished, tokens

    def _finish(self, r: _Req) -> tuple[int, int, int]:
        if r.req.output_key is not None and r.req.mode != "prefill_only":
            self.kv.add_leaf(r.path, r.req.output_key, r.req.output_tokens)
        self._release(r)
        return r.req.request_id, r.cached or 0, r.generated
