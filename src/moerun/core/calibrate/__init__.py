"""Fitting the step-time model to measured serving runs, and its cross-validated error.

Imports: core.perf, core.sim (and what they import).
"""
