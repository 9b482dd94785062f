"""The fleet twin (issue 15, item 7): agentic sessions through `moerun gateway` over N
`moerun emulate` replicas, measured by `moerun bench`'s load generator on virtual time, against
`moerun simulate --replicas N --routing ...` on the same sessions. The issue's acceptance, on 4
replicas: hit rates within 5 points, TTFT and TPOT p50 within 10%, p99 within 20%. With prefix
affinity the gateway and the simulator apply one ranking rule (`moerun.core.traffic.routing`)
under sgl-router's balance thresholds from the catalog, so the fleet is the simulation to the
step: 1 point and 2% here. Round robin meets the issue's bounds: two turns due at the same
instant (think times are exact) can be sent by the client and ordered by the simulator
differently, and the replicas they land on differ from there on.

Under sgl-router's thresholds (64 / 1.5) 12 sessions never unbalance the fleet (at most 12
requests in flight, so max - min <= 12), so cache affinity alone decides: when every session
opens with one system prompt, every request goes to the replica that cached it first; without
a shared system prompt the sessions spread over the replicas by load and stay where their
history is cached. With thresholds of 4 / 1.5 on both sides (`simulate --balance-abs 4
--balance-rel 1.5`, the gateway's `routing.balance_abs` / `balance_rel`) the rule engages and
sends requests away from the replica holding the shared system prompt.

The 2-replica fleet is the one whose last prompt (289 KB, the fleet idle)
reached its replica 26-36 virtual seconds late until the virtual clock waited for bytes in
loopback TCP (`moerun.serve.emulator.loopback`): TTFT p99 956 ms measured against 728."""

from __future__ import annotations

from pathlib import Path

import pytest

from moerun.cli import build_parser
from moerun.commands.deployment_args import deployment_from_args
from moerun.commands.simulate import run_simulation
from moerun.commands.workload_args import workload_from_args
from moerun.core.deploy.default_layout import resolve_layout
from tests.fixtures.virtual_fleet import run_fleet

DEPLOYMENT = ["--model", "glm-5.1", "--gpu", "h200_sxm", "--num-gpus", "8"]
SESSIONS = ["--workload", "agentic", "--num-sessions", "12", "--request-rate", "0.5", "--seed", "3"]
SHARED, UNSHARED = "one system prompt", "no shared prompt"


# sgl-router's balance rule engaged: with thresholds of 4 requests and 1.5x, 12 sessions that
# share one system prompt unbalance the fleet, so requests leave the replica that cached it
TIGHT = (4.0, 1.5)


@pytest.mark.parametrize(
    ("num_replicas", "routing", "prompts", "balance", "hit_points", "p50", "p99"),
    [
        (2, "prefix-affinity", SHARED, None, 0.01, 0.02, 0.02),
        (4, "prefix-affinity", UNSHARED, None, 0.01, 0.02, 0.02),
        (4, "prefix-affinity", SHARED, TIGHT, 0.01, 0.02, 0.02),
        (4, "round-robin", SHARED, None, 0.05, 0.10, 0.20),
    ],
)
def test_the_gateway_fleet_is_what_simulate_predicts(
    num_replicas: int,
    routing: str,
    prompts: str,
    balance: tuple[float, float] | None,
    hit_points: float,
    p50: float,
    p99: float,
    tmp_path: Path,
) -> None:
    shape = ["--system-tokens", "0"] if prompts == UNSHARED else []
    thresholds = [] if balance is None else [
        "--balance-abs", str(balance[0]), "--balance-rel", str(balance[1])]  # fmt: skip
    args = build_parser().parse_args(
        ["simulate", *DEPLOYMENT, *SESSIONS, *shape, "--replicas", str(num_replicas),
         "--routing", routing, *thresholds]
    )  # fmt: skip
    predicted = run_simulation(args, resolve_layout(*deployment_from_args(args)).deployment)
    workload, _ = workload_from_args(args)
    measured = run_fleet(DEPLOYMENT, num_replicas, routing, workload, tmp_path, balance)
    assert measured["num_completed"] == predicted["num_completed"] == workload.num_requests
    hit = measured["prefix_cache_hit_rate"]
    assert hit == pytest.approx(predicted["prefix_cache_hit_rate"], abs=hit_points)
    for key in ("ttft_ms", "tpot_ms"):
        assert measured[key]["p50"] == pytest.approx(predicted[key]["p50"], rel=p50), key
        assert measured[key]["p99"] == pytest.approx(predicted[key]["p99"], rel=p99), key
    served = [n for _, n in measured["replicas"]]
    if routing == "prefix-affinity" and prompts == SHARED and balance is None:
        # the first request went to the first replica (all empty and idle), and every later
        # prompt's longest cached prefix (the system prompt, at least) is there
        assert served == [workload.num_requests] + [0] * (num_replicas - 1)
    else:  # round robin, sessions spread by load, or the balance rule: every replica served
        assert all(n > 0 for n in served)
