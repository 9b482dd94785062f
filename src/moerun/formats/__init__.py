"""The file formats moerun reads and writes, as pydantic models, and their JSON Schemas.

Each model is the one the reader validates with (plan config, --prices, gateway config) or is
checked against the writer's output and the reader's field list by the tests (trace lines,
bench results), so a schema cannot drift from the code. `moerun schema NAME`
(formats/command.py) prints one.

Imports: catalog, serve.gateway.schema, core.load.trace, bench.results.
"""
