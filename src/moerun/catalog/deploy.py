"""catalog/data/deploy.yaml -> DeployFacts (images, launchers, ports, parsers, start-up)."""

from __future__ import annotations

import functools
from typing import Any

from moerun.catalog.files import load_yaml, read_package_file
from moerun.core.deploy.deploy_facts import (
    DeployFacts,
    EngineFacts,
    GatewayFacts,
    ParserNames,
    RouterFacts,
    StartupFacts,
)
from moerun.errors import CatalogError

DEPLOY_FILE = "deploy.yaml"
_PORT_KEYS = (
    "dp_rpc_port",
    "master_port",
    "ray_port",
    "dist_init_port",
    "disagg_bootstrap_port",
    "nixl_side_channel_port",
)


def parse_deploy(text: str, filename: str = DEPLOY_FILE) -> DeployFacts:
    """Build DeployFacts from deploy.yaml text; CatalogError names the bad field."""
    raw = load_yaml(text)
    try:
        return _facts(raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CatalogError(f"{filename}: bad or missing field {exc}") from exc


def _facts(raw: dict[str, Any]) -> DeployFacts:
    engines = {name: _engine(name, e) for name, e in raw["engines"].items()}
    routers = {
        name: RouterFacts(
            engine=name,
            package=str(r["package"]),
            image_template=str(r["image"]),
            image_note=str(r["image_note"]),
            launcher=tuple(str(t) for t in r["launcher"]),
            pd_flag=str(r["pd_flag"]),
            policy=str(r["policy"]),
            port=int(r["port"]),
        )
        for name, r in raw["routers"].items()
    }
    parsers = tuple(
        (
            frozenset(str(m) for m in entry["models"]),
            {
                engine: ParserNames(
                    str(entry[engine]["tool_call"]), str(entry[engine]["reasoning"])
                )
                for engine in engines
                if engine in entry
            },
        )
        for entry in raw["parsers"]
    )
    s, g = raw["startup"], raw["gateway"]
    return DeployFacts(
        engines=engines,
        routers=routers,
        k8s_gpu_resources={str(v): str(a["k8s_resource"]) for v, a in raw["accelerators"].items()},
        parsers=parsers,
        startup=StartupFacts(
            download_bytes_per_s=float(s["download_bytes_per_s"]),
            fixed_s=int(s["fixed_s"]),
            probe_period_s=int(s["probe_period_s"]),
        ),
        gateway=GatewayFacts(
            image_template=str(g["image"]),
            port=int(g["port"]),
            health_path=str(g["health_path"]),
            config_path=str(g["config_path"]),
            replicas=int(g["replicas"]),
            max_replicas=int(g["max_replicas"]),
            target_cpu_percent=int(g["target_cpu_percent"]),
            cpu_request=str(g["cpu_request"]),
            memory_request=str(g["memory_request"]),
            memory_limit=str(g["memory_limit"]),
            endpoint_picker_port=int(raw["inference_pool"]["endpoint_picker_port"]),
        ),
        cache_mount_path=str(raw["cache"]["mount_path"]),
        shm_size_gb=int(raw["cache"]["shm_size_gb"]),
    )


def _engine(name: str, e: dict[str, Any]) -> EngineFacts:
    backend = e.get("disagg_transfer_backend")
    return EngineFacts(
        engine=name,
        package=str(e["package"]),
        image_templates={str(v): None if t is None else str(t) for v, t in e["image"].items()},
        image_note=str(e["image_note"]),
        launcher=tuple(str(t) for t in e["launcher"]),
        port=int(e["port"]),
        health_path=str(e["health_path"]),
        kv_cache_dtype={str(k): str(v) for k, v in e["kv_cache_dtype"].items()},
        ports={k: int(e[k]) for k in _PORT_KEYS if k in e},
        disagg_transfer_backend=None if backend is None else str(backend),
    )


@functools.cache
def load_deploy_facts() -> DeployFacts:
    """The packaged deploy.yaml (cached)."""
    return parse_deploy(read_package_file(DEPLOY_FILE))
