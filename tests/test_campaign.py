"""Campaign ask/tell: determinism across processes, pending, shared settings, failures, errors."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from optimizer.campaign import Campaign
from optimizer.errors import CampaignError, CampaignFileError, ObservationError, SpaceError
from optimizer.plots import plot_progress

REPO = Path(__file__).resolve().parents[1]
SPEC = {
    "binder_wt_pct": {"type": "real", "low": 0, "high": 3},
    "process": {"type": "categorical", "choices": ["dry", "wet"]},
    "press_MPa": {"type": "integer", "low": 100, "high": 500},
    "anneal_C": {"type": "real", "low": 20, "high": 200},
}
FIRST = {"binder_wt_pct": 1.0, "process": "dry", "press_MPa": 300, "anneal_C": 100.0}


def landscape(p: dict) -> float:
    """Known truth: best at dry, 0.5 wt%, high pressure; anneal_C does not matter."""
    penalty = 0.0 if p["process"] == "dry" else 1.0
    return -4.0 - (p["binder_wt_pct"] - 0.5) ** 2 - penalty + 0.5 * (p["press_MPa"] - 100) / 400


def run_loop(c: Campaign, rounds: int, q: int, f=landscape, fails=lambda p: False):
    for _ in range(rounds):
        batch = c.ask(q)
        c.tell(
            [
                {"id": b["id"], "failed": True, "reason": "film broke"}
                if fails(b["params"])
                else {
                    "id": b["id"],
                    "values": {"sigma_ion": f(b["params"])},
                    "sd": {"sigma_ion": 0.01},
                }
                for b in batch
            ]
        )
    return c


@pytest.fixture(scope="module")
def trained():
    """A single-objective campaign past its initial design (GP rounds), saved state reused."""
    return run_loop(Campaign(SPEC, {"sigma_ion": "maximize"}, seed=3), rounds=4, q=3)


def test_ask_returns_ids_and_valid_params(trained):
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, seed=1)
    batch = c.ask(4)
    assert len({b["id"] for b in batch}) == 4
    for b in batch:
        assert c.space.validate(b["params"]) == b["params"]
    assert set(c.pending) == {b["id"] for b in batch}
    assert batch.strategy == "sobol"


def test_gp_rounds_report_expected_improvement_and_length_scale_ranking(trained):
    gp_rounds = [r for r in trained.rounds if r["strategy"] == "gp"]
    assert gp_rounds and all(r["expected_improvement"] >= 0 for r in gp_rounds)
    ranking = gp_rounds[-1]["ranking"]
    assert set(ranking) == set(SPEC)
    # anneal_C does not enter the landscape: it must not be ranked most influential
    assert ranking[-1] == "anneal_C" or ranking.index("anneal_C") > ranking.index("binder_wt_pct")


def test_closed_loop_finds_the_known_optimum():
    c = run_loop(Campaign(SPEC, {"sigma_ion": "maximize"}, seed=0), rounds=8, q=3)
    optimum = landscape({"binder_wt_pct": 0.5, "process": "dry", "press_MPa": 500})
    assert optimum - c.best()["values"]["sigma_ion"] < 0.05


def test_saved_campaign_proposes_the_same_batch_in_a_new_process(trained, tmp_path):
    c = Campaign.from_dict(trained.to_dict())
    c.ask(2)  # leave two pending: they must be accounted for after loading too
    path = tmp_path / "campaign.json"
    c.save(path)
    code = (
        "import json, sys\n"
        "from optimizer.campaign import Campaign\n"
        "c = Campaign.load(sys.argv[1])\n"
        "print(json.dumps(list(c.ask(3, shared=['anneal_C']))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert json.loads(out.stdout) == json.loads(json.dumps(list(c.ask(3, shared=["anneal_C"]))))


def test_pending_experiments_are_never_proposed_again(trained):
    c = Campaign.from_dict(trained.to_dict())
    first, second = c.ask(3), c.ask(3)
    X = c.space.encode([b["params"] for b in [*first, *second]])
    gaps = [np.abs(X[i] - X[j]).max() for i in range(6) for j in range(i)]
    assert min(gaps) > 1e-3
    assert len(c.pending) == 6


def test_discrete_space_runs_out_instead_of_repeating():
    spec = {
        "process": {"type": "categorical", "choices": ["dry", "wet"]},
        "press_MPa": {"type": "integer", "low": 1, "high": 3},
    }
    c = Campaign(spec, {"sigma_ion": "maximize"}, seed=0, n_initial=2)
    c.tell(
        [
            {"params": {"process": "dry", "press_MPa": 1}, "values": {"sigma_ion": -4.0}},
            {"params": {"process": "wet", "press_MPa": 3}, "values": {"sigma_ion": -5.0}},
        ]
    )
    seen = {(h["params"]["process"], h["params"]["press_MPa"]) for h in c.history}
    for _ in range(4):
        (b,) = c.ask(1)
        seen.add((b["params"]["process"], b["params"]["press_MPa"]))
    assert len(seen) == 6
    with pytest.raises(CampaignError, match="no admissible new candidate"):
        c.ask(1)


@pytest.mark.parametrize("phase_rounds", [0, 3])
def test_batch_shared_parameter_is_equal_across_the_batch(phase_rounds):
    c = run_loop(Campaign(SPEC, {"sigma_ion": "maximize"}, seed=5), rounds=phase_rounds, q=3)
    batch = c.ask(4, shared=["anneal_C", "process"])
    assert batch.strategy == ("gp" if phase_rounds else "sobol")
    assert len({b["params"]["anneal_C"] for b in batch}) == 1
    assert len({b["params"]["process"] for b in batch}) == 1
    # The members differ in the free parameters (Kriging believer plus exclusion of repeats).
    assert len({(b["params"]["binder_wt_pct"], b["params"]["press_MPa"]) for b in batch}) == 4


def test_failures_are_learned_not_invented():
    spec = {"x": {"type": "real", "low": 0, "high": 1}, "y": {"type": "real", "low": 0, "high": 1}}

    def f(p):
        return -((p["x"] - 0.6) ** 2) - (p["y"] - 0.5) ** 2

    def fails(p):  # 40 % of the space fails
        return p["x"] < 0.4

    c = Campaign(spec, {"sigma_ion": "maximize"}, seed=2, n_initial=8)
    run_loop(c, rounds=4, q=2, f=f, fails=fails)  # 8 Sobol points: some fail
    n_before = len(c.history)
    run_loop(c, rounds=5, q=2, f=f, fails=fails)
    later = c.history[n_before:]
    assert sum(h["failed"] for h in c.history[:n_before]) >= 2
    assert sum(h["failed"] for h in later) <= 1  # random proposals would fail 4 of 10
    failed = [h for h in c.history if h["failed"]]
    assert all(h["values"] == {} and h["reason"] == "film broke" for h in failed)
    df = c.to_dataframe()
    assert (df["status"] == "failed").sum() == len(failed)
    assert df.loc[df["status"] == "failed", "sigma_ion"].isna().all()


def _failure_edge_campaign(**settings) -> Campaign:
    """Known truth: y = −x is best at low x, but every x < 0.3 fails; both sides are observed."""
    c = Campaign(
        {"x": {"type": "real", "low": 0, "high": 1}}, {"y": "maximize"}, seed=0, **settings
    )
    c.tell(
        [{"params": {"x": x}, "failed": True} for x in (0.0, 0.1, 0.2, 0.25, 0.28)]
        + [{"params": {"x": x}, "values": {"y": -x}} for x in (0.3, 0.32, 0.4, 0.6, 0.8, 1.0)]
    )
    return c


def test_a_priced_failure_keeps_proposals_out_of_the_failure_region():
    # Unpriced and barely constrained, the GP's upward extrapolation wins: it proposes x < 0.3.
    risky = _failure_edge_campaign(p_success_min=0.05, failure_cost=0.0).ask(2)
    assert all(b["params"]["x"] < 0.3 for b in risky)
    # Defaults: the improvement left (at most 0.02 below x = 0.3) does not pay for the risk.
    safe = _failure_edge_campaign().ask(2)
    xs = [b["params"]["x"] for b in safe]
    assert all(x > 0.3 for x in xs)
    assert abs(xs[0] - xs[1]) > 0.05  # the batch does not pile onto one point


def test_failure_settings_are_checked_and_saved(tmp_path):
    with pytest.raises(SpaceError, match="campaign, failure_cost"):
        Campaign(SPEC, {"sigma_ion": "maximize"}, failure_cost=-1)
    with pytest.raises(SpaceError, match="campaign, p_success_min"):
        Campaign(SPEC, {"sigma_ion": "maximize"}, p_success_min=1.5)
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, p_success_min=0.9, failure_cost=0.5)
    c.save(tmp_path / "c.json")
    loaded = Campaign.load(tmp_path / "c.json")
    assert (loaded.p_success_min, loaded.failure_cost) == (0.9, 0.5)


def test_linear_constraint_holds_for_every_proposal():
    spec = {
        "parameters": {f: {"type": "real", "low": 0, "high": 1} for f in ("a", "b", "c")},
        "constraints": [{"coefficients": {"a": 1, "b": 1, "c": 1}, "op": "<=", "rhs": 1}],
    }
    c = Campaign(spec, {"sigma_ion": "maximize"}, seed=0)
    run_loop(c, rounds=4, q=2, f=lambda p: p["a"] + 2 * p["b"] + 3 * p["c"])  # pushes to the edge
    assert all(sum(h["params"].values()) <= 1 + 1e-9 for h in c.history)
    assert c.best()["values"]["sigma_ion"] > 2.5  # optimum 3 at c = 1


@pytest.mark.parametrize(
    ("entry", "where"),
    [
        (
            {"params": {**FIRST, "colour": "red"}, "values": {"sigma_ion": -4}},
            "tell[1].params.colour",
        ),
        (
            {"params": {**FIRST, "press_MPa": 900}, "values": {"sigma_ion": -4}},
            "tell[1].params.press_MPa",
        ),
        (
            {"params": {**FIRST, "process": "damp"}, "values": {"sigma_ion": -4}},
            "tell[1].params.process",
        ),
        ({"id": "r999-0", "values": {"sigma_ion": -4}}, "tell[1].id"),
        ({"params": FIRST, "values": {}}, "tell[1].values.sigma_ion"),
        (
            {"params": FIRST, "values": {"sigma_ion": -4}, "sd": {"sigma_ion": -1}},
            "tell[1].sd.sigma_ion",
        ),
        ({"params": FIRST, "values": {"sigma_ion": -4, "sigma_x": 1}}, "tell[1].values.sigma_x"),
        ({"params": FIRST, "value": {"sigma_ion": -4}}, "tell[1]"),
    ],
)
def test_bad_tell_raises_and_leaves_campaign_and_file_untouched(tmp_path, entry, where):
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, seed=0)
    batch = c.ask(1)
    path = tmp_path / "c.json"
    c.save(path)
    before = path.read_bytes()
    good = {"id": batch[0]["id"], "values": {"sigma_ion": -4.2}}
    with pytest.raises(ObservationError) as err:
        c.tell([good, entry])
    assert err.value.where == where and "\n" not in str(err.value)
    assert c.history == [] and list(c.pending) == [batch[0]["id"]]  # the good entry was not kept
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left behind


def test_telling_the_same_id_twice_is_refused():
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, seed=0)
    (b,) = c.ask(1)
    c.tell([{"id": b["id"], "values": {"sigma_ion": -4.0}}])
    with pytest.raises(ObservationError, match="already told"):
        c.tell([{"id": b["id"], "values": {"sigma_ion": -4.0}}])


def test_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CampaignFileError, match="not valid JSON"):
        Campaign.load(bad)
    data = Campaign(SPEC, {"sigma_ion": "maximize"}).to_dict()
    (tmp_path / "v.json").write_text(json.dumps({**data, "version": 99}))
    with pytest.raises(CampaignFileError, match="version 99"):
        Campaign.load(tmp_path / "v.json")
    with pytest.raises(SpaceError):
        Campaign(SPEC, {"sigma_ion": "maximise"})


def test_outcome_constraint_decides_best():
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, outcome_constraints={"sigma_el": {"min": -2}})
    c.tell(
        [
            {"params": FIRST, "values": {"sigma_ion": -3.0, "sigma_el": -3.0}},
            {
                "params": {**FIRST, "press_MPa": 200},
                "values": {"sigma_ion": -4.0, "sigma_el": -1.0},
            },
        ]
    )
    assert c.best()["params"]["press_MPa"] == 200


def test_two_objectives_give_the_pareto_front_and_valid_proposals(tmp_path):
    c = Campaign(SPEC, {"sigma_ion": "maximize", "binder_wt_pct_out": "minimize"}, seed=0)
    for _ in range(4):
        batch = c.ask(3)
        c.tell(
            [
                {
                    "id": b["id"],
                    "values": {
                        "sigma_ion": landscape(b["params"]),
                        "binder_wt_pct_out": b["params"]["binder_wt_pct"],
                    },
                }
                for b in batch
            ]
        )
    front = c.pareto()
    Y = np.array([[h["values"]["sigma_ion"], -h["values"]["binder_wt_pct_out"]] for h in c.history])
    front_Y = {(h["values"]["sigma_ion"], -h["values"]["binder_wt_pct_out"]) for h in front}
    for y in Y:  # brute force: on the front iff nobody dominates it
        dominated = any((o >= y).all() and (o > y).any() for o in Y)
        assert (tuple(y) in front_Y) == (not dominated)
    assert c.hypervolume({"sigma_ion": -6, "binder_wt_pct_out": 3}) > 0
    with pytest.raises(CampaignError):
        c.best()
    plot_progress(c, tmp_path / "progress.png")
    assert (tmp_path / "progress.png").stat().st_size > 0


class FakeStudy:
    """Recipe-level log10 σ draws shaped like StudyResult.log10_sigma_draws."""

    def log10_sigma_draws(self, kind, temperature_C):
        assert (kind, temperature_C) == ("ionic", 30)
        unit = np.array([-1.0, 1.0])  # mean 0, population sd 1
        draws = np.stack([-4.1 + 0.05 * unit, -5.3 + 0.2 * unit])
        return xr.DataArray(draws, dims=("recipe", "sample"), coords={"recipe": ["dry-1", "wet-1"]})


def test_tell_study_closes_matching_pending_proposal():
    c = Campaign(SPEC, {"sigma_ion": "maximize"}, seed=0)
    (b,) = c.ask(1)
    c.tell_study(
        FakeStudy(),
        {"dry-1": b["params"], "wet-1": {**FIRST, "process": "wet"}},
        source={"result_id": "res-7"},
    )
    assert not c.pending
    by_id = {h["id"]: h for h in c.history}
    assert by_id[b["id"]]["values"]["sigma_ion"] == pytest.approx(-4.1)
    assert by_id[b["id"]]["sd"]["sigma_ion"] == pytest.approx(0.05)
    assert by_id[b["id"]]["source"]["result_id"] == "res-7"
    assert len(c.history) == 2 and c.to_dataframe()["sd_sigma_ion"].tolist() == pytest.approx(
        [0.05, 0.2]
    )


def test_observations_from_study_says_what_is_missing_and_reads_saved_results():
    from optimizer import observations_from_study

    recipes = {"dry-1": {"id": "r001-0"}, "moist-1": {"params": FIRST}}
    with pytest.raises(ObservationError, match="moist-1: analysis gave no ionic conductivity"):
        observations_from_study(FakeStudy(), ["sigma_ion"], recipes, temperature_C=30)
    failed = observations_from_study(FakeStudy(), ["sigma_ion"], recipes, temperature_C=30,
                                     missing="fail")  # fmt: skip
    assert failed[0]["values"] == {"sigma_ion": pytest.approx(-4.1)}
    assert failed[1]["failed"] and "no ionic conductivity at 30 °C" in failed[1]["reason"]
    skipped = observations_from_study(FakeStudy(), ["sigma_ion"], recipes, temperature_C=30,
                                      missing="skip")  # fmt: skip
    assert [o["id"] for o in skipped] == ["r001-0"]
    with pytest.raises(ObservationError, match="no conductivity kind"):
        observations_from_study(FakeStudy(), ["capacity"], recipes)
    # the DataTree of a saved result.nc: log10 σ(T) = log10 σ_ref − slope(Ea)·(1/T − 1/T_ref)
    rng = np.random.default_rng(0)
    post = xr.Dataset(
        {
            "log10_sigma_ref": (
                ("chain", "draw", "recipe"),
                -4 + 0.1 * rng.standard_normal((2, 50, 1)),
            ),
            "Ea": (("chain", "draw", "recipe"), 0.4 + 0.01 * rng.standard_normal((2, 50, 1))),
        },
        coords={"recipe": ["dry-1"]},
    )
    tree = xr.DataTree.from_dict({"/arrhenius/ionic/posterior": post})
    tree["arrhenius/ionic"].attrs["reference_temperature_K"] = 303.15
    (obs,) = observations_from_study(tree, ["sigma_ion"], {"dry-1": {"id": "r001-0"}})
    draws = post["log10_sigma_ref"]  # at T_ref the slope term vanishes
    assert obs["values"]["sigma_ion"] == pytest.approx(float(draws.mean()), rel=1e-12)
    assert obs["sd"]["sigma_ion"] == pytest.approx(float(draws.std()), rel=1e-12)
    assert obs["source"] == {"recipe": "dry-1", "temperature_C": 30.0}
