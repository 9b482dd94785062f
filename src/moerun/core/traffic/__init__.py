"""Routing live traffic: backend ordering with prefix affinity and load guard, circuit
breakers, observed latency and per-request metering.

Imports: nothing else in core.
"""
