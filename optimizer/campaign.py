"""A campaign: search space + objectives + history + pending experiments + seed, with ask/tell.

Example
-------
>>> from optimizer import Campaign
>>> c = Campaign(space=SPEC, objectives={"sigma_ion": "maximize"}, seed=0)
>>> batch = c.ask(4)          # [{"id": "r001-0", "params": {...}}, ...]
>>> c.tell([{"id": b["id"], "values": {"sigma_ion": -4.3}, "sd": {"sigma_ion": 0.1}}
...         for b in batch])
>>> c.tell([{"params": {...}, "values": {...}}])          # made outside the campaign
>>> c.tell([{"id": "r002-1", "failed": True, "reason": "film did not form"}])
>>> c.save("campaign.json"); c = Campaign.load("campaign.json")

How a batch is proposed (:meth:`Campaign.ask`)
----------------------------------------------
1. Until ``n_initial`` experiments are told or pending (or while fewer than two have succeeded), the
   batch is the next points of one scrambled Sobol sequence of the campaign seed.
2. Then a GP (:mod:`optimizer.surrogate`) is fitted to the successful observations, each with its
   own noise (the sd told with it). One objective: the acquisition is log EI over the best posterior
   mean among observed points (or UCB). Several objectives: ParEGO — every batch member draws random
   weights on the simplex, the objectives (scaled to [0, 1] over the observations) are combined by
   an augmented Chebyshev scalarisation, and a GP on that scalar gives log EI; over rounds the
   weights cover the Pareto front.
3. Outcome constraints (e.g. log10 σ_el ≥ −2) each get a GP; log P(constraint met) is added to the
   acquisition (constrained EI). Failed experiments train a GP classifier
   (:mod:`optimizer.feasibility`); log P(success) is added as well, candidates below
   ``p_success_min`` (default 0.7) are not proposed, and the final choice maximises the expected
   utility P(success)·EI − (1 − P(success))·cost of a failure (``failure_cost``, default 0.1 sd of
   the observed objective), so the boundary of a failure region is probed only while that pays.
4. Batches and pending experiments: Kriging believer — pending experiments (asked, not yet told) and
   the batch members already chosen enter the objective GP as fantasies at their predicted mean,
   which removes their uncertainty, and raise the incumbent to their mean, so the next choice goes
   elsewhere; exact repeats of observed, pending or chosen points are excluded outright.
5. Batch-shared parameters (``ask(q, shared=["anneal_C"])``): the first member is chosen freely, the
   others with the shared parameters held at its values (one pressing or annealing run per batch).

Every ask also reports the expected improvement left at its first proposal (in objective units; the
scalarised 0–1 scale for several objectives) and the GP's length scales per parameter (short = the
objective changes fast along it), kept per round in :attr:`Campaign.rounds` to decide when to stop.

Randomness: round ``r`` draws from ``numpy.random.default_rng([seed, r])`` (GP restarts, Sobol
scrambling, weights), so a campaign saved and loaded in a new process proposes the same next batch.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy.stats import qmc
from threadpoolctl import threadpool_limits

from inference.summary import with_user_umask
from optimizer.acquisition import (
    log_expected_improvement,
    log_probability_at_least,
    maximize,
    upper_confidence_bound,
)
from optimizer.errors import CampaignError, CampaignFileError, ObservationError, SpaceError
from optimizer.feasibility import FAILURE_COST, P_SUCCESS_MIN, FailureModel
from optimizer.pareto import chebyshev_scalarize, hypervolume, pareto_mask
from optimizer.space import FeasibilityRule, Space
from optimizer.surrogate import GPSurrogate

FORMAT = "sigmalab.campaign"
VERSION = 1
DIRECTIONS = ("maximize", "minimize")
ACQUISITIONS = ("log_ei", "ucb")
_SOBOL_STREAM = 0x5B01  # second seed word of the initial-design Sobol sequence
_TELL_KEYS = {"id", "params", "values", "sd", "failed", "reason", "source"}


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _finite(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


class Proposals(list):
    """The list of proposals from :meth:`Campaign.ask`, with the round's diagnostics attached.

    Attributes
    ----------
    round : round number of this ask.
    strategy : ``"sobol"`` (initial design) or ``"gp"``.
    expected_improvement : expected improvement at the first proposal (objective units; 0–1
        scalarised scale with several objectives), times P(feasible); None for Sobol rounds.
    length_scales : GP length scale per parameter (unit-scaled input; short = influential).
    ranking : parameter names, most influential first.
    """

    round: int
    strategy: str
    expected_improvement: float | None
    length_scales: dict
    ranking: list


class Campaign:
    """Ask/tell Bayesian optimisation of lab recipes.

    Parameters
    ----------
    space : search-space spec (see :mod:`optimizer.space`) or a :class:`Space`.
    objectives : ``{name: "maximize" | "minimize"}``, one or more.
    seed : campaign seed; all randomness derives from it and the round counter.
    outcome_constraints : ``{metric: {"min": x, "max": y}}`` on measured quantities (objectives or
        other metrics told with every observation), e.g. ``{"sigma_el": {"min": -2}}``.
    acquisition : ``"log_ei"`` (default) or ``"ucb"``.
    ucb_beta : β of UCB.
    n_initial : Sobol points before the GP takes over; default ``max(4, number of parameters + 1)``.
    feasible : known feasibility rule ``params -> bool`` (not saved; pass it again to :meth:`load`).
    p_success_min : proposals need a predicted P(success) of at least this (GP classifier on
        failed experiments); higher = fewer failures, slower convergence where the optimum lies
        at a failure boundary (figures in :mod:`optimizer.feasibility`).
    failure_cost : price of a failed experiment, in standard deviations of the observed objective
        values; a risky proposal must promise an expected improvement worth it (0 = a failure
        costs only the lost experiment).

    Attributes
    ----------
    history : told experiments, in order, each ``{"id", "params", "values", "sd", "failed",
        "reason", "source", "round", "asked_at", "told_at"}``.
    pending : asked, not yet told: ``{id: {"params", "round", "asked_at"}}``.
    rounds : per-ask diagnostics (expected improvement, length scales, ranking, ids).
    """

    def __init__(
        self,
        space,
        objectives: Mapping[str, str],
        *,
        seed: int = 0,
        outcome_constraints: Mapping[str, Mapping[str, float]] | None = None,
        acquisition: str = "log_ei",
        ucb_beta: float = 2.0,
        n_initial: int | None = None,
        feasible: FeasibilityRule | None = None,
        p_success_min: float = P_SUCCESS_MIN,
        failure_cost: float = FAILURE_COST,
    ):
        self.space = Space.from_spec(space, feasible)
        if not isinstance(objectives, Mapping) or not objectives:
            raise SpaceError(
                "objectives", "expected a mapping {name: 'maximize' | 'minimize'}", what="campaign"
            )
        for name, direction in objectives.items():
            if direction not in DIRECTIONS:
                raise SpaceError(
                    f"objectives.{name}",
                    f"expected one of {DIRECTIONS}, got {direction!r}",
                    what="campaign",
                )
        self.objectives = dict(objectives)
        self.outcome_constraints = {}
        for name, bounds in (outcome_constraints or {}).items():
            if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"min", "max"}:
                raise SpaceError(
                    f"outcome_constraints.{name}",
                    f"expected {{'min': x}} and/or {{'max': y}}, got {bounds!r}",
                    what="campaign",
                )
            for key, v in bounds.items():
                if not _finite(v):
                    raise SpaceError(
                        f"outcome_constraints.{name}.{key}",
                        f"expected a number, got {v!r}",
                        what="campaign",
                    )
            self.outcome_constraints[name] = {k: float(v) for k, v in bounds.items()}
        if acquisition not in ACQUISITIONS:
            raise SpaceError(
                "acquisition",
                f"expected one of {ACQUISITIONS}, got {acquisition!r}",
                what="campaign",
            )
        if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
            raise SpaceError(
                "seed", f"expected a non-negative integer, got {seed!r}", what="campaign"
            )
        self.seed = seed
        if not _finite(p_success_min) or not 0 < p_success_min < 1:
            raise SpaceError(
                "p_success_min",
                f"expected a number in (0, 1), got {p_success_min!r}",
                what="campaign",
            )
        self.p_success_min = float(p_success_min)
        if not _finite(failure_cost) or failure_cost < 0:
            raise SpaceError(
                "failure_cost", f"expected a number ≥ 0, got {failure_cost!r}", what="campaign"
            )
        self.failure_cost = float(failure_cost)
        self.acquisition = acquisition
        self.ucb_beta = float(ucb_beta)
        n_free = len(self.space.continuous) + len(self.space.categorical)
        self.n_initial = int(n_initial) if n_initial is not None else max(4, n_free + 1)
        self.metrics = list(self.objectives) + [
            m for m in self.outcome_constraints if m not in self.objectives
        ]
        self.history: list[dict] = []
        self.pending: dict[str, dict] = {}
        self.rounds: list[dict] = []
        self.round = 0
        self.n_sobol = 0
        # Last fitted GP hyperparameters per model, the first start of the next fit (saved, so a
        # loaded campaign fits exactly as the original would).
        self.hyperparameters: dict[str, dict] = {}

    # -- ask -------------------------------------------------------------------------------------
    def ask(self, q: int = 1, shared: Sequence[str] | None = None) -> Proposals:
        """Propose ``q`` new experiments; they become pending until told.

        Parameters
        ----------
        q : batch size.
        shared : parameters that must take one value across the batch (e.g. ``["anneal_C"]``).

        Returns
        -------
        Proposals : list of ``{"id": str, "params": dict}`` with the round's diagnostics attached.
        """
        if not isinstance(q, int) or isinstance(q, bool) or q < 1:
            raise ObservationError("ask.q", f"expected a positive integer, got {q!r}")
        shared = list(shared or [])
        for name in shared:
            if name not in self.space.by_name:
                raise ObservationError(
                    f"ask.shared.{name}",
                    f"unknown parameter; the space has {list(self.space.by_name)}",
                )
        self.round += 1
        rng = np.random.default_rng([self.seed, self.round])
        ok = self._successes()
        told_or_pending = len(self.history) + len(self.pending)
        with threadpool_limits(limits=1, user_api="blas"):
            if told_or_pending < self.n_initial or len(ok) < 2:
                chosen = self._sobol_batch(q, shared)
                info = {
                    "strategy": "sobol",
                    "expected_improvement": None,
                    "length_scales": {},
                    "ranking": [],
                }
            else:
                chosen, info = self._model_batch(q, shared, ok, rng)
        asked_at = _now()
        out = Proposals()
        for j, params in enumerate(chosen):
            pid = f"r{self.round:03d}-{j}"
            self.pending[pid] = {"params": params, "round": self.round, "asked_at": asked_at}
            out.append({"id": pid, "params": dict(params)})
        out.round = self.round
        for key, value in info.items():
            setattr(out, key, value)
        self.rounds.append(
            {
                "round": self.round,
                "asked_at": asked_at,
                "q": q,
                "n_observations": len(ok),
                "n_failed": sum(1 for h in self.history if h["failed"]),
                **info,
                "ids": [p["id"] for p in out],
            }
        )
        return out

    def _successes(self) -> list[dict]:
        return [h for h in self.history if not h["failed"]]

    def _known_points(self) -> np.ndarray:
        params = [h["params"] for h in self.history] + [p["params"] for p in self.pending.values()]
        return self.space.encode(params) if params else np.zeros((0, self.space.n_encoded))

    def _sobol_batch(self, q: int, shared: list[str]) -> list[dict]:
        space = self.space
        d = space.n_cont + len(space.categorical)
        sampler = qmc.Sobol(d, scramble=True, rng=np.random.default_rng([self.seed, _SOBOL_STREAM]))
        known = self._known_points()
        chosen: list[dict] = []
        while len(chosen) < q:
            total = 1 << math.ceil(math.log2(self.n_sobol + 4 * q + 16))
            u = sampler.random(total)
            sampler.reset()
            for row in u[self.n_sobol :]:
                self.n_sobol += 1
                z = space.round_unit(row[: space.n_cont])
                cat = [
                    min(int(v * len(p.choices)), len(p.choices) - 1)
                    for v, p in zip(row[space.n_cont :], space.categorical, strict=True)
                ]
                params = space.from_parts(z, np.array(cat, int))
                if chosen:
                    params.update({n: chosen[0][n] for n in shared})
                x = space.encode([params])
                seen = np.vstack([known, space.encode(chosen)]) if chosen else known
                if len(seen) and (np.abs(seen - x).max(axis=1) < 1e-9).any():
                    continue
                if space.admissible(params):
                    chosen.append(params)
                    if len(chosen) == q:
                        break
            if self.n_sobol > 1 << 20:
                raise CampaignError("the initial design found no admissible new point")
        return chosen

    def _fit_gp(self, key: str, X, y, sd, rng) -> GPSurrogate:
        # Restarts matter most while data are few; past 100 points one warm-started restart keeps
        # ask(4) under a second.
        gp = GPSurrogate(
            n_restarts=2 if len(y) <= 100 else 1,
            random_state=int(rng.integers(2**31 - 1)),
            warm_start=self.hyperparameters.get(key),
        ).fit(X, y, sd)
        self.hyperparameters[key] = gp.hyperparameters_
        return gp

    def _signed(self, name: str, values: np.ndarray) -> np.ndarray:
        return values if self.objectives.get(name, "maximize") == "maximize" else -values

    def _metric_arrays(self, ok: list[dict], name: str) -> tuple[np.ndarray, np.ndarray]:
        y = np.array([h["values"][name] for h in ok], float)
        sd = np.array([h["sd"].get(name, 0.0) for h in ok], float)
        return y, sd

    def _model_batch(self, q: int, shared: list[str], ok: list[dict], rng) -> tuple[list, dict]:
        space = self.space
        X = space.encode([h["params"] for h in ok])
        pending_X = (
            space.encode([p["params"] for p in self.pending.values()])
            if self.pending
            else np.zeros((0, space.n_encoded))
        )

        def seed() -> int:
            return int(rng.integers(2**31 - 1))

        # Outcome constraints and failures: fitted once per ask, shared by all batch members.
        constraint_models = []
        for name, bounds in self.outcome_constraints.items():
            y, sd = self._metric_arrays(ok, name)
            gp = self._fit_gp(f"constraint:{name}", X, y, sd, rng)
            constraint_models.append((gp, bounds))
        failure = None
        if any(h["failed"] for h in self.history):
            all_X = space.encode([h["params"] for h in self.history])
            failure = FailureModel(random_state=seed()).fit(
                all_X, [not h["failed"] for h in self.history]
            )

        def log_feasible(Xc: np.ndarray) -> np.ndarray:
            total = np.zeros(len(Xc))
            for gp, bounds in constraint_models:
                m, s = gp.predict(Xc)
                if "min" in bounds:
                    total += log_probability_at_least(m, s, bounds["min"])
                if "max" in bounds:
                    total += log_probability_at_least(-m, s, -bounds["max"])
            if failure is not None:
                total += failure.log_weight(Xc, self.p_success_min)
            return total

        # Incumbent candidates: observed points whose constraints are met in posterior mean.
        meets = np.ones(len(ok), bool)
        for gp, bounds in constraint_models:
            m, _ = gp.predict(X)
            meets &= (m >= bounds.get("min", -np.inf)) & (m <= bounds.get("max", np.inf))

        exclude = np.vstack(
            [
                X,
                pending_X,
                space.encode([h["params"] for h in self.history if h["failed"]])
                if any(h["failed"] for h in self.history)
                else np.zeros((0, space.n_encoded)),
            ]
        )
        chosen: list[dict] = []
        info: dict = {"strategy": "gp"}
        multi = len(self.objectives) > 1
        model = None
        if not multi:
            name = next(iter(self.objectives))
            y, sd = self._metric_arrays(ok, name)
            model = self._fit_gp(f"objective:{name}", X, self._signed(name, y), sd, rng)
            if len(pending_X):
                model = model.condition_on(pending_X, model.predict(pending_X)[0])
        for j in range(q):
            fantasies = np.vstack([pending_X, space.encode(chosen)]) if chosen else pending_X
            if multi:
                model = self._scalarized_model(ok, X, rng)
                if len(fantasies):
                    model = model.condition_on(fantasies, model.predict(fantasies)[0])
            if j == 0:
                info.update(self._relevance(model))
            mean_obs = model.predict(X)[0]
            best = float(mean_obs[meets].max()) if meets.any() else None
            if best is not None and len(fantasies):
                # Fantasies raise the incumbent too; otherwise EI stays positive right next to a
                # fantasy whose mean beats the best observation and the batch clusters there.
                best = max(best, float(model.predict(fantasies)[0].max()))
            anchors = [ok[i]["params"] for i in np.argsort(-mean_obs)[:5]]

            def acq(Xc, model=model, best=best):
                m, s = model.predict(Xc)
                if best is None:  # nothing meets the constraints yet: find where they are met
                    return log_feasible(Xc)
                if self.acquisition == "ucb":
                    base = (upper_confidence_bound(m, s, self.ucb_beta) - best) / model.y_std_
                else:
                    base = log_expected_improvement(m, s, best)
                return base + log_feasible(Xc)

            select = None
            if failure is not None and best is not None:
                cost = self.failure_cost * model.y_std_

                def select(Xc, model=model, best=best, cost=cost, spread=j > 0):
                    # Expected utility with a priced failure, u = P·gain − (1 − P)·cost, gain =
                    # EI × P(outcome constraints met): a risky candidate must pay for its risk.
                    m, s = model.predict(Xc)
                    log_gain = log_expected_improvement(m, s, best)
                    log_gain += log_feasible(Xc) - failure.log_weight(Xc, self.p_success_min)
                    u = failure.expected_utility(Xc, np.exp(log_gain), cost)
                    too_risky = failure.log_prob_success(Xc) < np.log(self.p_success_min)
                    u[too_risky] = -np.inf
                    if not spread or (u >= 0).any():
                        return u
                    # Nothing pays for its risk and u ≈ −(1 − P)·cost: every member would take
                    # the same likeliest success. Later members take the least explored point
                    # (posterior sd, which the fantasies lower) among the near-best ones instead.
                    return np.where(u >= u.max() - 0.1 * cost, s, -np.inf)

            fixed = {n: chosen[0][n] for n in shared} if chosen else None
            known = np.vstack([exclude, space.encode(chosen)]) if chosen else exclude
            params, _ = maximize(
                acq, space, rng, fixed=fixed, anchors=anchors, exclude=known, select=select
            )
            x_new = space.encode([params])
            if j == 0:
                m, s = model.predict(x_new)
                ei = (
                    float(np.exp(log_expected_improvement(m, s, best)[0] + log_feasible(x_new)[0]))
                    if best is not None
                    else 0.0
                )
                info["expected_improvement"] = ei
            chosen.append(params)
            if not multi:
                model = model.condition_on(x_new, model.predict(x_new)[0])
        return chosen, info

    def _scalarized_model(self, ok: list[dict], X: np.ndarray, rng) -> GPSurrogate:
        cols, sds = [], []
        for name in self.objectives:
            y, sd = self._metric_arrays(ok, name)
            y = self._signed(name, y)
            lo, hi = y.min(), y.max()
            span = hi - lo if hi > lo else 1.0
            cols.append((y - lo) / span)
            sds.append(sd / span)
        Y_unit, SD_unit = np.column_stack(cols), np.column_stack(sds)
        weights = rng.dirichlet(np.ones(len(self.objectives)))
        s, grad = chebyshev_scalarize(Y_unit, weights)
        s_sd = np.sqrt(((grad * SD_unit) ** 2).sum(axis=1))
        return self._fit_gp("scalarized", X, s, s_sd, rng)

    def _relevance(self, model: GPSurrogate) -> dict:
        scales: dict[str, float] = {}
        for owner, ls in zip(self.space.encoded_owner, model.length_scales_, strict=True):
            scales[owner] = min(scales.get(owner, np.inf), float(ls))
        return {"length_scales": scales, "ranking": sorted(scales, key=scales.get)}

    # -- tell ------------------------------------------------------------------------------------
    def tell(self, observations: Sequence[Mapping], source: Mapping | None = None) -> None:
        """Record results; all entries are checked before any is recorded.

        Each entry is ``{"id": pending id, "values": {...}, "sd": {...}}`` for a proposal,
        ``{"params": {...}, "values": {...}}`` for an experiment made outside the campaign, or
        ``{"id": …, "failed": True, "reason": "…"}`` for a failed experiment. ``values`` must give
        every objective and constrained metric; ``sd`` (optional) their standard deviations;
        ``source`` (optional) provenance such as job and result ids. ``source`` passed here is
        the default for entries without their own.

        Raises
        ------
        ObservationError : naming the entry and field (unknown id or parameter, out-of-bounds
            value, wrong category, missing objective, negative sd …); nothing is recorded then.
        """
        if isinstance(observations, Mapping) or not isinstance(observations, Sequence):
            raise ObservationError("tell", "expected a list of observations")
        records, ids = [], set()
        for i, obs in enumerate(observations):
            records.append(self._check_observation(f"tell[{i}]", obs, ids, source))
        told_at = _now()
        for rec in records:
            if rec["id"] in self.pending:
                asked = self.pending.pop(rec["id"])
                rec["round"], rec["asked_at"] = asked["round"], asked["asked_at"]
            rec["told_at"] = told_at
            self.history.append(rec)

    def _check_observation(self, where: str, obs, ids: set, source) -> dict:
        if not isinstance(obs, Mapping):
            raise ObservationError(where, f"expected a mapping, got {obs!r}")
        unknown = set(obs) - _TELL_KEYS
        if unknown:
            raise ObservationError(
                where, f"unknown field(s) {sorted(unknown)}; expected {sorted(_TELL_KEYS)}"
            )
        pid = obs.get("id")
        if pid is not None:
            if pid not in self.pending:
                told = any(h["id"] == pid for h in self.history)
                raise ObservationError(
                    f"{where}.id",
                    f"{pid!r} is not a pending proposal" + (" (already told)" if told else ""),
                )
            if pid in ids:
                raise ObservationError(f"{where}.id", f"{pid!r} appears twice in this tell")
            ids.add(pid)
            params = self.pending[pid]["params"]
            if "params" in obs and self.space.validate(obs["params"], f"{where}.params") != params:
                raise ObservationError(f"{where}.params", f"differ from those proposed as {pid!r}")
        else:
            if "params" not in obs:
                raise ObservationError(where, "needs an 'id' of a pending proposal or 'params'")
            params = self.space.validate(obs["params"], f"{where}.params")
            pid = f"x{len(self.history) + len(ids):04d}"
            ids.add(pid)
        failed = obs.get("failed", False)
        if not isinstance(failed, bool):
            raise ObservationError(f"{where}.failed", f"expected true or false, got {failed!r}")
        reason = obs.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise ObservationError(f"{where}.reason", f"expected text, got {reason!r}")
        values, sds = {}, {}
        if not failed:
            raw = obs.get("values")
            if not isinstance(raw, Mapping):
                raise ObservationError(
                    f"{where}.values",
                    f"expected a mapping {self.metrics} -> number (or 'failed': true), got {raw!r}",
                )
            for name in raw:
                if name not in self.metrics:
                    raise ObservationError(
                        f"{where}.values.{name}", f"unknown metric; expected {self.metrics}"
                    )
            for name in self.metrics:
                if name not in raw:
                    raise ObservationError(f"{where}.values.{name}", "missing")
                if not _finite(raw[name]):
                    raise ObservationError(
                        f"{where}.values.{name}", f"expected a finite number, got {raw[name]!r}"
                    )
                values[name] = float(raw[name])
            raw_sd = obs.get("sd") or {}
            if not isinstance(raw_sd, Mapping):
                raise ObservationError(f"{where}.sd", f"expected a mapping, got {raw_sd!r}")
            for name, v in raw_sd.items():
                if name not in self.metrics:
                    raise ObservationError(
                        f"{where}.sd.{name}", f"unknown metric; expected {self.metrics}"
                    )
                if not _finite(v) or v < 0:
                    raise ObservationError(
                        f"{where}.sd.{name}", f"expected a number ≥ 0, got {v!r}"
                    )
                sds[name] = float(v)
        src = obs.get("source", source)
        if src is not None:
            try:
                json.dumps(src)
            except (TypeError, ValueError) as err:
                raise ObservationError(
                    f"{where}.source", f"must be JSON-serialisable: {err}"
                ) from None
        return {
            "id": pid,
            "params": params,
            "values": values,
            "sd": sds,
            "failed": failed,
            "reason": reason,
            "source": src,
            "round": None,
            "asked_at": None,
            "told_at": None,
        }

    def tell_study(
        self,
        study_result,
        recipe_params: Mapping[str, Mapping],
        temperature_C: float = 30.0,
        kinds: Mapping[str, str] | None = None,
        source: Mapping | None = None,
    ) -> None:
        """Tell the conductivities of a fitted study (an ``inference.StudyResult``).

        Parameters
        ----------
        study_result : a StudyResult, or any object with ``log10_sigma_draws(kind,
            temperature_C)`` returning recipe-level posterior draws of log10 σ (S/cm) with a
            ``recipe`` dimension; each objective gets their mean and sd.
        recipe_params : recipe name → its parameter set. A recipe whose parameters equal a pending
            proposal's closes that proposal; others are told as outside observations.
        temperature_C : temperature of the conductivity, °C.
        kinds : metric → conductivity kind; default ``sigma_ion → "ionic"``,
            ``sigma_el → "electronic"``.
        source : provenance attached to every observation (e.g. the study's result id).
        """
        kinds = dict(kinds or {"sigma_ion": "ionic", "sigma_el": "electronic"})
        missing = [m for m in self.metrics if m not in kinds]
        if missing:
            raise ObservationError(
                "tell_study.kinds", f"no conductivity kind for metric(s) {missing}"
            )
        posteriors = {}
        for m in self.metrics:
            draws = study_result.log10_sigma_draws(kinds[m], temperature_C)
            posteriors[m] = {
                str(r): (float(draws.sel(recipe=r).mean()), float(draws.sel(recipe=r).std()))
                for r in draws["recipe"].values
            }
        observations = []
        for recipe, params in recipe_params.items():
            values, sds = {}, {}
            for m in self.metrics:
                if recipe not in posteriors[m]:
                    raise ObservationError(
                        f"tell_study.{recipe}",
                        f"no {kinds[m]} conductivity at {temperature_C} °C in the study result",
                    )
                mean, sd = posteriors[m][recipe]
                values[m], sds[m] = float(mean), float(sd)
            full = self.space.validate(params, f"tell_study.{recipe}")
            match = [pid for pid, p in self.pending.items() if p["params"] == full]
            obs = {
                "values": values,
                "sd": sds,
                "source": {"recipe": recipe, "temperature_C": temperature_C, **(source or {})},
            }
            obs.update({"id": match[0]} if match else {"params": full})
            observations.append(obs)
        self.tell(observations)

    # -- results ---------------------------------------------------------------------------------
    def _meets_constraints(self, h: dict) -> bool:
        return all(
            bounds.get("min", -np.inf) <= h["values"][m] <= bounds.get("max", np.inf)
            for m, bounds in self.outcome_constraints.items()
        )

    def best(self) -> dict | None:
        """The best observed experiment meeting the outcome constraints (one objective), or None."""
        if len(self.objectives) > 1:
            raise CampaignError("best() needs a single objective; use pareto() for several")
        name, direction = next(iter(self.objectives.items()))
        ok = [h for h in self._successes() if self._meets_constraints(h)]
        if not ok:
            return None
        pick = max if direction == "maximize" else min
        return dict(pick(ok, key=lambda h: h["values"][name]))

    def pareto(self) -> list[dict]:
        """Observed experiments on the Pareto front of the objectives (constraints met)."""
        ok = [h for h in self._successes() if self._meets_constraints(h)]
        if not ok:
            return []
        Y = np.column_stack(
            [self._signed(n, np.array([h["values"][n] for h in ok])) for n in self.objectives]
        )
        return [dict(h) for h, keep in zip(ok, pareto_mask(Y), strict=True) if keep]

    def hypervolume(self, reference: Mapping[str, float]) -> float:
        """Hypervolume of the observed Pareto front above ``reference`` (objective units)."""
        front = self.pareto()
        if not front:
            return 0.0
        Y = np.column_stack(
            [self._signed(n, np.array([h["values"][n] for h in front])) for n in self.objectives]
        )
        ref = [float(self._signed(n, np.array(reference[n]))) for n in self.objectives]
        return hypervolume(Y, ref)

    def to_dataframe(self):
        """One row per experiment (told, failed or pending): id, status, round, parameters,
        metric values and ``sd_<metric>``, reason, source, timestamps."""
        import pandas as pd

        rows = []
        for h in self.history:
            row = {
                "id": h["id"],
                "status": "failed" if h["failed"] else "observed",
                "round": h["round"],
                **h["params"],
            }
            for m in self.metrics:
                row[m] = h["values"].get(m, np.nan)
                row[f"sd_{m}"] = h["sd"].get(m, np.nan)
            row.update(
                reason=h["reason"], source=h["source"], asked_at=h["asked_at"], told_at=h["told_at"]
            )
            rows.append(row)
        for pid, p in self.pending.items():
            rows.append(
                {
                    "id": pid,
                    "status": "pending",
                    "round": p["round"],
                    **p["params"],
                    "asked_at": p["asked_at"],
                }
            )
        columns = (
            ["id", "status", "round"]
            + [p.name for p in self.space.parameters]
            + [c for m in self.metrics for c in (m, f"sd_{m}")]
            + ["reason", "source", "asked_at", "told_at"]
        )
        return pd.DataFrame(rows, columns=columns)

    # -- persistence -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The campaign as plain JSON data (format ``sigmalab.campaign``, versioned)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "space": self.space.to_spec(),
            "objectives": self.objectives,
            "outcome_constraints": self.outcome_constraints,
            "seed": self.seed,
            "acquisition": self.acquisition,
            "ucb_beta": self.ucb_beta,
            "p_success_min": self.p_success_min,
            "failure_cost": self.failure_cost,
            "n_initial": self.n_initial,
            "round": self.round,
            "n_sobol": self.n_sobol,
            "history": self.history,
            "pending": self.pending,
            "rounds": self.rounds,
            "hyperparameters": self.hyperparameters,
        }

    def save(self, path) -> None:
        """Write the campaign as JSON, atomically (temporary file in the same folder, then
        ``os.replace``), so a crash or an error never leaves a half-written file."""
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            with_user_umask(tmp)  # mkstemp makes 0600
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def from_dict(
        cls, data: Mapping, feasible: FeasibilityRule | None = None, where: str = "campaign"
    ) -> Campaign:
        """Rebuild a campaign from :meth:`to_dict` data; raises :class:`CampaignFileError`."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise CampaignFileError(where, f"not a {FORMAT} file (missing or wrong 'format')")
        if data.get("version") != VERSION:
            raise CampaignFileError(
                where,
                f"version {data.get('version')!r} is not supported "
                f"(this sigmalab reads version {VERSION})",
            )
        try:
            c = cls(
                data["space"],
                data["objectives"],
                seed=data["seed"],
                outcome_constraints=data["outcome_constraints"],
                acquisition=data["acquisition"],
                ucb_beta=data["ucb_beta"],
                n_initial=data["n_initial"],
                feasible=feasible,
                p_success_min=data.get("p_success_min", P_SUCCESS_MIN),
                failure_cost=data.get("failure_cost", FAILURE_COST),
            )
            c.round, c.n_sobol = int(data["round"]), int(data["n_sobol"])
            c.history = [dict(h) for h in data["history"]]
            c.pending = {k: dict(v) for k, v in data["pending"].items()}
            c.rounds = list(data["rounds"])
            c.hyperparameters = dict(data["hyperparameters"])
            for h in c.history:
                h["params"] = c.space.validate(h["params"], f"history[{h['id']}].params")
            for pid, p in c.pending.items():
                p["params"] = c.space.validate(p["params"], f"pending[{pid}].params")
        except KeyError as err:
            raise CampaignFileError(where, f"missing field {err}") from None
        except (SpaceError, ObservationError) as err:
            raise CampaignFileError(where, str(err)) from None
        return c

    @classmethod
    def load(cls, path, feasible: FeasibilityRule | None = None) -> Campaign:
        """Read a campaign saved by :meth:`save`. The feasibility rule, if any, is passed again."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise CampaignFileError(path, "no such file") from None
        except json.JSONDecodeError as err:
            raise CampaignFileError(
                path, f"not valid JSON (line {err.lineno}): {err.msg}"
            ) from None
        return cls.from_dict(data, feasible, where=str(path))


def plot_progress(campaign: Campaign, path) -> None:
    """Plot, per round, the expected improvement left and the GP length scale of each parameter
    (:func:`optimizer.plots.progress_figure`) into ``path``.

    Falling expected improvement with stable length scales is the signal to stop.
    """
    import matplotlib.pyplot as plt

    from optimizer.plots import progress_figure

    fig = progress_figure(campaign.to_dict())
    fig.savefig(path)
    plt.close(fig)
