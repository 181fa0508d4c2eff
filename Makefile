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

.PHONY: demo test bench lint format serve dataset clean

$(STAMP): pyproject.toml
	@mkdir -p $(TMPDIR)
	@if [ ! -x $(PY) ]; then \
		interp=$$(PYTHON="$(PYTHON)" scripts/find-python.sh) || exit 1; \
		echo "creating $(VENV) with $$interp"; \
		"$$interp" -m venv $(VENV); \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e . --group dev
	@touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/sigmalab analyze datasets/emley2023 --out $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pip install --quiet -e . --group bench
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

serve: $(STAMP)
	$(VENV)/bin/sigmalab serve --host 127.0.0.1 --port 8000 --data-dir var/service

dataset: $(STAMP)
	$(VENV)/bin/sigmalab lab simulate --preset emley2023 --out datasets/emley2023

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache
