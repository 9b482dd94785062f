"""Catalog data (model configs, GPUs, cloud prices, API providers) and their loaders."""
