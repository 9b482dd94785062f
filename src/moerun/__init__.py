"""moerun: where and how to run GLM-5 and other MoE models, with numbers."""

from __future__ import annotations

__version__ = "0.1.0"
