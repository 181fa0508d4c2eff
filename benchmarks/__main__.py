"""Run the benchmark suites and write JSON + a markdown table per suite to benchmarks/results/.

Usage: python -m benchmarks [SUITE ...] [--quick]
"""

from __future__ import annotations

import importlib
import json
import os
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
    if "load_avg_1min" in result.get("machine", {}):
        m = result["machine"]
        lines += [f"Measured on {m['cores']} cores, 1-min load average {m['load_avg_1min'][0]} "
                  f"before and {m['load_avg_1min'][1]} after the run.", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    names = [a for a in argv if not a.startswith("--")] or SUITES
    RESULTS.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        started, load_before = time.perf_counter(), os.getloadavg()
        result = module.run(quick=quick)
        result["wall_s"] = time.perf_counter() - started
        result["machine"] = {
            "python": platform.python_version(),
            "cpu": platform.processor(),
            "cores": os.cpu_count(),
            # Other work on the machine skews every timing: 1-min load average before/after.
            "load_avg_1min": [round(load_before[0], 1), round(os.getloadavg()[0], 1)],
        }
        stem = result.get("name", name)  # a suite run on a subset names its own files
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2, default=float))
        (RESULTS / f"{stem}.md").write_text(to_markdown(result))
        print(to_markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
