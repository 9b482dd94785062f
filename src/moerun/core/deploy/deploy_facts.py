"""Facts about engines, routers, images and start-up that deployment files are written from.

Values only (they come from catalog/data/deploy.yaml); nothing here reads a file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EngineFacts:
    """How one engine is launched: image, command, ports and value spellings."""

    engine: str
    package: str
    # GPU vendor -> image ("{version}" is the engine release); None: no official image known.
    image_templates: Mapping[str, str | None]
    image_note: str
    launcher: tuple[str, ...]
    port: int
    health_path: str
    kv_cache_dtype: Mapping[str, str]  # moerun kv_dtype -> the engine's --kv-cache-dtype
    ports: Mapping[str, int]  # coordination ports (dp_rpc_port, dist_init_port, ...)
    disagg_transfer_backend: str | None

    def image(self, version: str, vendor: str = "nvidia") -> str | None:
        """The official image of release `version` for `vendor` GPUs (None: none known)."""
        template = self.image_templates.get(vendor)
        return None if template is None else template.format(version=version)


@dataclass(frozen=True, slots=True)
class RouterFacts:
    """The prefill/decode router that goes with an engine."""

    engine: str
    package: str
    image_template: str  # "{version}": router release, "{engine_version}": engine release
    image_note: str
    launcher: tuple[str, ...]
    pd_flag: str
    policy: str
    port: int

    def image(self, version: str, engine_version: str) -> str:
        """The router image for these releases."""
        return self.image_template.format(version=version, engine_version=engine_version)


@dataclass(frozen=True, slots=True)
class ParserNames:
    """Tool-call and reasoning parser names one engine uses for one model."""

    tool_call: str
    reasoning: str


@dataclass(frozen=True, slots=True)
class StartupFacts:
    """moerun's assumption for the longest start-up: download the checkpoint, then load."""

    download_bytes_per_s: float
    fixed_s: int
    probe_period_s: int

    def limit_s(self, checkpoint_bytes: int) -> int:
        """Seconds a replica may take to become healthy before it is declared failed."""
        return int(-(-checkpoint_bytes // self.download_bytes_per_s)) + self.fixed_s

    def failure_threshold(self, checkpoint_bytes: int) -> int:
        """Startup-probe failures allowed: threshold x period covers `limit_s`."""
        return -(-self.limit_s(checkpoint_bytes) // self.probe_period_s)


@dataclass(frozen=True, slots=True)
class GatewayFacts:
    """moerun's own gateway as a container."""

    image_template: str
    port: int
    health_path: str
    config_path: str
    replicas: int  # pods at start; the HorizontalPodAutoscaler's floor
    max_replicas: int
    target_cpu_percent: int
    cpu_request: str  # Kubernetes quantities
    memory_request: str
    memory_limit: str
    endpoint_picker_port: int  # the InferencePool's endpoint picker (EPP) Service port


@dataclass(frozen=True, slots=True)
class DeployFacts:
    """Everything deploy.yaml holds."""

    engines: Mapping[str, EngineFacts]
    routers: Mapping[str, RouterFacts]
    # GPU vendor -> the Kubernetes extended resource of its device plugin.
    k8s_gpu_resources: Mapping[str, str]
    parsers: tuple[tuple[frozenset[str], Mapping[str, ParserNames]], ...]
    startup: StartupFacts
    gateway: GatewayFacts
    cache_mount_path: str
    shm_size_gb: int

    def parsers_for(self, model_id: str, engine: str) -> ParserNames | None:
        """The parsers for a catalog model on an engine (None: moerun knows none)."""
        for models, by_engine in self.parsers:
            if model_id in models and engine in by_engine:
                return by_engine[engine]
        return None
