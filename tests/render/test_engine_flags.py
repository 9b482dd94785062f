"""Every flag moerun emits exists in the target release's real parser and is not deprecated.

The fixtures are extracted from the published wheels (scripts/extract_engine_flags.py); the
layouts are all those `candidate_layouts` produces for 8/16/32 H200 and B200 GPUs.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from moerun.catalog.flags import default_version, flag_versions, load_flags
from moerun.core.deploy.engine_flags import FlagSet, flag_names
from moerun.core.deploy.launch import EngineGroup
from moerun.errors import CatalogError, LayoutError
from moerun.render.engine_args import check_commands
from moerun.render.router_args import discovery_argv, router_group, urls_argv
from tests.render.factories import ROLES, all_cases, group_for

CASES = all_cases()


def assert_accepted(group: EngineGroup) -> None:
    """Every flag of every command of `group` is in its release and not deprecated."""
    flags = load_flags(group.engine, group.engine_version)
    roles = [group.head] + ([group.worker] if group.worker else [])
    for role in roles:
        for step in role.steps:
            if step.package is None:
                assert step.argv[:2] == ("ray", "start")
                continue
            assert step.package == group.engine
            for name in flag_names(step.argv):
                info = flags.get(name)
                assert info is not None, f"{flags.label} has no {name}: {step.argv}"
                assert not info.deprecated, f"{flags.label} deprecates {name}"


def test_layout_set_is_the_planners() -> None:
    # 56 layouts per GPU type; every one is valid for SGLang, vLLM drops none either (its EP
    # is always TP x DP, which is what candidate_layouts offers).
    assert len({(c.gpu, c.num_gpus, c.parallel) for c in CASES}) == 112
    assert {c.version for c in CASES} >= {"0.33.0", "0.5.23", "0.5.21"}


@pytest.mark.parametrize("mtp", [0, 3])
@pytest.mark.parametrize("role", ROLES)
def test_every_layout_emits_only_accepted_flags(role: str, mtp: int) -> None:
    for case in CASES:
        group = group_for(case, role, mtp)
        assert_accepted(group)
        assert group.num_nodes * group.gpus_per_node == case.num_gpus


def test_routers_emit_only_accepted_flags() -> None:
    from moerun.catalog.deploy import load_deploy_facts

    facts = load_deploy_facts()
    for engine in ("vllm", "sglang"):
        rfacts = facts.routers[engine]
        flags = load_flags(rfacts.package)
        router = router_group("r", rfacts, flags, default_version(engine), 8998)
        for argv in (
            urls_argv(router, ["http://p0:1", "http://p1:1"], ["http://d0:1"]),
            discovery_argv(router, {"a": "b"}, {"c": "d"}, "ns", 8000),
        ):
            for name in flag_names(argv):
                info = flags.get(name)
                assert info is not None and not info.deprecated, (flags.label, name)


def test_sglang_dp_attention_follows_the_release() -> None:
    dp_cases = [c for c in CASES if c.engine == "sglang" and c.parallel.dp > 1]
    for case in dp_cases[:10]:
        argv = group_for(case).head.main.argv
        if case.version == "0.5.21":
            assert "--enable-dp-attention" in argv and "--attn-dp-size" not in argv
            assert argv[argv.index("--dp-size") + 1] == str(case.parallel.dp)
        else:
            assert "--attn-dp-size" in argv and "--enable-dp-attention" not in argv
            assert "--dp-size" not in argv  # it counts model replicas since 0.5.22
        # --tp-size spans the attention DP groups: tp x dp GPUs, never tp x dp x dp.
        assert argv[argv.index("--tp-size") + 1] == str(case.parallel.tp * case.parallel.dp)
    assert load_flags("sglang", "0.5.23").get("--enable-dp-attention").deprecated  # type: ignore[union-attr]
    assert load_flags("sglang", "0.5.21").get("--attn-dp-size") is None


def test_flags_that_never_existed_are_refused() -> None:
    for version in flag_versions("sglang"):
        assert load_flags("sglang", version).get("--enable-moe-ep") is None
    flags = load_flags("sglang")
    assert flags.problems(["--enable-moe-ep"]) == [f"{flags.label} has no flag --enable-moe-ep"]
    assert "deprecated; use --attn-dp-size" in flags.problems(["--enable-dp-attention"])[0]
    assert flags.problems(["--kv-cache-dtype", "fp9"])
    assert flags.problems(["--tp-size"]) == [f"{flags.label}: --tp-size needs a value"]
    assert flags.problems(["--tp-size=8", "--nnodes", "@RANK@"]) == []


def test_check_commands_names_the_bad_flag() -> None:
    group = group_for(CASES[0])
    real = load_flags(group.engine, group.engine_version)
    # The same release without --enable-prompt-tokens-details / --enable-cache-report.
    dropped = {"--enable-prompt-tokens-details", "--enable-cache-report"}
    by_option = {k: v for k, v in real.by_option.items() if v.name not in dropped}
    fake = FlagSet(real.package, "0.0.1", real.source, real.extracted_on, by_option)
    launcher = group.head.main.argv[:3] if group.engine == "sglang" else group.head.main.argv[:2]
    with pytest.raises(LayoutError, match=r"would not start on .* 0\.0\.1: .*has no flag --enable"):
        check_commands(group.head, fake, launcher, group.name)


def test_parser_values_are_real() -> None:
    # GLM-5's parsers and the KV dtypes moerun writes are values the releases accept.
    for version in flag_versions("vllm"):
        flags = load_flags("vllm", version)
        assert flags.problems(["--tool-call-parser", "glm47", "--reasoning-parser", "glm45"]) == []
        assert flags.problems(["--kv-cache-dtype", "fp8", "--kv-cache-dtype", "bfloat16"]) == []
    for version in flag_versions("sglang"):
        flags = load_flags("sglang", version)
        assert flags.problems(["--tool-call-parser", "glm47", "--reasoning-parser", "glm45"]) == []
        assert flags.problems(["--kv-cache-dtype", "fp8_e4m3", "--moe-a2a-backend", "deepep"]) == []


def test_unknown_release_is_refused() -> None:
    assert default_version("vllm") == "0.33.0" and default_version("sglang") == "0.5.23"
    with pytest.raises(CatalogError, match=r"no flag data for vllm 0\.1\.0.*0\.32\.0, 0\.33\.0"):
        load_flags("vllm", "0.1.0")


def _extractor() -> Any:
    path = Path(__file__).resolve().parents[2] / "scripts" / "extract_engine_flags.py"
    spec = importlib.util.spec_from_file_location("extract_engine_flags", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_extractor_reads_deprecations() -> None:
    def action(options: list[str], help: str | None, **kw: Any) -> dict[str, Any]:
        base = {"options": options, "action": "_StoreAction", "nargs": None, "help": help}
        return {**base, "choices": None, "deprecated": False, "new_flag": None, **kw}

    flags = _extractor().normalize(
        [
            action(["-h", "--help"], "show help", nargs=0),
            action(["--tp-size", "--tensor-parallel-size"], "The tensor parallelism size."),
            action(["--old"], "Deprecated. Use --new=auto instead.", nargs=0),
            action(["--x", "--no-x"], "--x is deprecated and has no effect.", nargs=0),
            action(["--grpc"], "(Deprecated, use --smg-grpc) legacy", nargs=0),
            action(["--smg-grpc"], "Replaces the deprecated --grpc.", nargs=0),
            action(["--dp-attn"], None, action="DeprecatedStoreTrueAction", new_flag="--a N"),
            action(["--pick"], "x", choices=["b", "a"]),
        ],
        {"--tool": ["z", "y"]},
    )
    assert "--help" not in flags
    assert flags["--tp-size"]["aliases"] == ["--tensor-parallel-size"]
    assert flags["--old"] == {
        "aliases": [], "takes_value": False, "deprecated": True,
        "replacement": "--new=auto", "choices": None,
    }  # fmt: skip
    assert flags["--x"]["deprecated"] and flags["--grpc"]["replacement"] == "--smg-grpc"
    assert not flags["--smg-grpc"]["deprecated"]  # mentions a deprecation, is not one
    assert flags["--dp-attn"]["replacement"] == "--a N"
    assert flags["--pick"]["choices"] == ["a", "b"]


def test_fixtures_say_where_they_come_from() -> None:
    folder = Path(__file__).resolve().parents[2] / "src/moerun/catalog/data/engine_flags"
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        assert path.name == f"{data['package']}-{data['version']}.json"
        assert (
            data["source_url"] == f"https://pypi.org/project/{data['package']}/{data['version']}/"
        )
        assert re.fullmatch(r"[0-9a-f]{64}", data["wheel_sha256"])
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["extracted_on"])
        assert data["command"].startswith("python scripts/extract_engine_flags.py ")
        assert len(data["flags"]) > 50
