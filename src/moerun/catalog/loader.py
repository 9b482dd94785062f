"""Catalog loaders in one place: GPUs, GPU cloud prices, API providers and their sources.

Each loader reads package data (importlib.resources), validates it with pydantic, raises
CatalogError naming the file and field of a bad entry, and caches the result. The parse_*
functions take YAML text directly, so a test can feed a broken file.
"""

from __future__ import annotations

from moerun.catalog.gpus import get_gpu, load_gpus, parse_gpus
from moerun.catalog.prices import load_gpu_prices, parse_gpu_prices
from moerun.catalog.providers import load_providers, parse_providers
from moerun.catalog.sources import Source, cite, load_sources

__all__ = [
    "Source",
    "cite",
    "get_gpu",
    "load_gpu_prices",
    "load_gpus",
    "load_providers",
    "load_sources",
    "parse_gpu_prices",
    "parse_gpus",
    "parse_providers",
]
