"""Model configs by catalog id (`glm-5.1`) or by path to a config.json or a folder holding one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from moerun.core.model.model_spec import ModelSpec
from moerun.errors import ConfigError

DEFAULT_MODEL = "glm-5.1"


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A catalog model: its id, config file, Hugging Face repo, family and provenance."""

    id: str
    file: str
    hf_repo: str
    family: str
    status: str
    source: str
    as_of: str
    # Published Hugging Face repo per weight format, ("fp8", "zai-org/GLM-5.1-FP8"), ...
    checkpoints: tuple[tuple[str, str], ...] = ()

    def checkpoint(self, weights: str) -> str | None:
        """The Hugging Face repo that serves this model in `weights` format, if one is known."""
        return dict(self.checkpoints).get(weights)


@cache
def model_index() -> dict[str, ModelEntry]:
    """The catalog's model ids."""
    text = resources.files("moerun.catalog").joinpath("models/index.yaml").read_text("utf-8")
    raw = yaml.safe_load(text)["models"]
    return {
        mid: ModelEntry(
            id=mid,
            file=e["file"],
            hf_repo=e["hf_repo"],
            family=e["family"],
            status=e["status"],
            source=e["source"],
            as_of=str(e["as_of"]),
            checkpoints=tuple(
                sorted((str(k), str(v)) for k, v in e.get("checkpoints", {}).items())
            ),
        )
        for mid, e in raw.items()
    }


def load_config(model: str) -> tuple[dict[str, Any], str]:
    """The config dict and a display name for a catalog id, a config.json path or a folder."""
    index = model_index()
    key = model.lower()
    if key in index:
        entry = index[key]
        text = resources.files("moerun.catalog").joinpath(f"models/{entry.file}").read_text("utf-8")
        return _parse(text, f"catalog model {key}"), key
    path = Path(model)
    if path.is_dir():
        path = path / "config.json"
    if not path.exists():
        raise ConfigError(
            f"{model!r} is neither a catalog model ({', '.join(index)}) nor an existing "
            "config.json or folder holding one"
        )
    try:
        text = path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return _parse(text, str(path)), str(path)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "pass the model's config.json"
        ) from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{where} must hold a JSON object, the model's config.json")
    return data


def load_spec(model: str) -> ModelSpec:
    """ModelSpec for a catalog id or a path; errors name the input and what to do."""
    config, name = load_config(model)
    try:
        return ModelSpec.from_hf(config, name=name)
    except ConfigError as exc:
        raise type(exc)(f"{name}: {exc}") from exc
