"""Where and how a model runs: accelerators, parallel layouts, engines' memory behaviour,
MTP drafts and their acceptance (`Mtp`), deployments, the memory fit, the fit table, engine
flags and what a deployment launches.

Imports: core.model.
"""
