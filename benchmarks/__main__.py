"""Run the benchmark suites and write JSON + a markdown table per suite to benchmarks/results/.

Usage: python -m benchmarks [SUITE ...] [--quick]
"""

from __future__ import annotations

import importlib
import json
import platform
import sys
import time
from pathlib import Path

from benchmarks import SUITES

RESULTS = Path(__file__).parent / "results"


def to_markdown(result: dict) -> str:
    cols = result["columns"]
    lines = [f"# {result['title']}", "", "| " + " | ".join(cols) + " |"]
    lines.append("|" + "---|" * len(cols))
    for row in result["rows"]:
        cells = []
        for c in cols:
            v = row.get(c, "")
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", result.get("notes", ""), ""]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")] or SUITES
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started = time.perf_counter()
        result = module.run(quick=quick)
        result["wall_s"] = time.perf_counter() - started
        result["machine"] = {"python": platform.python_version(), "cpu": platform.processor()}
        stem = result.get("name", name)  # a suite run on a subset names its own files
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float))
        (RESULTS / f"{stem}.md").write_text(to_markdown(result))
        print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
