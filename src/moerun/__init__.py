"""moerun: where and how to run GLM-5 and other MoE models, with numbers."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("moerun")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
