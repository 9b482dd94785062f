"""Workloads: sessions of turns, how they arrive, and the prompts' shared-prefix structure.

Everything is a session. A plain request is a session of one turn. An agentic session is a
system prompt plus a chain of turns: turn k's prompt is the system prompt, every earlier
turn's new input and output, then turn k's new input (the tool output or user message), so
the prefix grows turn by turn; turn k+1 starts `think_s` after turn k finished.

A prompt is described by its segments, `(key, num_tokens)`: two prompts share a prefix
exactly as far as their leading segments are equal. Simulator, emulator and load generator
all read the same segments (the load generator turns each key into deterministic text).

Arrivals: `poisson` (sessions start at a rate), `closed` (a fixed number of sessions in
flight; the next starts when one ends, as `vllm bench serve --max-concurrency` does) or
`burst` (all sessions at t=0, `--request-rate inf` without a concurrency cap), or `trace`
(each session's own `start_s`, from a replayed trace).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field

ARRIVALS = ("poisson", "closed", "burst", "trace")
LENGTH_KINDS = ("fixed", "uniform", "lognormal")

Segment = tuple[str, int]


@dataclass(frozen=True, slots=True)
class LengthDist:
    """A token-length distribution: fixed, uniform in [low, high], or lognormal by mean/sigma."""

    kind: str = "fixed"
    mean: int = 1
    low: int | None = None
    high: int | None = None
    sigma: float = 0.5
    minimum: int = 1
    maximum: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in LENGTH_KINDS:
            raise ValueError(f"length kind must be one of {LENGTH_KINDS}, not {self.kind!r}")
        if self.mean < 0 or self.minimum < 0:
            raise ValueError("lengths must not be negative")
        if self.kind == "uniform" and (
            self.low is None or self.high is None or self.low > self.high
        ):
            raise ValueError("a uniform length needs low <= high")

    @classmethod
    def fixed(cls, n: int) -> LengthDist:
        """Always `n` tokens."""
        return cls(kind="fixed", mean=n, minimum=0)

    def sample(self, rng: random.Random) -> int:
        """One length."""
        if self.kind == "fixed":
            value = self.mean
        elif self.kind == "uniform":
            assert self.low is not None and self.high is not None
            value = rng.randint(self.low, self.high)
        else:
            # lognormal with the given arithmetic mean: mu = ln(mean) - sigma^2 / 2
            mu = math.log(max(self.mean, 1)) - self.sigma**2 / 2
            value = round(rng.lognormvariate(mu, self.sigma))
        value = max(value, self.minimum)
        if self.maximum is not None:
            value = min(value, self.maximum)
        return value


@dataclass(frozen=True, slots=True)
class Turn:
    """One request of a session: its new input, its output, and the pause before it."""

    new_input_tokens: int
    output_tokens: int
    think_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Session:
    """A system prompt shared by key, then turns whose prompts grow by each turn's exchange."""

    session_id: int
    turns: tuple[Turn, ...]
    system_key: str | None = None
    system_tokens: int = 0
    start_s: float | None = None  # None: started by the closed loop
    # shared blocks that open the first turn's input after the system prompt, by key (a
    # replayed trace's prefix-hash blocks); a turn's `new_input_tokens` follow them
    blocks: tuple[Segment, ...] = ()

    def prompt_segments(self, turn: int) -> list[Segment]:
        """The prompt of turn `turn` as segments (system prompt, shared blocks, then history,
        then new input)."""
        segs: list[Segment] = []
        if self.system_key is not None and self.system_tokens:
            segs.append((self.system_key, self.system_tokens))
        segs.extend(self.blocks)
        for k in range(turn + 1):
            t = self.turns[k]
            if t.new_input_tokens:
                segs.append((f"s{self.session_id}.t{k}.in", t.new_input_tokens))
            if k < turn and t.output_tokens:
                segs.append((f"s{self.session_id}.t{k}.out", t.output_tokens))
        return segs

    def input_tokens(self, turn: int) -> int:
        """Prompt length of turn `turn`."""
        return sum(n for _, n in self.prompt_segments(turn))

    @property
    def num_output_tokens(self) -> int:
        """Output tokens over all turns."""
        return sum(t.output_tokens for t in self.turns)


@dataclass(frozen=True, slots=True)
class Arrival:
    """How sessions arrive: a Poisson rate, a closed loop of `concurrency`, or a burst."""

    kind: str = "closed"
    rate_per_s: float | None = None
    concurrency: int | None = None
    # closed loop only: the clients start spread over one session's length (the steady state
    # of a long run whose clients drifted apart) instead of all at once, as benchmark clients
    # such as `vllm bench serve --max-concurrency` and GuideLLM's concurrent mode start them
    staggered: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ARRIVALS:
            raise ValueError(f"arrival must be one of {ARRIVALS}, not {self.kind!r}")
        if self.kind == "poisson" and not (self.rate_per_s and self.rate_per_s > 0):
            raise ValueError("a Poisson arrival needs a positive rate")
        if self.kind == "closed" and not (self.concurrency and self.concurrency > 0):
            raise ValueError("a closed loop needs a positive concurrency")
        if self.staggered and self.kind != "closed":
            raise ValueError("only a closed loop's clients can start staggered")


@dataclass(frozen=True, slots=True)
class AgenticShape:
    """The shape of agentic (tool-calling) sessions."""

    num_turns: LengthDist = field(default_factory=lambda: LengthDist("uniform", 12, 6, 20))
    system_tokens: int = 8_000
    num_system_prompts: int = 1
    first_input: LengthDist = field(default_factory=lambda: LengthDist("lognormal", 1_500))
    tool_output: LengthDist = field(default_factory=lambda: LengthDist("lognormal", 2_000))
    output: LengthDist = field(default_factory=lambda: LengthDist("lognormal", 400))
    think_s: float = 2.0


@dataclass(frozen=True, slots=True)
class Workload:
    """A list of sessions and how they arrive; build it with one of the classmethods."""

    name: str
    sessions: tuple[Session, ...]
    arrival: Arrival

    @property
    def num_requests(self) -> int:
        """Requests over all sessions."""
        return sum(len(s.turns) for s in self.sessions)

    def requests(self) -> Iterator[tuple[Session, int]]:
        """Every (session, turn) in session order."""
        for s in self.sessions:
            for k in range(len(s.turns)):
                yield s, k

    @classmethod
    def single_turn(
        cls,
        *,
        input_len: LengthDist,
        output_len: LengthDist,
        num_requests: int,
        arrival: Arrival,
        rng: random.Random,
        shared_prefix_tokens: int = 0,
        num_prefixes: int = 1,
        name: str = "fixed",
    ) -> Workload:
        """Independent requests; optionally each starts with one of `num_prefixes` shared
        system prompts of `shared_prefix_tokens` (the input length counts the prefix)."""
        if num_requests <= 0:
            raise ValueError("the number of requests must be positive")
        sessions = []
        starts = _start_times(arrival, num_requests, rng)
        for i in range(num_requests):
            total_in = input_len.sample(rng)
            out = max(1, output_len.sample(rng))
            prefix = min(shared_prefix_tokens, total_in)
            key = f"sys{rng.randrange(num_prefixes)}" if prefix else None
            sessions.append(
                Session(
                    session_id=i,
                    turns=(Turn(total_in - prefix, out),),
                    system_key=key,
                    system_tokens=prefix,
                    start_s=starts[i],
                )
            )
        return cls(name, tuple(sessions), arrival)

    @classmethod
    def agentic(
        cls, *, shape: AgenticShape, num_sessions: int, arrival: Arrival, rng: random.Random
    ) -> Workload:
        """Agentic sessions: a shared system prompt, then turns of tool output and output."""
        if num_sessions <= 0:
            raise ValueError("the number of sessions must be positive")
        starts = _start_times(arrival, num_sessions, rng)
        sessions = []
        for i in range(num_sessions):
            n = max(1, shape.num_turns.sample(rng))
            turns = []
            for k in range(n):
                new_in = (shape.first_input if k == 0 else shape.tool_output).sample(rng)
                turns.append(Turn(new_in, max(1, shape.output.sample(rng)), shape.think_s))
            key = f"agent-sys{rng.randrange(shape.num_system_prompts)}"
            sessions.append(Session(i, tuple(turns), key, shape.system_tokens, starts[i]))
        return cls("agentic", tuple(sessions), arrival)


def _start_times(arrival: Arrival, n: int, rng: random.Random) -> list[float | None]:
    if arrival.kind == "closed":
        return [None] * n
    if arrival.kind in ("burst", "trace"):
        return [0.0] * n
    assert arrival.rate_per_s is not None
    t, out = 0.0, []
    for _ in range(n):
        t += rng.expovariate(arrival.rate_per_s)
        out.append(t)
    return list[float | None](out)
