"""moerun's OpenAI-compatible gateway: self-hosted replicas and managed APIs, under policy."""

from __future__ import annotations

from moerun.serve.gateway.app import GatewayApp
from moerun.serve.gateway.config import GatewayConfig, load_config, parse_config

__all__ = ["GatewayApp", "GatewayConfig", "load_config", "parse_config"]
