"""Shared pytest set-up: quiet, cached, headless."""

from __future__ import annotations

import os
from pathlib import Path

# Compile caches: set by the package itself (inference.caches), as for any user.
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

INSTRUMENT_FILES = Path(__file__).parent / "data" / "instrument-files"
REPO = Path(__file__).resolve().parent.parent
