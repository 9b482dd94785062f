"""`moerun emulate`: an OpenAI-compatible server whose timing is the simulated engine's."""

from moerun.serve.emulator.app import EmulatorApp, build_emulator
from moerun.serve.emulator.clock import Clock, ScaledClock, VirtualTimeLoop, run_virtual
from moerun.serve.emulator.faults import Faults

__all__ = [
    "Clock",
    "EmulatorApp",
    "Faults",
    "ScaledClock",
    "VirtualTimeLoop",
    "build_emulator",
    "run_virtual",
]
