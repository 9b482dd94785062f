"""What the user asked `moerun deploy` for, before layouts are chosen and commands written."""

from __future__ import annotations

from dataclasses import dataclass

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.launch import ManagedBackend


@dataclass(frozen=True, slots=True)
class Part:
    """One self-hosted engine group: its role, deployment and how many instances."""

    role: str  # serve | prefill | decode
    deployment: Deployment
    explicit_layout: bool
    instances: int


@dataclass(frozen=True, slots=True)
class DeployRequest:
    """The self-hosted parts and managed backends of one deployment."""

    parts: tuple[Part, ...]
    managed: tuple[ManagedBackend, ...]


@dataclass(frozen=True, slots=True)
class DeployOptions:
    """Command-line choices that shape the files but not the deployment."""

    target: str
    name: str | None = None
    namespace: str = "default"
    engine_version: str | None = None
    hf_repo: str | None = None
    served_model_name: str | None = None
    image: str | None = None
    jurisdiction: str | None = None
    region: str | None = None
