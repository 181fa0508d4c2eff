"""The package owns its caches and stays light to import (subprocesses: a clean environment)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("pymc", "pytensor", "jax", "ray", "sklearn")


def _python(code: str, **env) -> str:
    """Run ``code`` in a fresh interpreter (without our cache variables) and return stdout."""
    base = {
        k: v for k, v in os.environ.items() if not k.startswith(("PYTENSOR", "JAX", "SIGMALAB"))
    }
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_the_client_and_the_error_types_import_without_the_models():
    code = (
        "import sys, service.client, service.errors, inference, inference.errors, optimizer, "
        "optimizer.errors\n"
        f"print([m for m in {HEAVY!r} if m in sys.modules])"
    )
    assert _python(code) == "[]"


#: What the packages exported before their imports became lazy (a promise kept).
PUBLIC = {
    "inference": "Circuit KKResult LsqResult CircuitError DCFit FileFormatError FitCancelled "
    "InputError ManifestError ModelError SigmalabError SpectrumFit Study StudyResult "
    "analyze_study capacity_retention composite_resistance_name conductivity_draws detect_format "
    "detect_plateaus fit_dc fit_lsq fit_spectra fit_spectrum kk_check make_dc load_study "
    "make_spectrum parse_circuit read_dc read_records read_spectra read_spectrum "
    "simulate_spectrum from_complex to_complex trim CircuitComparison compare_circuits",
    "optimizer": "Campaign CampaignError CampaignFileError ObservationError Proposals Space "
    "SpaceError observations_from_study plot_progress",
}


@pytest.mark.parametrize("package", sorted(PUBLIC))
def test_lazy_packages_still_export_every_public_name(package):
    import importlib

    module = importlib.import_module(package)
    assert set(module.__all__) == set(PUBLIC[package].split())
    for name in module.__all__:
        value = getattr(module, name)
        assert getattr(value, "__name__", name) == name
    assert set(module.__all__) <= set(dir(module))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        module.nope  # noqa: B018


SHOW = (
    "import os, json, inference\n"
    "print(json.dumps([os.environ.get(k) for k in ('PYTENSOR_FLAGS', 'JAX_COMPILATION_CACHE_DIR',"
    " 'JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS')]))"
)


def _settings(**env) -> list:
    return json.loads(_python(SHOW, **env))


def test_caches_go_under_the_user_cache_dir_and_keep_user_settings(tmp_path):
    cache = tmp_path / "sigmalab"
    flags, jax_dir, min_time = _settings(XDG_CACHE_HOME=str(tmp_path))
    assert flags == f"base_compiledir={cache / 'pytensor'}"
    assert jax_dir == str(cache / "jax") and min_time == "0"
    assert (cache / "pytensor").is_dir() and (cache / "jax").is_dir()

    flags, _, _ = _settings(XDG_CACHE_HOME=str(tmp_path), PYTENSOR_FLAGS="floatX=float64")
    assert flags == f"floatX=float64,base_compiledir={cache / 'pytensor'}"
    mine = {"PYTENSOR_FLAGS": "compiledir=/x", "JAX_COMPILATION_CACHE_DIR": "/y"}
    assert _settings(**mine)[:2] == ["compiledir=/x", "/y"]
    assert _settings(SIGMALAB_CACHE_DIR="off") == [None, None, None]
