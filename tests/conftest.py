"""Shared pytest set-up: quiet, cached, headless."""

from __future__ import annotations

import os
from pathlib import Path

# Compile caches outside the repo (the Makefile sets the same; this covers a bare `pytest`).
_cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sigmalab"
os.environ.setdefault("PYTENSOR_FLAGS", f"base_compiledir={_cache / 'pytensor'}")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_cache / "jax"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

INSTRUMENT_FILES = Path(__file__).parent / "data" / "instrument-files"
REPO = Path(__file__).resolve().parent.parent
