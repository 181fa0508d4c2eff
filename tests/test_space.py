"""Search-space specs: parsing, validation errors, encoding and constrained sampling."""

import itertools
import math

import numpy as np
import pytest

from optimizer.errors import ObservationError, SpaceError
from optimizer.space import Space

SPEC = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet", "slurry"]},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
    "anneal_h": {"type": "real", "low": 0.1, "high": 10, "log": True},
    "carbon": {"type": "fixed", "value": "VGCF"},
}
GOOD = {"binder_wt_pct": 0.5, "process": "dry", "press_MPa": 375, "anneal_h": 1.0}


def test_spec_round_trips_through_json_form():
    space = Space.from_spec(SPEC)
    assert space.to_spec() == SPEC
    full = {
        "parameters": {
            "a": {"type": "real", "low": 0, "high": 1},
            "b": {"type": "real", "low": 0, "high": 1},
        },
        "constraints": [{"coefficients": {"a": 1, "b": 1}, "op": "<=", "rhs": 1}],
    }
    assert Space.from_spec(full).to_spec() == full


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"x": {"type": "real", "low": 0}}, "x.high"),
        ({"x": {"type": "real", "low": 2, "high": 1}}, "x.high"),
        ({"x": {"type": "float", "low": 0, "high": 1}}, "x.type"),
        ({"x": {"type": "real", "low": 0, "high": 1, "log": True}}, "x.low"),
        ({"x": {"type": "real", "low": 0, "high": 1, "step": 0.1}}, "x"),
        ({"x": {"type": "integer", "low": 0.5, "high": 3}}, "x"),
        ({"c": {"type": "categorical", "choices": ["dry"]}}, "c.choices"),
        ({"c": {"type": "categorical", "choices": ["dry", "dry"]}}, "c.choices"),
        ({"x": {"type": "fixed"}}, "x.value"),
        ({"x": {"type": "real", "low": "0", "high": 1}}, "x.low"),
        ({"x": {"type": "fixed", "value": 1}}, "parameters"),
        (
            {
                "parameters": {"a": {"type": "real", "low": 0, "high": 1}},
                "constraints": [{"coefficients": {"zz": 1}, "op": "<=", "rhs": 1}],
            },
            "constraints[0].coefficients.zz",
        ),
        (
            {
                "parameters": {
                    "a": {"type": "real", "low": 0, "high": 1},
                    "c": {"type": "categorical", "choices": [1, 2]},
                },
                "constraints": [{"coefficients": {"c": 1}, "op": "<=", "rhs": 1}],
            },
            "constraints[0].coefficients.c",
        ),
        (
            {
                "parameters": {"a": {"type": "real", "low": 0, "high": 1}},
                "constraints": [{"coefficients": {"a": 1}, "op": "<", "rhs": 1}],
            },
            "constraints[0].op",
        ),
        (
            {
                "parameters": {"a": {"type": "real", "low": 0, "high": 1}},
                "constraints": [{"coefficients": {"a": 1}, "op": ">=", "rhs": 2}],
            },
            "constraints",
        ),
    ],
)
def test_invalid_specs_name_the_field(spec, field):
    with pytest.raises(SpaceError) as err:
        Space.from_spec(spec)
    assert err.value.field == field
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "params.colour"),
        ({"binder_wt_pct": 3.5}, "params.binder_wt_pct"),
        ({"binder_wt_pct": float("nan")}, "params.binder_wt_pct"),
        ({"process": "Dry"}, "params.process"),
        ({"press_MPa": 200.5}, "params.press_MPa"),
        ({"press_MPa": "300"}, "params.press_MPa"),
        ({"carbon": "CNT"}, "params.carbon"),
    ],
)
def test_bad_parameter_sets_name_the_field(change, field):
    space = Space.from_spec(SPEC)
    with pytest.raises(ObservationError) as err:
        space.validate({**GOOD, **change})
    assert err.value.where == field


def test_validate_fills_fixed_values_and_types():
    out = Space.from_spec(SPEC).validate({**GOOD, "press_MPa": 300.0})
    assert out["carbon"] == "VGCF"
    assert out["press_MPa"] == 300 and isinstance(out["press_MPa"], int)
    with pytest.raises(ObservationError, match="missing"):
        Space.from_spec(SPEC).validate({"process": "dry"})


def test_categorical_choices_are_one_hot_not_ordinal():
    space = Space.from_spec(SPEC)
    X = space.encode([{**GOOD, "process": c} for c in ("dry", "wet", "slurry")])
    onehot = X[:, space.n_cont :]
    assert np.array_equal(onehot, np.eye(3))
    # every pair of different choices is equally far apart: none lies "between" two others
    dists = {round(float(np.linalg.norm(a - b)), 12) for a, b in itertools.combinations(X, 2)}
    assert dists == {round(math.sqrt(2), 12)}


def test_log_scaled_real_maps_geometric_midpoint_to_half():
    space = Space.from_spec(SPEC)
    z, _ = space.to_parts({**GOOD, "anneal_h": 1.0})  # sqrt(0.1 * 10) = 1
    assert z[[p.name for p in space.continuous].index("anneal_h")] == pytest.approx(0.5)


def test_parts_round_trip_and_integer_rounding():
    space = Space.from_spec(SPEC)
    z, c = space.to_parts(space.validate(GOOD))
    assert space.from_parts(z, c) == space.validate(GOOD)
    j = [p.name for p in space.continuous].index("press_MPa")
    z[j] = (301.4 - 100) / 400
    assert space.from_parts(space.round_unit(z), c)["press_MPa"] == 301


def test_samples_respect_linear_constraint_and_feasibility_rule():
    spec = {
        "parameters": {f: {"type": "real", "low": 0, "high": 1} for f in ("f_nmc", "f_se", "f_c")},
        "constraints": [{"coefficients": {"f_nmc": 1, "f_se": 1, "f_c": 1}, "op": "<=", "rhs": 1}],
    }
    space = Space.from_spec(spec, feasible=lambda p: p["f_se"] >= 0.1)
    samples = space.sample(50, np.random.default_rng(1))
    assert len(samples) == 50
    assert all(p["f_nmc"] + p["f_se"] + p["f_c"] <= 1 + 1e-9 for p in samples)
    assert all(p["f_se"] >= 0.1 for p in samples)
    with pytest.raises(ObservationError, match="constraint 0"):
        space.validate({"f_nmc": 0.6, "f_se": 0.3, "f_c": 0.2})
