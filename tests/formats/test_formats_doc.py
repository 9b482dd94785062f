"""docs/formats.md: every example validates against `moerun schema NAME` and is read by
moerun's own reader; the schemas match the readers' field lists."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult, read_results
from moerun.catalog.price_overrides import read_overrides
from moerun.cli import main
from moerun.commands.plan_args import read_config
from moerun.core.load.trace import TRACE_FIELDS, parse_trace
from moerun.formats.schemas import FORMATS, json_schema
from moerun.serve.gateway.config import parse_config

DOC = Path(__file__).parents[2] / "docs" / "formats.md"
BLOCK = re.compile(r"```(yaml|json|jsonl) ([a-z-]+)\n(.*?)```", re.S)


def _examples() -> dict[str, str]:
    return {name: body for _, name, body in BLOCK.findall(DOC.read_text())}


def test_every_format_has_a_documented_example() -> None:
    assert set(_examples()) == set(FORMATS)
    assert "docs/formats.md" in (DOC.parents[1] / "README.md").read_text()


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_example_validates_against_its_schema(name: str) -> None:
    body = _examples()[name]
    schema = json_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    docs = (
        [json.loads(line) for line in body.splitlines()]
        if name == "trace"
        else [yaml.safe_load(body)]
    )
    for doc in docs:
        jsonschema.validate(doc, schema)


def test_examples_are_read_by_moeruns_readers(tmp_path: Path) -> None:
    ex = _examples()
    (tmp_path / "plan.yaml").write_text(ex["plan-config"])
    assert read_config(str(tmp_path / "plan.yaml"))["model"] == "glm-5.1"
    (tmp_path / "prices.yaml").write_text(ex["prices"])
    assert read_overrides(tmp_path / "prices.yaml").gpu[0].usd_per_gpu_hour == 4.10
    cfg = parse_config(ex["gateway-config"], {"DEEPINFRA_API_KEY": "x"}, "gateway.yaml")
    assert set(cfg.backends) == {"h200-a", "deepinfra"}
    workload = parse_trace(ex["trace"].splitlines())
    assert workload.num_requests == 3 and workload.sessions[0].turns[1].new_input_tokens == 600
    (tmp_path / "r.json").write_text(ex["bench-results"])
    assert read_results(tmp_path / "r.json").runs[0].records[0].output_tokens == 2


def test_schemas_match_the_readers() -> None:
    assert set(json_schema("trace")["properties"]) == set(TRACE_FIELDS)
    bad_line = {"input_tokens": 10, "output_tokens": 0}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad_line, json_schema("trace"))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"search": {"gpu": ["h200_sxm"]}}, json_schema("plan-config"))


def test_bench_writer_output_matches_its_schema() -> None:
    record = RequestRecord(0, 0, 0, 0.0, 0.3, (0.1, 0.2), 16, 2, 0, 16, 2)
    run = RunResult("c1", {"isl": 16}, (record,), {"num_completed": 1}, 0.3)
    results = BenchResults("http://127.0.0.1:9", "chat", "m", "words", "s", None, None, (run,))
    jsonschema.validate(results.to_json(), json_schema("bench-results"))


def test_schema_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "gateway-config"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["$schema"].endswith("2020-12/schema") and "backends" in schema["properties"]
    assert main(["schema", "nope"]) == 2
