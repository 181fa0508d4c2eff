"""Search spaces: the recipe parameters a campaign may change, as a JSON-serialisable spec.

A spec is either a flat mapping of parameters::

    {"binder_wt_pct": {"type": "real", "low": 0, "high": 3},
     "process": {"type": "categorical", "choices": ["dry", "wet"]},
     "press_MPa": {"type": "integer", "low": 100, "high": 500},
     "anneal_time_h": {"type": "real", "low": 0.1, "high": 10, "log": true},
     "carbon": {"type": "fixed", "value": "VGCF"}}

or the full form ``{"parameters": {...}, "constraints": [...]}`` with linear constraints over real
and integer parameters, e.g. fractions that may not add up to more than one::

    {"coefficients": {"frac_nmc": 1, "frac_se": 1}, "op": "<=", "rhs": 1}

A feasibility rule (a Python callable ``params -> bool``) can be given as well; it cannot be written
to JSON, so a loaded campaign needs it passed again.

Encoding for the surrogate: real and integer parameters map to [0, 1] (log-scaled reals through
their logarithm); each categorical parameter becomes one-hot columns, so each choice is its own
direction with its own length scale and no choice is "between" two others. Fixed parameters are
not encoded.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.stats import qmc

from optimizer.errors import ObservationError, SpaceError

FeasibilityRule = Callable[[dict], bool]


@dataclass(frozen=True)
class Real:
    """A continuous parameter in [low, high], optionally searched on a log scale (low > 0)."""

    name: str
    low: float
    high: float
    log: bool = False

    def to_unit(self, value: float) -> float:
        if self.log:
            return (math.log(value) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, z: float) -> float:
        z = min(max(z, 0.0), 1.0)
        if self.log:
            return float(
                math.exp(math.log(self.low) + z * (math.log(self.high) - math.log(self.low)))
            )
        return float(self.low + z * (self.high - self.low))

    def to_spec(self) -> dict:
        spec = {"type": "real", "low": self.low, "high": self.high}
        if self.log:
            spec["log"] = True
        return spec


@dataclass(frozen=True)
class Integer:
    """An integer parameter in [low, high] (both included)."""

    name: str
    low: int
    high: int

    def to_unit(self, value: float) -> float:
        return (value - self.low) / (self.high - self.low)

    def from_unit(self, z: float) -> int:
        z = min(max(z, 0.0), 1.0)
        return int(round(self.low + z * (self.high - self.low)))

    def to_spec(self) -> dict:
        return {"type": "integer", "low": self.low, "high": self.high}


@dataclass(frozen=True)
class Categorical:
    """A parameter that takes one of a list of unordered choices (strings, numbers or booleans)."""

    name: str
    choices: tuple

    def to_spec(self) -> dict:
        return {"type": "categorical", "choices": list(self.choices)}


@dataclass(frozen=True)
class Fixed:
    """A parameter held at one value: recorded with every proposal, never searched."""

    name: str
    value: Any

    def to_spec(self) -> dict:
        return {"type": "fixed", "value": self.value}


@dataclass(frozen=True)
class LinearConstraint:
    """``sum(coefficients[name] * params[name]) op rhs`` with op ``"<="`` or ``">="``."""

    coefficients: dict
    op: str
    rhs: float

    def holds(self, params: Mapping, tol: float = 1e-9) -> bool:
        total = sum(c * params[n] for n, c in self.coefficients.items())
        scale = tol * max(1.0, abs(self.rhs))
        return total <= self.rhs + scale if self.op == "<=" else total >= self.rhs - scale

    def to_spec(self) -> dict:
        return {"coefficients": dict(self.coefficients), "op": self.op, "rhs": self.rhs}


Parameter = Real | Integer | Categorical | Fixed


def _number(value, field: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise SpaceError(field, f"{what} must be a finite number, got {value!r}")
    return value


def _parse_parameter(name: str, spec) -> Parameter:
    if not isinstance(spec, Mapping):
        raise SpaceError(name, f"expected a mapping with a 'type', got {spec!r}")
    kind = spec.get("type")
    allowed = {
        "real": {"type", "low", "high", "log"},
        "integer": {"type", "low", "high"},
        "categorical": {"type", "choices"},
        "fixed": {"type", "value"},
    }
    if kind not in allowed:
        raise SpaceError(
            f"{name}.type", f"expected one of real, integer, categorical, fixed; got {kind!r}"
        )
    unknown = set(spec) - allowed[kind]
    if unknown:
        raise SpaceError(
            name,
            f"unknown field(s) {sorted(unknown)} for a {kind} parameter "
            f"(allowed: {sorted(allowed[kind])})",
        )
    if kind in ("real", "integer"):
        for key in ("low", "high"):
            if key not in spec:
                raise SpaceError(f"{name}.{key}", f"missing; a {kind} parameter needs low and high")
        low = _number(spec["low"], f"{name}.low", "low")
        high = _number(spec["high"], f"{name}.high", "high")
        if not low < high:
            raise SpaceError(
                f"{name}.high", f"must be greater than low ({low}); use type 'fixed' for one value"
            )
        if kind == "integer":
            if int(low) != low or int(high) != high:
                raise SpaceError(name, f"integer bounds must be whole numbers, got {low}..{high}")
            return Integer(name, int(low), int(high))
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise SpaceError(f"{name}.log", f"must be true or false, got {log!r}")
        if log and low <= 0:
            raise SpaceError(f"{name}.low", f"a log-scaled parameter needs low > 0, got {low}")
        return Real(name, float(low), float(high), log)
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list | tuple) or len(choices) < 2:
            raise SpaceError(
                f"{name}.choices", f"expected a list of at least 2 choices, got {choices!r}"
            )
        for c in choices:
            if not isinstance(c, str | int | float | bool):
                raise SpaceError(f"{name}.choices", f"choices must be JSON scalars, got {c!r}")
        if len(set(map(repr, choices))) != len(choices):
            raise SpaceError(f"{name}.choices", f"choices must be unique, got {choices!r}")
        return Categorical(name, tuple(choices))
    if "value" not in spec:
        raise SpaceError(f"{name}.value", "missing; a fixed parameter needs a value")
    value = spec["value"]
    if not isinstance(value, str | int | float | bool):
        raise SpaceError(f"{name}.value", f"must be a JSON scalar, got {value!r}")
    return Fixed(name, value)


class Space:
    """A mixed search space: real, integer, categorical and fixed parameters plus constraints.

    Parameters
    ----------
    parameters : parsed parameters, in spec order.
    constraints : linear constraints over real/integer parameters.
    feasible : optional rule ``params -> bool`` (known infeasible recipes); not serialised.

    Build one with :meth:`from_spec`; :meth:`to_spec` gives the JSON form back.
    """

    def __init__(
        self,
        parameters: Sequence[Parameter],
        constraints: Sequence[LinearConstraint] = (),
        feasible: FeasibilityRule | None = None,
    ):
        self.parameters = list(parameters)
        self.constraints = list(constraints)
        self.feasible = feasible
        self.by_name = {p.name: p for p in self.parameters}
        self.continuous = [p for p in self.parameters if isinstance(p, Real | Integer)]
        self.categorical = [p for p in self.parameters if isinstance(p, Categorical)]
        self.fixed = [p for p in self.parameters if isinstance(p, Fixed)]
        self.n_cont = len(self.continuous)
        offsets, start = [], self.n_cont
        for p in self.categorical:
            offsets.append(start)
            start += len(p.choices)
        self._onehot_offsets = offsets
        self.n_encoded = start
        # Which parameter each encoded column belongs to (for length-scale relevance).
        self.encoded_owner = [p.name for p in self.continuous] + [
            p.name for p in self.categorical for _ in p.choices
        ]
        self._integer_mask = np.array([isinstance(p, Integer) for p in self.continuous], bool)

    # -- construction and serialisation ------------------------------------------------------
    @classmethod
    def from_spec(cls, spec: Mapping, feasible: FeasibilityRule | None = None) -> Space:
        """Parse and validate a spec (flat or full form); raise :class:`SpaceError` if invalid."""
        if isinstance(spec, Space):
            return cls(spec.parameters, spec.constraints, feasible or spec.feasible)
        if not isinstance(spec, Mapping) or not spec:
            raise SpaceError("spec", f"expected a non-empty mapping of parameters, got {spec!r}")
        full = "parameters" in spec and not (
            isinstance(spec["parameters"], Mapping) and "type" in spec["parameters"]
        )
        if full:
            extra = set(spec) - {"parameters", "constraints"}
            if extra:
                raise SpaceError("spec", f"unknown top-level key(s) {sorted(extra)}")
            param_specs = spec["parameters"]
            constraint_specs = spec.get("constraints") or []
        else:
            param_specs, constraint_specs = spec, []
        if not isinstance(param_specs, Mapping) or not param_specs:
            raise SpaceError("parameters", "expected a non-empty mapping of parameters")
        parameters = []
        for name, pspec in param_specs.items():
            if not isinstance(name, str) or not name:
                raise SpaceError(repr(name), "parameter names must be non-empty strings")
            parameters.append(_parse_parameter(name, pspec))
        if all(isinstance(p, Fixed) for p in parameters):
            raise SpaceError("parameters", "every parameter is fixed; nothing to search")
        by_name = {p.name: p for p in parameters}
        if not isinstance(constraint_specs, list):
            raise SpaceError("constraints", f"expected a list, got {constraint_specs!r}")
        constraints = [_parse_constraint(i, c, by_name) for i, c in enumerate(constraint_specs)]
        space = cls(parameters, constraints, feasible)
        if space.n_cont and constraints and space.sample(64, np.random.default_rng(0)) == []:
            raise SpaceError("constraints", "no point of the space satisfies the constraints")
        return space

    def to_spec(self) -> dict:
        """The JSON form (full form when there are constraints, flat otherwise)."""
        params = {p.name: p.to_spec() for p in self.parameters}
        if not self.constraints:
            return params
        return {"parameters": params, "constraints": [c.to_spec() for c in self.constraints]}

    # -- validation ----------------------------------------------------------------------------
    def validate(self, params, where: str = "params", constraints: bool = True) -> dict:
        """Check one parameter set and return it complete (fixed values filled in) and typed.

        Raises :class:`ObservationError` naming the field for an unknown parameter, a missing one,
        a value out of bounds, a wrong category, or (with ``constraints``) a violated linear
        constraint.
        """
        if not isinstance(params, Mapping):
            raise ObservationError(where, f"expected a mapping of parameter values, got {params!r}")
        unknown = [k for k in params if k not in self.by_name]
        if unknown:
            raise ObservationError(
                f"{where}.{unknown[0]}",
                f"unknown parameter; the space has {list(self.by_name)}",
            )
        out = {}
        for p in self.parameters:
            field = f"{where}.{p.name}"
            if p.name not in params:
                if isinstance(p, Fixed):
                    out[p.name] = p.value
                    continue
                raise ObservationError(field, "missing; every non-fixed parameter needs a value")
            value = params[p.name]
            if isinstance(p, Fixed):
                if value != p.value:
                    raise ObservationError(field, f"is fixed at {p.value!r}, got {value!r}")
                out[p.name] = p.value
            elif isinstance(p, Categorical):
                match = [c for c in p.choices if _same_choice(c, value)]
                if not match:
                    raise ObservationError(
                        field, f"expected one of {list(p.choices)}, got {value!r}"
                    )
                out[p.name] = match[0]
            else:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, int | float)
                    or not math.isfinite(value)
                ):
                    raise ObservationError(field, f"expected a finite number, got {value!r}")
                if isinstance(p, Integer) and int(value) != value:
                    raise ObservationError(field, f"expected a whole number, got {value!r}")
                if not p.low <= value <= p.high:
                    raise ObservationError(
                        field, f"{value!r} is outside the bounds [{p.low}, {p.high}]"
                    )
                out[p.name] = int(value) if isinstance(p, Integer) else float(value)
        for i, c in enumerate(self.constraints if constraints else ()):
            if not c.holds(out):
                raise ObservationError(where, f"violates constraint {i}: {_describe(c)}")
        return out

    def admissible(self, params: dict) -> bool:
        """Whether a complete parameter set meets the constraints and the feasibility rule."""
        if not all(c.holds(params) for c in self.constraints):
            return False
        return self.feasible is None or bool(self.feasible(dict(params)))

    # -- encoding --------------------------------------------------------------------------------
    def to_parts(self, params: Mapping) -> tuple[np.ndarray, np.ndarray]:
        """Unit coordinates of the continuous parameters, choice indices of the categorical ones."""
        z = np.array([p.to_unit(params[p.name]) for p in self.continuous], float)
        c = np.array([p.choices.index(params[p.name]) for p in self.categorical], int)
        return z, c

    def encode(self, params_list: Sequence[Mapping]) -> np.ndarray:
        """Encoded design matrix (n, n_encoded) for the surrogate."""
        parts = [self.to_parts(p) for p in params_list]
        z = np.array([a for a, _ in parts], float).reshape(len(parts), self.n_cont)
        c = np.array([b for _, b in parts], int).reshape(len(parts), len(self.categorical))
        return self.encode_parts(z, c)

    def encode_parts(self, z: np.ndarray, cat: np.ndarray) -> np.ndarray:
        """Encode unit coordinates ``z`` (m, n_cont) and choice indices ``cat`` (m, n_cat)."""
        m = z.shape[0]
        x = np.zeros((m, self.n_encoded))
        x[:, : self.n_cont] = z
        rows = np.arange(m)
        for j, off in enumerate(self._onehot_offsets):
            x[rows, off + cat[:, j]] = 1.0
        return x

    def from_parts(self, z: np.ndarray, cat: np.ndarray) -> dict:
        """The parameter set at unit coordinates ``z`` and choice indices ``cat``."""
        out = {}
        zi = iter(z)
        ci = iter(cat)
        for p in self.parameters:
            if isinstance(p, Fixed):
                out[p.name] = p.value
            elif isinstance(p, Categorical):
                out[p.name] = p.choices[int(next(ci))]
            else:
                out[p.name] = p.from_unit(float(next(zi)))
        return out

    def round_unit(self, z: np.ndarray) -> np.ndarray:
        """Snap the integer columns of unit coordinates (…, n_cont) onto their grid."""
        z = np.clip(np.asarray(z, float), 0.0, 1.0).copy()
        for j, p in enumerate(self.continuous):
            if isinstance(p, Integer):
                n = p.high - p.low
                z[..., j] = np.round(z[..., j] * n) / n
        return z

    def unit_constraints(self) -> tuple[np.ndarray, np.ndarray]:
        """Linear constraints in unit coordinates as ``A @ z <= b`` (A: (k, n_cont))."""
        index = {p.name: j for j, p in enumerate(self.continuous)}
        rows, rhs = [], []
        for c in self.constraints:
            a = np.zeros(self.n_cont)
            b = c.rhs
            for name, coef in c.coefficients.items():
                p = self.continuous[index[name]]
                a[index[name]] = coef * (p.high - p.low)
                b -= coef * p.low
            sign = 1.0 if c.op == "<=" else -1.0
            rows.append(sign * a)
            rhs.append(sign * b)
        return np.array(rows).reshape(len(rows), self.n_cont), np.array(rhs)

    # -- sampling --------------------------------------------------------------------------------
    def sobol_parts(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` scrambled-Sobol points as (unit coordinates, choice indices), not yet filtered."""
        d = self.n_cont + len(self.categorical)
        sampler = qmc.Sobol(d, scramble=True, rng=rng)
        m = 1 << max(0, math.ceil(math.log2(max(n, 1))))
        u = sampler.random(m)[:n]
        z = u[:, : self.n_cont]
        cat = np.zeros((n, len(self.categorical)), int)
        for j, p in enumerate(self.categorical):
            cat[:, j] = np.minimum(
                (u[:, self.n_cont + j] * len(p.choices)).astype(int), len(p.choices) - 1
            )
        return self.round_unit(z), cat

    def sample(self, n: int, rng: np.random.Generator, max_tries: int = 20) -> list[dict]:
        """Up to ``n`` admissible parameter sets from scrambled Sobol points (by rejection)."""
        out: list[dict] = []
        for _ in range(max_tries):
            z, cat = self.sobol_parts(max(n, 16), rng)
            for zi, ci in zip(z, cat, strict=True):
                params = self.from_parts(zi, ci)
                if self.admissible(params):
                    out.append(params)
                    if len(out) == n:
                        return out
        return out


def _same_choice(choice, value) -> bool:
    # 1 == 1.0 is the same choice, but True is not 1 and "1" is not 1.
    if isinstance(choice, bool) != isinstance(value, bool):
        return False
    if isinstance(choice, str) != isinstance(value, str):
        return False
    return choice == value


def _describe(c: LinearConstraint) -> str:
    terms = " + ".join(f"{coef:g}*{name}" for name, coef in c.coefficients.items())
    return f"{terms} {c.op} {c.rhs:g}"


def _parse_constraint(i: int, spec, by_name: dict) -> LinearConstraint:
    field = f"constraints[{i}]"
    if not isinstance(spec, Mapping):
        raise SpaceError(field, f"expected a mapping with coefficients, op, rhs; got {spec!r}")
    extra = set(spec) - {"coefficients", "op", "rhs"}
    if extra:
        raise SpaceError(field, f"unknown field(s) {sorted(extra)}; expected coefficients, op, rhs")
    coefs = spec.get("coefficients")
    if not isinstance(coefs, Mapping) or not coefs:
        raise SpaceError(f"{field}.coefficients", "expected a non-empty mapping name -> number")
    for name, coef in coefs.items():
        p = by_name.get(name)
        if p is None:
            raise SpaceError(f"{field}.coefficients.{name}", "not a parameter of the space")
        if not isinstance(p, Real | Integer) or (isinstance(p, Real) and p.log):
            raise SpaceError(
                f"{field}.coefficients.{name}",
                "linear constraints apply to linear-scale real or integer parameters only",
            )
        _number(coef, f"{field}.coefficients.{name}", "a coefficient")
    op = spec.get("op")
    if op not in ("<=", ">="):
        raise SpaceError(f"{field}.op", f"expected '<=' or '>=', got {op!r}")
    rhs = _number(spec.get("rhs"), f"{field}.rhs", "rhs")
    return LinearConstraint({k: float(v) for k, v in coefs.items()}, op, float(rhs))
