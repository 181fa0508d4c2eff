"""sigmalab benchmark suites; `make bench` (python -m benchmarks) runs them all.

Each suite is a module here with ``run(quick: bool = False) -> dict`` returning::

    {"name": "eis_fit", "title": "…", "columns": ["…", …], "rows": [{column: value}, …],
     "notes": "how it was measured, baseline, machine"}

Timings are compared as ratios against a baseline measured in the same run (the machine is noisy).
"""

SUITES = [
    "eis_fit",
    "coverage",
    "compare_circuits",
    "study",
    "speed",
    "calibration",
    "misspecification",
    "optimizer",
    "service",
    "body_limits",
]
