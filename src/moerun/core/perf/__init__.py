"""How long an engine step takes: the step-time model and its speed-of-light bracket.

Imports: core.model, core.deploy.
"""
