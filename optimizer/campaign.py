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
>>> mean, sd = c.predict([{...}])                         # the campaign's GP, per metric
>>> c.save("campaign.json"); c = Campaign.load("campaign.json")

The campaign holds state (space, objectives, settings, history, pending, rounds, the last fitted
GP hyperparameters) and persistence; proposals come from small recommender objects
(:mod:`optimizer.recommenders`) that :meth:`Campaign.ask` delegates to:

1. Until ``n_initial`` experiments are told or pending (or while fewer than two have succeeded),
   :class:`~optimizer.recommenders.SobolDesign`: the next points of one scrambled Sobol sequence
   of the campaign seed.
2. One objective, :class:`~optimizer.recommenders.GPBatch`: a GP (:mod:`optimizer.surrogate`) on
   the successful observations, each with its own noise (the sd told with it), log EI over the
   best posterior mean among observed points (or UCB); batches and pending experiments by
   Kriging believer.
3. Several objectives, :class:`~optimizer.recommenders.EHVIBatch` (default): a GP per objective
   and noisy expected hypervolume improvement with pending experiments and earlier batch members
   as fantasies; or ParEGO (``multi_objective="parego"``).
4. Outcome constraints (e.g. log10 σ_el ≥ −2) each get a GP; log P(constraint met) is added to
   the acquisition. Failed experiments train a GP classifier (:mod:`optimizer.feasibility`);
   candidates below ``p_success_min`` (default 0.7) are not proposed, and the final choice
   maximises the expected utility P(success)·gain − (1 − P(success))·cost of a failure
   (``failure_cost``), so the boundary of a failure region is probed only while that pays.
5. Batch-shared parameters (``ask(q, shared=["anneal_C"])``): the first member is chosen freely,
   the others with the shared parameters held at its values (one pressing or annealing run per
   batch). Exact repeats of observed, pending or chosen points are never proposed.

Every ask also reports the acquisition value left at its first proposal and the GP's length
scales per parameter (short = the objective changes fast along it), kept per round in
:attr:`Campaign.rounds` to decide when to stop.

Randomness: round ``r`` draws from ``numpy.random.default_rng([seed, r])`` (GP restarts, Sobol
scrambling, weights, posterior draws), so a campaign saved and loaded in a new process proposes
the same next batch.

Files: format ``sigmalab.campaign``, version 2; version-1 files (saved before the recommenders
existed) load with this version's defaults for the new settings (``multi_objective="ehvi"``, no
reference point).
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
from threadpoolctl import threadpool_limits

from inference.summary import with_user_umask
from optimizer.errors import CampaignError, CampaignFileError, ObservationError, SpaceError
from optimizer.feasibility import FAILURE_COST, P_SUCCESS_MIN
from optimizer.models import fit_gp, metric_arrays, signed
from optimizer.observations import OBJECTIVE_KINDS, observations_from_study
from optimizer.pareto import hypervolume, pareto_mask
from optimizer.recommenders import EHVIBatch, GPBatch, ParEGOBatch, SobolDesign, TwoPhase
from optimizer.space import FeasibilityRule, Space

FORMAT = "sigmalab.campaign"
VERSION = 2
READS_VERSIONS = (1, 2)
DIRECTIONS = ("maximize", "minimize")
ACQUISITIONS = ("log_ei", "ucb")
MULTI_OBJECTIVE = ("ehvi", "parego")
_PREDICT_STREAM = 0x9E3D  # third seed word of the fits behind predict()
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
    strategy : ``"sobol"`` (initial design), ``"gp"`` (one objective), ``"ehvi"`` or
        ``"parego"`` (several).
    expected_improvement : acquisition value at the first proposal, times P(feasible): expected
        improvement in objective units (one objective), expected hypervolume improvement (EHVI,
        a product of objective units), or EI on the 0–1 scalarised scale (ParEGO); None for
        Sobol rounds.
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

    The constructor only checks and stores its settings; proposals come from
    :attr:`recommender`.

    Parameters
    ----------
    space : search-space spec (see :mod:`optimizer.space`) or a :class:`Space`.
    objectives : ``{name: "maximize" | "minimize"}``, one or more.
    seed : campaign seed; all randomness derives from it and the round counter.
    outcome_constraints : ``{metric: {"min": x, "max": y}}`` on measured quantities (objectives or
        other metrics told with every observation), e.g. ``{"sigma_el": {"min": -2}}``.
    acquisition : one objective: ``"log_ei"`` (default) or ``"ucb"``.
    ucb_beta : β of UCB.
    multi_objective : several objectives: ``"ehvi"`` (default, expected hypervolume
        improvement) or ``"parego"``.
    reference : several objectives: hypervolume reference point ``{objective: value}`` in
        objective units (the worst value still worth having); default from the observations
        (:func:`optimizer.recommenders.hypervolume.default_reference`).
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
    metrics : objectives, then constrained metrics that are not objectives.
    hyperparameters : last fitted GP hyperparameters per model (the first start of the next fit).
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
        multi_objective: str = "ehvi",
        reference: Mapping[str, float] | None = None,
        n_initial: int | None = None,
        feasible: FeasibilityRule | None = None,
        p_success_min: float = P_SUCCESS_MIN,
        failure_cost: float = FAILURE_COST,
    ):
        self.space = Space.from_spec(space, feasible)
        self.objectives = _check_objectives(objectives)
        self.outcome_constraints = _check_constraints(outcome_constraints or {})
        self.acquisition = _check_choice("acquisition", acquisition, ACQUISITIONS)
        self.multi_objective = _check_choice("multi_objective", multi_objective, MULTI_OBJECTIVE)
        self.reference = _check_reference(reference, self.objectives)
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
        if not _finite(ucb_beta) or ucb_beta < 0:
            raise SpaceError(
                "ucb_beta", f"expected a number ≥ 0, got {ucb_beta!r}", what="campaign"
            )
        self.ucb_beta = float(ucb_beta)
        n_free = len(self.space.continuous) + len(self.space.categorical)
        if n_initial is not None and (
            not isinstance(n_initial, int) or isinstance(n_initial, bool) or n_initial < 1
        ):
            raise SpaceError(
                "n_initial", f"expected a positive integer, got {n_initial!r}", what="campaign"
            )
        self.n_initial = n_initial if n_initial is not None else max(4, n_free + 1)
        self.metrics = list(self.objectives) + [
            m for m in self.outcome_constraints if m not in self.objectives
        ]
        self.history: list[dict] = []
        self.pending: dict[str, dict] = {}
        self.rounds: list[dict] = []
        self.round = 0
        self.n_sobol = 0
        self.hyperparameters: dict[str, dict] = {}
        self._predict_cache: tuple | None = None

    # -- ask -------------------------------------------------------------------------------------
    @property
    def recommender(self) -> TwoPhase:
        """The recommender this campaign's settings select (built on demand, not saved)."""
        if len(self.objectives) == 1:
            model = GPBatch(self.acquisition, self.ucb_beta)
        elif self.multi_objective == "parego":
            model = ParEGOBatch()
        else:
            model = EHVIBatch(self.reference)
        return TwoPhase(SobolDesign(), model)

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
        rng = np.random.default_rng([self.seed, self.round + 1])
        with threadpool_limits(limits=1, user_api="blas"):
            rec = self.recommender.recommend(self, q, shared, rng)
        self.round += 1
        if rec.n_sobol is not None:
            self.n_sobol = rec.n_sobol
        if rec.hyperparameters is not None:
            self.hyperparameters = rec.hyperparameters
        asked_at = _now()
        out = Proposals()
        for j, params in enumerate(rec.params):
            pid = f"r{self.round:03d}-{j}"
            self.pending[pid] = {"params": params, "round": self.round, "asked_at": asked_at}
            out.append({"id": pid, "params": dict(params)})
        out.round = self.round
        info = rec.info()
        for key, value in info.items():
            setattr(out, key, value)
        self.rounds.append(
            {
                "round": self.round,
                "asked_at": asked_at,
                "q": q,
                "n_observations": len(self.successes()),
                "n_failed": sum(1 for h in self.history if h["failed"]),
                **info,
                "ids": [p["id"] for p in out],
            }
        )
        return out

    def successes(self) -> list[dict]:
        """Told experiments that did not fail."""
        return [h for h in self.history if not h["failed"]]

    def known_points(self) -> np.ndarray:
        """Encoded parameters of every told and pending experiment."""
        params = [h["params"] for h in self.history] + [p["params"] for p in self.pending.values()]
        return self.space.encode(params) if params else np.zeros((0, self.space.n_encoded))

    # -- the campaign's GP -----------------------------------------------------------------------
    def predict(self, params) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """The campaign's GP posterior of every metric at ``params``.

        One GP per metric on the successful observations, fitted as the recommenders fit it
        (:func:`optimizer.models.fit_gp`: each observation's own noise, the saved hyperparameters
        as first start, seed ``[seed, round, 0x9E3D]``); the campaign's saved state is not
        changed. Used by the reports' partial-dependence plots and the service's predictions.

        Parameters
        ----------
        params : one parameter set or a list of them (checked like :meth:`tell`'s, except for
            the linear constraints).

        Returns
        -------
        mean, sd : ``{metric: (n,) array}`` of the latent value (without observation noise), in
            the metric's own units.

        Raises
        ------
        CampaignError : fewer than two successful observations (no GP yet).
        ObservationError : a parameter set does not fit the space.
        """
        single = isinstance(params, Mapping)
        items = [params] if single else list(params)
        # Linear constraints are not checked: the GP has a value everywhere in the box.
        full = [
            self.space.validate(p, f"predict[{i}]", constraints=False) for i, p in enumerate(items)
        ]
        gps = self._predict_models()
        Xn = self.space.encode(full) if full else np.zeros((0, self.space.n_encoded))
        mean, sd = {}, {}
        for name, (gp, direction) in gps.items():
            m, s = gp.predict(Xn) if len(Xn) else (np.zeros(0), np.zeros(0))
            mean[name], sd[name] = signed(direction, m), s
        return mean, sd

    def _predict_models(self) -> dict:
        ok = self.successes()
        if len(ok) < 2:
            raise CampaignError("predict needs at least two successful observations")
        key = (len(self.history), self.round)
        if self._predict_cache is not None and self._predict_cache[0] == key:
            return self._predict_cache[1]
        rng = np.random.default_rng([self.seed, self.round, _PREDICT_STREAM])
        hyper = dict(self.hyperparameters)
        X = self.space.encode([h["params"] for h in ok])
        gps = {}
        for name in self.metrics:
            direction = self.objectives.get(name, "maximize")
            model = f"objective:{name}" if name in self.objectives else f"constraint:{name}"
            y, sd = metric_arrays(ok, name)
            gps[name] = (fit_gp(model, X, signed(direction, y), sd, rng, hyper), direction)
        self._predict_cache = (key, gps)
        return gps

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
        """Tell the conductivities of a fitted study (an ``inference.StudyResult``), through
        :func:`optimizer.observations.observations_from_study` (mean and sd of the recipe-level
        log10 σ draws).

        Parameters
        ----------
        study_result : a StudyResult, an object with its ``log10_sigma_draws(kind,
            temperature_C)``, or the DataTree of a saved ``result.nc``.
        recipe_params : recipe name → its parameter set. A recipe whose parameters equal a pending
            proposal's closes that proposal; others are told as outside observations.
        temperature_C : temperature of the conductivity, °C.
        kinds : metric → conductivity kind; default ``sigma_ion → "ionic"``,
            ``sigma_el → "electronic"``.
        source : provenance attached to every observation (e.g. the study's result id).

        Raises
        ------
        ObservationError : a recipe without a conductivity, parameters that do not fit the
            space, a metric without a kind; nothing is told then.
        """
        recipes = {}
        for recipe, params in recipe_params.items():
            full = self.space.validate(params, f"tell_study.{recipe}")
            match = [pid for pid, p in self.pending.items() if p["params"] == full]
            recipes[recipe] = {"id": match[0]} if match else {"params": full}
        try:
            observations = observations_from_study(
                study_result,
                self.metrics,
                recipes,
                temperature_C=temperature_C,
                kinds=OBJECTIVE_KINDS if kinds is None else kinds,
                source=source,
            )
        except ObservationError as err:
            raise ObservationError(err.where.replace("observations_from_study", "tell_study"),
                                   err.problem) from None  # fmt: skip
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
        ok = [h for h in self.successes() if self._meets_constraints(h)]
        if not ok:
            return None
        pick = max if direction == "maximize" else min
        return dict(pick(ok, key=lambda h: h["values"][name]))

    def pareto(self) -> list[dict]:
        """Observed experiments on the Pareto front of the objectives (constraints met)."""
        ok = [h for h in self.successes() if self._meets_constraints(h)]
        if not ok:
            return []
        Y = np.column_stack(
            [
                signed(self.objectives[n], np.array([h["values"][n] for h in ok]))
                for n in self.objectives
            ]
        )
        return [dict(h) for h, keep in zip(ok, pareto_mask(Y), strict=True) if keep]

    def hypervolume(self, reference: Mapping[str, float]) -> float:
        """Hypervolume of the observed Pareto front above ``reference`` (objective units)."""
        front = self.pareto()
        if not front:
            return 0.0
        Y = np.column_stack(
            [
                signed(self.objectives[n], np.array([h["values"][n] for h in front]))
                for n in self.objectives
            ]
        )
        ref = [float(signed(self.objectives[n], np.array(reference[n]))) for n in self.objectives]
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
            "multi_objective": self.multi_objective,
            "reference": self.reference,
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
        """Rebuild a campaign from :meth:`to_dict` data (this version's or version 1's); raises
        :class:`CampaignFileError`."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise CampaignFileError(where, f"not a {FORMAT} file (missing or wrong 'format')")
        if data.get("version") not in READS_VERSIONS:
            raise CampaignFileError(
                where,
                f"version {data.get('version')!r} is not supported "
                f"(this sigmalab reads versions {', '.join(map(str, READS_VERSIONS))})",
            )
        try:
            c = cls(
                data["space"],
                data["objectives"],
                seed=data["seed"],
                outcome_constraints=data["outcome_constraints"],
                acquisition=data["acquisition"],
                ucb_beta=data["ucb_beta"],
                multi_objective=data.get("multi_objective", "ehvi"),
                reference=data.get("reference"),
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
        except (TypeError, ValueError, AttributeError) as err:
            raise CampaignFileError(where, f"malformed content: {err}") from None
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


def _check_objectives(objectives) -> dict[str, str]:
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
    return dict(objectives)


def _check_constraints(constraints) -> dict[str, dict[str, float]]:
    if not isinstance(constraints, Mapping):
        raise SpaceError(
            "outcome_constraints", f"expected a mapping, got {constraints!r}", what="campaign"
        )
    out = {}
    for name, bounds in constraints.items():
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
        out[name] = {k: float(v) for k, v in bounds.items()}
    return out


def _check_choice(field: str, value, allowed: tuple) -> str:
    if value not in allowed:
        raise SpaceError(field, f"expected one of {allowed}, got {value!r}", what="campaign")
    return value


def _check_reference(reference, objectives: dict) -> dict[str, float] | None:
    if reference is None:
        return None
    if not isinstance(reference, Mapping) or set(reference) != set(objectives):
        raise SpaceError(
            "reference",
            f"expected a value for each objective {list(objectives)}, got {reference!r}",
            what="campaign",
        )
    for name, v in reference.items():
        if not _finite(v):
            raise SpaceError(f"reference.{name}", f"expected a number, got {v!r}", what="campaign")
    return {name: float(reference[name]) for name in objectives}
