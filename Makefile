# sigmalab — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Scratch files live outside the repo and outside /tmp clutter. The compile caches (PyTensor,
# JAX, traced samplers) are set up by the package itself, in $(CACHE) (inference/caches.py).
CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/sigmalab
export TMPDIR := $(CACHE)/tmp
export MPLBACKEND := Agg
export RAY_USAGE_STATS_ENABLED := 0
DEMO_OUT := out/emley2023

.PHONY: demo test faults bench lint format serve dataset screenshots clean

$(STAMP): pyproject.toml
	@mkdir -p $(TMPDIR)
	@if [ ! -x $(PY) ]; then \
		interp=$$(PYTHON="$(PYTHON)" scripts/find-python.sh) || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[service]" --group dev
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sigmalab analyze datasets/emley2023 --out $(DEMO_OUT)

# The service tests run on SQLite and on a real PostgreSQL server, which they start
# themselves from the server binaries this installs (apt, as root) when they are missing.
test: $(STAMP)
	@scripts/ensure-postgres.sh
	$(PY) -m pytest

# The service's fault tests (Ray's raylet and GCS killed, database connections dropped, a
# full disk), on both databases: minutes, so apart from `make test`; CI runs both.
faults: $(STAMP)
	@scripts/ensure-postgres.sh
	$(PY) -m pytest -m faults

bench: $(STAMP)
	$(PY) -m pip install --quiet -e ".[service]" --group bench
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

serve: $(STAMP)
	$(VENV)/bin/sigmalab serve --host 127.0.0.1 --port 8000 --data-dir var/service

# Report screenshots in docs/ (headless Chromium at desktop and phone widths); a one-off for the
# docs, not part of `make test`. Installs Debian's chromium when it is missing (needs root).
screenshots: demo
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -q chromium; } \
		|| { echo "screenshots need chromium: apt-get install chromium"; exit 1; }
	$(PY) scripts/screenshot_report.py $(DEMO_OUT)/report.html docs

dataset: $(STAMP)
	$(VENV)/bin/sigmalab lab simulate --preset emley2023 --out datasets/emley2023

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
