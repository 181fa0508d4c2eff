"""Recommenders and the campaign's state: expected hypervolume improvement (exact boxes, batches
that spread along a known front, pending experiments, failures), Campaign.predict, version-1
campaign files, settings errors, and no import circle inside optimizer/."""

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from optimizer.acquisition import log_expected_hypervolume_improvement
from optimizer.campaign import Campaign
from optimizer.errors import CampaignError, ObservationError, SpaceError
from optimizer.pareto import hypervolume, nondominated_boxes
from optimizer.recommenders import EHVIBatch, GPBatch, ParEGOBatch, SobolDesign, TwoPhase

REPO = Path(__file__).resolve().parents[1]
V1_FILE = REPO / "tests" / "data" / "campaign_v1.json"  # saved by the version before this split
SPEC = {"x": {"type": "real", "low": 0, "high": 1}, "y": {"type": "real", "low": 0, "high": 1}}
TWO = {"f1": "maximize", "f2": "maximize"}


def two_objectives(p: dict) -> dict:
    """Known front: y = 0 and x in [0.2, 0.8] (f1 peaks at x = 0.2, f2 at x = 0.8)."""
    return {
        "f1": -((p["x"] - 0.2) ** 2) - p["y"],
        "f2": -((p["x"] - 0.8) ** 2) - p["y"],
    }


def true_hypervolume(ref) -> float:
    x = np.linspace(0.2, 0.8, 2001)
    return hypervolume(np.column_stack([-((x - 0.2) ** 2), -((x - 0.8) ** 2)]), ref)


def run(c: Campaign, rounds: int, q: int, f=two_objectives, fails=lambda p: False) -> Campaign:
    for _ in range(rounds):
        batch = c.ask(q)
        c.tell(
            [
                {"id": b["id"], "failed": True}
                if fails(b["params"])
                else {"id": b["id"], "values": f(b["params"])}
                for b in batch
            ]
        )
    return c


@pytest.fixture(scope="module")
def ehvi_campaign():
    return run(Campaign(SPEC, TWO, seed=0), rounds=5, q=3)


def test_box_decomposition_gives_the_exact_hypervolume_improvement():
    rng = np.random.default_rng(0)
    for k in (2, 3):
        front, ref = rng.random((6, k)), np.zeros(k)
        lower, upper = nondominated_boxes(front, ref)
        for y in rng.random((20, k)) * 1.2:
            hvi = hypervolume(np.vstack([front, y]), ref) - hypervolume(front, ref)
            boxes = np.prod(np.clip(np.minimum(y, upper) - lower, 0, None), axis=1).sum()
            assert boxes == pytest.approx(hvi, abs=1e-12)


def test_log_ehvi_matches_monte_carlo_and_keeps_a_slope_far_below_the_front():
    front, ref = np.array([[0.8, 0.2], [0.5, 0.5], [0.2, 0.8]]), np.zeros(2)
    lower, upper = nondominated_boxes(front, ref)
    mean, sd = np.array([[0.6, 0.6], [0.3, 0.3]]), np.array([[0.1, 0.2], [0.05, 0.05]])
    z = np.random.default_rng(1).standard_normal((400_000, 2))
    for m, s, exact in zip(
        mean, sd, np.exp(log_expected_hypervolume_improvement(mean, sd, lower, upper)), strict=True
    ):
        y = m + s * z
        hvi = np.prod(np.clip(np.minimum(y[:, None], upper) - lower, 0, None), axis=2).sum(axis=1)
        assert exact == pytest.approx(hvi.mean(), abs=4 * hvi.std() / np.sqrt(len(z)))
    far = log_expected_hypervolume_improvement(np.array([[-30.0, -30.0], [-31.0, -31.0]]),
                                               np.ones((2, 2)), lower, upper)  # fmt: skip
    assert np.isfinite(far).all() and far[0] > far[1]


def test_ehvi_batches_cover_the_known_front(ehvi_campaign):
    ref = [-0.5, -0.5]
    reached = ehvi_campaign.hypervolume({"f1": ref[0], "f2": ref[1]}) / true_hypervolume(ref)
    assert ehvi_campaign.rounds[-1]["strategy"] == "ehvi"
    assert reached > 0.9
    # the GP rounds' proposals lie near the front (y ≈ 0) and spread along it
    later = [h["params"] for h in ehvi_campaign.history if h["round"] >= 3]
    assert np.median([p["y"] for p in later]) < 0.1
    assert np.ptp([p["x"] for p in later]) > 0.2


def test_ehvi_respects_pending_experiments_and_saved_state(ehvi_campaign, tmp_path):
    c = Campaign.from_dict(ehvi_campaign.to_dict())
    first = c.ask(1)[0]["params"]
    again = Campaign.from_dict(ehvi_campaign.to_dict())
    again.pending["outside"] = {"params": first, "round": c.round, "asked_at": None}
    second = again.ask(1)[0]["params"]
    assert abs(second["x"] - first["x"]) + abs(second["y"] - first["y"]) > 0.02
    c.save(tmp_path / "c.json")
    loaded = Campaign.load(tmp_path / "c.json")
    assert loaded.ask(2) == c.ask(2)


def test_ehvi_learns_where_experiments_fail():
    c = Campaign(SPEC, TWO, seed=1, n_initial=6)
    fails = lambda p: p["x"] > 0.7  # noqa: E731  (part of the front fails)
    run(c, rounds=2, q=3, fails=fails)
    n_before = len(c.history)
    run(c, rounds=4, q=3, fails=fails)
    assert sum(h["failed"] for h in c.history[n_before:]) <= 2  # random would fail ~4 of 12


def test_recommender_follows_the_settings():
    assert isinstance(Campaign(SPEC, {"f1": "maximize"}).recommender.model, GPBatch)
    assert isinstance(Campaign(SPEC, TWO).recommender.model, EHVIBatch)
    parego = Campaign(SPEC, TWO, multi_objective="parego")
    assert isinstance(parego.recommender.model, ParEGOBatch)
    assert isinstance(parego.recommender, TwoPhase)
    assert isinstance(parego.recommender.initial, SobolDesign)
    run(parego, rounds=3, q=2)
    assert [r["strategy"] for r in parego.rounds] == ["sobol", "sobol", "parego"]


def test_constructor_only_checks_and_stores():
    c = Campaign(SPEC, TWO, seed=4, reference={"f1": -1, "f2": -2})
    assert (c.history, c.pending, c.rounds, c.hyperparameters, c.round) == ([], {}, [], {}, 0)
    assert c.to_dict()["reference"] == {"f1": -1.0, "f2": -2.0}
    for kwargs, field in [
        ({"reference": {"f1": -1}}, "reference"),
        ({"reference": {"f1": -1, "f2": "low"}}, "reference.f2"),
        ({"multi_objective": "nsga"}, "multi_objective"),
        ({"n_initial": 0}, "n_initial"),
        ({"ucb_beta": -1}, "ucb_beta"),
    ]:
        with pytest.raises(SpaceError, match=f"campaign, {field}"):
            Campaign(SPEC, TWO, **kwargs)


def test_predict_is_the_campaigns_gp_and_changes_nothing(ehvi_campaign):
    state = json.dumps(ehvi_campaign.to_dict())
    observed = ehvi_campaign.successes()[:5]
    mean, sd = ehvi_campaign.predict([h["params"] for h in observed])
    for name in TWO:
        told = np.array([h["values"][name] for h in observed])
        assert np.abs(mean[name] - told).max() < 0.02
    far_mean, far_sd = ehvi_campaign.predict({"x": 0.5, "y": 1.0})
    assert far_sd["f1"][0] > sd["f1"].max()
    assert json.dumps(ehvi_campaign.to_dict()) == state
    with pytest.raises(ObservationError, match=r"predict\[0\].x"):
        ehvi_campaign.predict([{"x": 2.0, "y": 0.0}])
    with pytest.raises(CampaignError, match="two successful"):
        Campaign(SPEC, TWO).predict({"x": 0.1, "y": 0.1})


def test_version_1_campaign_file_still_loads_and_goes_on(tmp_path):
    path = tmp_path / "campaign.json"
    shutil.copy(V1_FILE, path)
    data = json.loads(path.read_text())
    assert data["version"] == 1 and "multi_objective" not in data
    c = Campaign.load(path)
    assert [h["id"] for h in c.history] == [h["id"] for h in data["history"]]
    assert set(c.pending) == set(data["pending"]) and c.round == data["round"]
    assert c.multi_objective == "ehvi" and c.outcome_constraints == {"sigma_el": {"min": -2.5}}
    batch = c.ask(2)
    assert batch.strategy == "ehvi" and len(batch) == 2
    c.save(path)
    assert json.loads(path.read_text())["version"] == 2
    assert Campaign.load(path).to_dict() == c.to_dict()


def _imports(path: Path) -> set[str]:
    """optimizer modules imported by ``path`` anywhere (functions included), except under
    ``if TYPE_CHECKING:`` (annotations only)."""
    names = set()
    stack = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        stack.extend(ast.iter_child_nodes(node))
    return {n for n in names if n.startswith("optimizer.") and "virtual_lab" not in n}


def test_no_import_circle_inside_the_optimizer():
    root = REPO / "optimizer"
    graph = {}
    for path in root.rglob("*.py"):
        if "virtual_lab" in path.parts:
            continue
        module = ".".join(path.relative_to(REPO).with_suffix("").parts).removesuffix(".__init__")
        graph[module] = _imports(path)

    def reaches(start: str, target: str, seen: set) -> bool:
        for nxt in graph.get(start, ()):
            if nxt == target or (nxt not in seen and reaches(nxt, target, seen | {nxt})):
                return True
        return False

    circles = [
        m for m in graph if not m.endswith(("optimizer", "recommenders")) and reaches(m, m, {m})
    ]
    assert circles == []
    assert "optimizer.plots" not in graph["optimizer.campaign"]


class _KnownRisk:
    """A failure model whose P(success) is the first encoded coordinate."""

    def log_prob_success(self, X):
        return np.log(np.clip(np.asarray(X, float)[:, 0], 1e-12, 1.0))


def test_a_batch_spends_its_failure_risk_on_one_member():
    from optimizer.models import Feasibility
    from optimizer.recommenders.base import BatchRisk

    feas = Feasibility(failure=_KnownRisk(), p_success_min=0.7)
    observed = np.array([[0.95], [0.6]])  # the likeliest success among the observations: 0.95
    alone = BatchRisk(feas, 1, observed)
    assert alone.member().p_success_min == 0.7  # sequential: the campaign's own threshold
    risk = BatchRisk(feas, 3, observed)
    thresholds = []
    for p_chosen in (0.5, 0.66, 0.9):
        thresholds.append(risk.member().p_success_min)
        risk.add(np.array([[p_chosen]]))
    # the first may probe the edge (never below a coin flip), the second must make up for it,
    # the third no longer may take more than the sequential risk
    assert thresholds[0] == 0.5
    assert thresholds[1] == pytest.approx(3 * 0.7 - 0.5 - 0.95)
    assert thresholds[2] == 0.7
    assert BatchRisk(Feasibility(p_success_min=0.7), 3, observed).member().p_success_min == 0.7


def test_after_a_failure_a_batch_risks_the_failure_edge_at_most_once():
    from optimizer.recommenders.base import model_context

    c = Campaign(SPEC, TWO, seed=2, n_initial=6)
    fails = lambda p: p["x"] + p["y"] < 0.3  # noqa: E731  (the front's f1 end fails)
    run(c, rounds=2, q=3, fails=fails)
    assert any(h["failed"] for h in c.history)
    lowest = []
    for _ in range(3):
        failure = model_context(c, np.random.default_rng(0)).feasibility.failure
        batch = c.ask(3)
        p = np.exp(failure.log_prob_success(c.space.encode([b["params"] for b in batch])))
        # never likelier to fail than to succeed, and one member at most below p_success_min
        assert (p >= 0.5 - 0.05).all() and (p < 0.7 - 0.05).sum() <= 1
        lowest.append(p.min())
        c.tell(
            [
                {"id": b["id"], "failed": True}
                if fails(b["params"])
                else {"id": b["id"], "values": two_objectives(b["params"])}
                for b in batch
            ]
        )
    assert min(lowest) < 0.65  # the edge is probed (a per-member cap would keep every P ≥ 0.7)
