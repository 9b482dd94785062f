"""What is sent: workloads (sessions, arrivals, length distributions), JSONL traces,
synthetic text and the serving metrics defined once for simulator, emulator and bench.

Imports: nothing else in core.
"""
