"""The gateway's YAML config: the issue's shape, catalog fill-in, errors by field path."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
import yaml

from moerun.cli import main
from moerun.core.market.policy import allows
from moerun.errors import GatewayConfigError
from moerun.serve.gateway.config import parse_config

_EU_SHA = hashlib.sha256(b"sk-eu").hexdigest()
ISSUE_EXAMPLE = """
backends:
  - name: h200-a                 # unique
    kind: self-hosted            # or: managed
    base_url: http://127.0.0.1:8001/v1
    model: zai-org/GLM-5.1-FP8   # the model id this backend expects
    jurisdiction: US             # ISO country or EU
    region: us-east
    certifications: [soc2-type2]
    zero_retention: true
    input_usd_per_mtok: 0.0
    cached_input_usd_per_mtok: 0.0
    output_usd_per_mtok: 0.0
  - name: nebius
    kind: managed
    provider: nebius             # a catalog provider id fills in the facts not given here
    api_key_env: NEBIUS_API_KEY
    model: zai-org/GLM-5
models:                          # public model name -> candidate backends
  glm-5.1: [h200-a, nebius]
keys:
  - name: eu-app
    key_sha256: "{sha}"
    policy: {jurisdictions: [EU], certifications: [], zero_retention: true}
    budget_usd: 500
    requests_per_minute: 600
database_url: sqlite:///moerun-usage.db   # or postgresql+psycopg://...
redis_url: null                            # redis://127.0.0.1:6379/0 to share limits
""".replace("{sha}", _EU_SHA)

ENV = {"NEBIUS_API_KEY": "sk-nebius-secret"}


def test_the_issue_example_loads_and_fills_facts_from_the_catalog() -> None:
    cfg = parse_config(ISSUE_EXAMPLE, ENV)
    nebius = cfg.backends["nebius"]
    assert nebius.base_url.startswith("https://") and nebius.facts.jurisdictions == ("NL", "FI")
    assert nebius.facts.retention == "stored"  # from the catalog: not zero retention
    assert nebius.prices.input_usd_per_mtok == 1.0 and nebius.prices.output_usd_per_mtok == 3.2
    assert not nebius.health_check and cfg.backends["h200-a"].health_check
    assert "sk-nebius-secret" not in repr(cfg)
    key = cfg.keys[0] if cfg.keys else None
    assert key is not None and key.budget_usd == 500
    # EU + zero retention: the US replica and the storing EU provider both fail the policy.
    assert not allows(key.policy, cfg.backends["h200-a"].facts)
    assert not allows(key.policy, nebius.facts)


def _bad(change: dict[str, Any]) -> str:
    data = yaml.safe_load(ISSUE_EXAMPLE)
    for path, value in change.items():
        node: Any = data
        parts = path.split("/")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node[part]
        last = parts[-1]
        node[int(last) if last.isdigit() else last] = value
    with pytest.raises(GatewayConfigError) as exc:
        parse_config(yaml.safe_dump(data), ENV, filename="gw.yaml")
    return str(exc.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"backends/0/kind": "cloud"}, "gw.yaml: backends[0].kind"),
        ({"backends/0/jurisdiction": "Europe"}, "backends[0]: jurisdiction 'EUROPE'"),
        ({"backends/0/certifications": ["soc3"]}, "unknown certification 'soc3'"),
        ({"backends/1/name": "h200-a"}, "backends[1].name: duplicate backend"),
        ({"backends/1/provider": "acme"}, "backends[1].provider: 'acme' is not in the provider"),
        ({"backends/1/model": "GLM-5.1"}, "no token prices for managed backend 'nebius'"),
        ({"backends/1/api_key_env": "MISSING_KEY"}, "environment variable MISSING_KEY is not set"),
        ({"models/glm-5.1": ["h200-a", "h200-b"]}, "models.glm-5.1: no backend named 'h200-b'"),
        ({"keys/0/key_sha256": "abc"}, "keys[0].key_sha256"),
        ({"keys/0/policy": {"certifications": ["soc3"]}}, "keys[0].policy: policy: unknown"),
        ({"keys/0/budget_usd": -1}, "keys[0].budget_usd"),
        ({"bakends": []}, "bakends: extra inputs are not permitted"),
    ],
)
def test_errors_name_the_field(change: dict[str, Any], expected: str) -> None:
    assert expected in _bad(change)


def test_gateway_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    good = tmp_path / "gw.yaml"
    good.write_text(ISSUE_EXAMPLE.replace("api_key_env: NEBIUS_API_KEY", ""))
    assert main(["gateway", "--config", str(good), "--check"]) == 0
    assert "ok (2 backends, 1 models)" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text("backends: []\nmodels: {}\n")
    assert main(["gateway", "--config", str(bad), "--check"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("moerun: error: ") and "backends" in err and err.count("\n") == 1
    assert main(["gateway", "--config", str(tmp_path / "none.yaml")]) == 2
    nokeys = tmp_path / "nokeys.yaml"
    nokeys.write_text(
        "backends: [{name: a, kind: self-hosted, base_url: 'http://127.0.0.1:1/v1'}]\n"
        "models: {m: [a]}\n"
    )
    assert main(["gateway", "--config", str(nokeys), "--check"]) == 0
    assert "no `keys`" in capsys.readouterr().err
