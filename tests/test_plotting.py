"""retrofit.plotting: the reward-cost figure is a PNG written atomically."""

from __future__ import annotations

import os

import numpy as np
import pytest

from retrofit.errors import DataError
from retrofit.evaluation import EvaluationResult
from retrofit.plotting import plot_learning_curve, plot_reward_cost

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def returns(rng, n, reward, cost):
    return rng.normal(reward, 30, size=n), np.abs(rng.normal(cost, 5, size=n))


def fake_result(rng) -> EvaluationResult:
    rewards, costs = returns(rng, 5, 500, 8)
    zeros = np.zeros(5)
    return EvaluationResult(
        task="OfflineBallRun-v0", cost_threshold=10.0, episodes=5, seed=0, deterministic=True,
        n_envs=1, rewards=rewards, costs=costs, lengths=np.full(5, 100),
        normalized_rewards=zeros, normalized_costs=zeros, reward=0.0, cost=0.0,
        normalized_reward=0.0, normalized_cost=0.0, safe=True, out_of_bounds_fraction=0.0,
        wall_clock_s=0.0,
    )


def test_writes_a_png(tmp_path, rng):
    path = tmp_path / "figs" / "reward_cost.png"  # folder is created
    out = plot_reward_cost(
        path,
        dataset_returns=returns(rng, 200, 400, 30),
        groups={"reference": returns(rng, 20, 700, 40), "retrofitted": returns(rng, 20, 550, 6)},
        cost_threshold=10,
        title="BallRun, κ = 10",
    )
    assert out == path
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert os.listdir(path.parent) == ["reward_cost.png"]  # no temp file left behind


def test_replaces_an_existing_file_and_accepts_results(tmp_path, rng):
    path = tmp_path / "fig.png"
    path.write_bytes(b"old")
    plot_reward_cost(path, None, {"retrofitted": fake_result(rng)}, cost_threshold=10)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_more_groups_than_named_colours(tmp_path, rng):
    groups = {f"seed {i}": returns(rng, 3, 100 * i, i) for i in range(12)}
    plot_reward_cost(tmp_path / "many.png", None, groups, 5, colors={"seed 0": "green"})
    assert (tmp_path / "many.png").exists()


@pytest.mark.parametrize(
    ("value", "match"),
    [(([1.0, 2.0], [1.0]), "rewards has 2 values and costs 1"),
     (([1.0, np.nan], [1.0, 2.0]), "NaN"),
     (([], []), "non-zero"),
     (3.0, "a \\(rewards, costs\\) pair")],
)
def test_bad_returns_are_data_errors_and_write_nothing(tmp_path, value, match):
    path = tmp_path / "bad.png"
    with pytest.raises(DataError, match=match):
        plot_reward_cost(path, None, {"policy": value}, cost_threshold=10)
    assert not path.exists()
    assert os.listdir(tmp_path) == []


def test_does_not_touch_the_pyplot_backend(tmp_path, rng):
    import matplotlib

    before = matplotlib.rcParams["backend"]
    plot_reward_cost(tmp_path / "f.png", returns(rng, 5, 1, 1), {}, cost_threshold=1)
    assert matplotlib.rcParams["backend"] == before


def _curve_rows() -> list[dict]:
    return [
        {"method": "presa", "seed": seed, "step": step, "normalized_reward": 0.6 - step / 1e5,
         "normalized_cost": 3.0 - step / 1e4 + seed, "nu": step / 1000}
        for seed in (0, 1) for step in (1000, 2000, 3000)
    ]


def test_learning_curve_writes_a_png(tmp_path):
    path = plot_learning_curve(tmp_path / "sub" / "curve.png", _curve_rows(),
                               reference=(0.68, 2.85), title="PreSa")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    # rows as csv.DictReader gives them: strings, and an empty ν for non-PreSa methods
    rows = [{k: str(v) for k, v in r.items()} | {"nu": ""} for r in _curve_rows()]
    plot_learning_curve(tmp_path / "strings.png", rows)
    assert (tmp_path / "strings.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([], "empty"),
        ([{"seed": 0, "step": 1, "normalized_reward": 0.1}], "normalized_cost"),
        ([{"seed": 0, "step": 1, "normalized_reward": "x", "normalized_cost": 1}], "numeric"),
        ([{"seed": 0, "step": 1, "normalized_reward": float("nan"), "normalized_cost": 1}],
         "NaN"),
    ],
)
def test_bad_curve_rows_are_data_errors_and_write_nothing(tmp_path, rows, match):
    with pytest.raises(DataError, match=match):
        plot_learning_curve(tmp_path / "curve.png", rows)
    assert not list(tmp_path.iterdir())
