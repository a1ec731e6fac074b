"""A short real end-to-end run: shipped data → BC reference → PREFINE → evaluation in BallRun."""

import json

import numpy as np
import pytest

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.demo import DemoConfig, format_table, run_demo
from retrofit.device import cpu_model
from retrofit.policies.io import load_policy


@pytest.mark.parametrize(("task", "observation_dim"), [("OfflineBallRun-v0", 7),
                                              ("OfflineBallCircle-v0", 8)])
def test_shipped_datasets_are_dsrl_format_and_mixed(task, observation_dim):
    path = default_dataset_path(task)
    data = TrajectoryDataset.from_hdf5(path, task=task)
    rewards, costs = data.episode_returns()
    assert data.observation_dim == observation_dim and data.action_dim == 2
    assert path.stat().st_size <= 10 * 2**20
    for cost_threshold in (10, 20, 40):  # enough safe and unsafe trajectories for PREFINE's split
        assert 100 <= np.sum(costs < cost_threshold) and 20 <= np.sum(costs >= cost_threshold)
    assert np.ptp(rewards) > 300


def test_demo_task_has_safe_trajectories_that_keep_most_reward():
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallCircle-v0"),
                                       task="OfflineBallCircle-v0")
    rewards, costs = data.episode_returns()
    top = np.sort(rewards)[-len(rewards) // 10:]
    assert rewards[costs < 20].max() >= 0.8 * top.mean()


def test_demo_runs_end_to_end(tmp_path):
    config = DemoConfig(bc_steps=200, prefine_steps=50, episodes=2, progress=False, device="cpu")
    assert config.task == "OfflineBallCircle-v0"
    report = run_demo(config, tmp_path)
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["task"] == "OfflineBallCircle-v0" and saved["episodes"] == 2
    for key in ("reference", "retrofitted"):
        assert set(saved[key]) == {"normalized_reward", "normalized_cost", "reward", "cost"}
        assert np.isfinite(list(saved[key].values())).all()
    assert saved["fit_wall_clock_s"] > 0
    assert saved["threads"] == 1 and saved["cpu"] == cpu_model() != ""
    assert (tmp_path / "reward_cost.png").stat().st_size > 10_000
    metrics = (tmp_path / "metrics.csv").read_text().splitlines()
    assert len(metrics) == 51  # header + one row per step
    assert "retrofitted" in format_table(report)
    reference = load_policy(tmp_path / "reference.pt")
    retrofitted = load_policy(tmp_path / "retrofitted.pt")
    obs = np.zeros((1, 8), dtype=np.float32)
    assert not np.allclose(reference(torch_tensor(obs))[0].detach().numpy(),
                           retrofitted(torch_tensor(obs))[0].detach().numpy())


def torch_tensor(array):
    import torch

    return torch.as_tensor(array)


@pytest.mark.slow
def test_demo_defaults_meet_the_issue_targets(tmp_path):
    """The full demo: ≥ 50% lower normalised cost while keeping ≥ 80% of the reward."""
    report = run_demo(DemoConfig(progress=False), tmp_path)
    ref, new = report["reference"], report["retrofitted"]
    assert new["normalized_cost"] <= 0.5 * ref["normalized_cost"]
    assert new["normalized_reward"] >= 0.8 * ref["normalized_reward"]
