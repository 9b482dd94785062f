"""Load a `moerun bench --guidellm-report` file with GuideLLM's own pydantic report model.

Run: scripts/install_guidellm.sh
     $GUIDELLM_VENV/bin/python scripts/check_guidellm_export.py REPORT.json [GUIDELLM_FIXTURE.json]

Prints whether GuideLLM 0.8's `GenerativeBenchmarksReport` accepts the file, else the fields
it asks for, grouped by where they are; with a second file (a report GuideLLM wrote), the same
for it, so the two can be told apart (a trimmed fixture is rejected for the same fields). Not a
test: it needs GuideLLM, installed apart from moerun.
"""

from __future__ import annotations

import collections
import json
import sys

from guidellm.benchmark.schemas import GenerativeBenchmarksReport
from pydantic import ValidationError


def check(path: str) -> None:
    """Validate one file and print what GuideLLM's model says."""
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    try:
        GenerativeBenchmarksReport.model_validate(doc)
    except ValidationError as exc:
        kinds = collections.Counter()
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"][:4] if not isinstance(p, int))
            kinds[f"{err['type']}: {loc}"] += 1
        print(f"{path}: rejected, {exc.error_count()} errors")
        for what, n in sorted(kinds.items()):
            print(f"  {n:4d} x {what}")
        return
    print(f"{path}: accepted by GuideLLM's GenerativeBenchmarksReport")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        check(arg)
