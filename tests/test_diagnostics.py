"""The diagnostics module: thresholds, at-bound detection, verdicts (fast, no sampling)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from inference import diagnostics as dg


def _posterior(**arrays) -> xr.Dataset:
    return xr.Dataset({k: (("chain", "draw"), np.asarray(v)) for k, v in arrays.items()})


def test_at_bound_finds_a_posterior_piled_against_the_support_and_names_it():
    rng = np.random.default_rng(0)
    piled = 0.2 + np.abs(rng.normal(0, 0.02, (2, 1000)))  # half-normal against 0.2
    inside = rng.normal(0.7, 0.03, (2, 1000))  # 17 sd from either bound
    near = np.clip(rng.normal(0.99, 0.01, (2, 1000)), 0.2, 1.0)  # median 1 sd below 1
    post = _posterior(a=piled, b=inside, c=near)
    supports = {"a": (0.2, 1.0), "b": (0.2, 1.0), "c": (0.2, 1.0), "missing": (0.2, 1.0)}
    assert dg.at_bound(post, supports) == ["a at lower bound 0.2", "c at upper bound 1"]


def test_bfmi_is_the_smallest_chain_value_and_flags_poor_energy_mixing():
    rng = np.random.default_rng(1)
    white = rng.normal(size=(2, 500))
    walk = np.cumsum(rng.normal(size=(2, 500)), axis=1)  # energy that barely moves
    stats = xr.Dataset({"energy": (("chain", "draw"), walk)})
    # E-BFMI = Σ (E_n − E_{n−1})² / Σ (E_n − Ē)² per chain (Betancourt 2016)
    by_hand = np.sum(np.diff(walk, axis=1) ** 2, axis=1) / np.sum(
        (walk - walk.mean(axis=1, keepdims=True)) ** 2, axis=1
    )
    assert dg.bfmi(stats) == pytest.approx(by_hand.min(), rel=1e-6)
    assert dg.bfmi(stats) < dg.BFMI_MIN
    assert dg.bfmi(xr.Dataset({"energy": (("chain", "draw"), white)})) > 1.0
    assert math.isnan(dg.bfmi(xr.Dataset()))


def test_convergence_reports_the_worst_variable():
    rng = np.random.default_rng(2)
    good = rng.normal(size=(4, 400))
    stuck = good + np.arange(4)[:, None]  # chains at different places
    d = dg.convergence(_posterior(good=good, stuck=stuck))
    assert d["worst_rhat_var"] == "stuck" and d["max_rhat"] > 1.5
    assert d["min_ess_bulk"] < 50


@pytest.mark.parametrize(
    ("diagnostics", "kwargs", "verdict", "phrase"),
    [
        ({"max_rhat": 1.005, "min_ess_bulk": 800, "min_ess_tail": 700, "bfmi": 0.9}, {}, "ok", ""),
        ({"max_rhat": 1.02, "min_ess_bulk": 800, "min_ess_tail": 700}, {}, "warning", "r̂ 1.020"),
        ({"max_rhat": 1.0, "min_ess_bulk": 399, "min_ess_tail": 700}, {}, "warning", "ESS bulk"),
        ({"max_rhat": 1.0, "min_ess_bulk": 900, "min_ess_tail": 300}, {}, "warning", "ESS tail"),
        ({"max_rhat": 1.0, "divergences": 1}, {}, "warning", "1 divergent transition"),
        ({"max_rhat": 1.0, "bfmi": 0.2}, {}, "warning", "E-BFMI 0.20"),
        ({"max_rhat": 1.2}, {}, "excluded", "different solutions"),
        ({}, {"at_bound": ["CPE3_1 at lower bound 0.2"]}, "warning", "CPE3_1 at lower"),
        ({}, {"kk_passed": False}, "warning", "Kramers"),
        ({}, {"lsq_flags": ["poor_fit"]}, "warning", "least-squares fit poor"),
        ({}, {"failed": "file.mpt: no data"}, "excluded", "no data"),
        ({"max_rhat": math.nan, "min_ess_bulk": math.nan}, {}, "ok", ""),  # least squares
    ],
)
def test_record_verdict_follows_the_thresholds(diagnostics, kwargs, verdict, phrase):
    got, reasons = dg.record_verdict(diagnostics, **kwargs)
    assert got == verdict
    assert (phrase in "; ".join(reasons)) if phrase else reasons == []


def test_no_record_is_ok_when_it_breaks_a_threshold():
    rng = np.random.default_rng(3)
    for _ in range(500):
        d = {
            "max_rhat": rng.uniform(0.99, 1.05),
            "min_ess_bulk": rng.uniform(100, 2000),
            "min_ess_tail": rng.uniform(100, 2000),
            "divergences": int(rng.integers(0, 3)),
            "bfmi": rng.uniform(0.1, 1.5),
        }
        verdict, _ = dg.record_verdict(d)
        breaks = (
            d["max_rhat"] > dg.RHAT_MAX
            or min(d["min_ess_bulk"], d["min_ess_tail"]) < dg.ESS_MIN
            or d["divergences"] > 0
            or d["bfmi"] < dg.BFMI_MIN
        )
        assert (verdict == "ok") == (not breaks)


def test_study_verdict_needs_every_layer_and_most_records_ok():
    layers_ok = {"ionic": ("ok", []), "electronic": ("ok", [])}
    assert dg.study_verdict(["ok"] * 20, layers_ok) == ("ok", [])
    verdict, reasons = dg.study_verdict(["ok"] * 19 + ["warning"], layers_ok)
    assert verdict == "ok" and reasons == ["1 of 20 records with warnings"]
    verdict, reasons = dg.study_verdict(["ok"] * 18 + ["warning", "excluded"], layers_ok)
    assert verdict == "warning" and "1 of 20 records excluded" in reasons
    diverged = {"ionic": ("warning", ["12 divergent transitions"]), "electronic": ("ok", [])}
    verdict, reasons = dg.study_verdict(["ok"] * 20, diverged)
    assert verdict == "warning" and reasons == ["ionic: 12 divergent transitions"]
    assert dg.study_verdict(["ok"], {})[0] == "warning"


def test_verdict_table_has_the_summary_columns():
    records = pd.DataFrame(
        [
            {
                "id": "a_30C",
                "recipe": "a",
                "cell": "a-1",
                "temperature_K": 303.15,
                "max_rhat": 1.0,
                "min_ess_bulk": 900.0,
                "min_ess_tail": 800.0,
                "divergences": 0,
                "bfmi": 1.0,
                "at_bound": [],
                "verdict": "ok",
                "reasons": [],
            }
        ]
    )
    table = dg.verdict_table(records)
    assert list(table.columns) == dg.RECORD_COLUMNS
    assert table.loc[0, "temperature_C"] == pytest.approx(30.0)


def test_prior_dominated_rule():
    assert dg.prior_dominated(0.6, 1.0) and not dg.prior_dominated(0.4, 1.0)
    assert not dg.prior_dominated(math.nan, 1.0)
