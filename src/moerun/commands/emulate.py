"""`moerun emulate`: an OpenAI-compatible server with the simulated deployment's timing."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from moerun.catalog.perf.calibration import calibration_for
from moerun.commands.arg_types import nonneg_float as _seconds
from moerun.commands.arg_types import positive_float as _positive
from moerun.commands.arg_types import probability as _rate
from moerun.commands.deployment_args import add_deployment_args, deployment_from_args
from moerun.commands.simulate import add_sim_args, sim_options_from_args
from moerun.core.deploy.default_layout import resolve_layout
from moerun.errors import UsageError

if TYPE_CHECKING:
    from moerun.core.deploy.default_layout import ResolvedLayout
    from moerun.serve.emulator.app import EmulatorApp
    from moerun.serve.emulator.clock import Clock


def emulator_from_args(
    args: argparse.Namespace, clock: Clock | None = None
) -> tuple[EmulatorApp, ResolvedLayout]:
    """The emulator app the flags describe (on `clock`, else real time at --time-scale), and
    its resolved layout; UsageError for flags it cannot serve."""
    # the server's modules load only when a server starts (every CLI start registers this)
    from moerun.serve.emulator.app import build_emulator
    from moerun.serve.emulator.faults import Faults

    if args.replicas != 1 or args.disaggregate:
        raise UsageError(
            "the emulator runs one replica: start one `moerun emulate` per replica and put "
            "`moerun gateway` in front"
        )
    # an emulator answers whatever clients send: MTP priced as on real text unless told otherwise
    resolved = resolve_layout(*deployment_from_args(args, prompts="text"))
    dep = resolved.deployment
    calibration = calibration_for(
        dep.gpu.id, dep.engine.name, dep.model.arch.model_type, dep.layout_kind()
    )
    options = sim_options_from_args(args, calibration)
    try:
        faults = Faults(
            error_rate=args.error_rate,
            latency_spike_rate=args.latency_spike_rate,
            latency_spike_s=args.latency_spike_s,
            stall_rate=args.stall_rate,
            stall_s=args.stall_s,
            drop_rate=args.drop_rate,
            seed=args.fault_seed,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    app = build_emulator(
        dep,
        served_model=args.served_model_name or dep.model.name,
        options=options,
        clock=clock,
        time_scale=args.time_scale,
        faults=faults,
        default_output_tokens=args.default_output_tokens,
    )
    return app, resolved


def cmd_emulate(args: argparse.Namespace) -> int:
    """Build the emulated deployment and serve it."""
    from moerun.serve.emulator.server import bind_listener, serve

    if not 0 < args.port < 65536:
        raise UsageError(f"--port {args.port} is not a TCP port (1-65535)")
    app, resolved = emulator_from_args(args)
    dep = resolved.deployment
    served = args.served_model_name or dep.model.name
    try:
        sock = bind_listener(args.host, args.port)
    except OSError as exc:
        raise UsageError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}); "
            "choose another --port or stop what holds it"
        ) from None
    sys.stderr.write(
        f"moerun emulate: {served} on {dep.num_gpus}x {dep.gpu.id} ({dep.engine.name}, "
        f"layout {resolved.describe()}, {dep.weights}) at http://{args.host}:{args.port} "
        f"(time scale {args.time_scale:g}; synthetic text)\n"
    )
    serve(app, host=args.host, port=args.port, log_level=args.log_level, sock=sock)
    return 0


def register(sub: Any) -> None:
    """Add `moerun emulate`."""
    p = sub.add_parser(
        "emulate", help="serve an OpenAI-compatible API with the simulated deployment's timing"
    )
    add_deployment_args(p, model_positional=False)
    add_sim_args(p)
    g = p.add_argument_group("emulator")
    g.add_argument("--host", default="127.0.0.1")
    g.add_argument("--port", type=int, default=8000)
    g.add_argument("--served-model-name", help="model id to serve (default: the model's name)")
    g.add_argument(
        "--time-scale",
        type=_positive,
        default=1.0,
        help="emulated seconds per real second (moerun bench reads it from /v1/models and "
        "reports emulated times)",
    )
    g.add_argument(
        "--default-output-tokens",
        type=int,
        default=256,
        help="answer length without ignore_eos (the synthetic model's EOS)",
    )
    g.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    f = p.add_argument_group("fault injection")
    f.add_argument("--error-rate", type=_rate, default=0.0, help="answer HTTP 500")
    f.add_argument("--latency-spike-rate", type=_rate, default=0.0)
    f.add_argument("--latency-spike-s", type=_seconds, default=2.0, help="extra queueing")
    f.add_argument("--stall-rate", type=_rate, default=0.0, help="pause a stream halfway")
    f.add_argument("--stall-s", type=_seconds, default=10.0)
    f.add_argument("--drop-rate", type=_rate, default=0.0, help="close the connection halfway")
    f.add_argument("--fault-seed", type=int, default=0)
    p.set_defaults(func=cmd_emulate)
