"""``retrofit fit`` from the shell: real SB3 and d3rlpy files, the shipped data, tiny budgets.

Each case runs the installed console command, so the round trip is the user's: a policy file in,
a policy file of the same format out that its own library loads, and a report that opens.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import d3rlpy
import numpy as np
import pytest
import stable_baselines3 as sb3
import torch
from d3rlpy.logging import NoopAdapterFactory

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.envs import make_env
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import load_policy, save_policy
from retrofit.pretrain import action_bounds

RETROFIT = str(Path(sys.executable).with_name("retrofit"))


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([RETROFIT, *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def data_path() -> Path:
    return default_dataset_path("OfflineBallRun-v0")


def test_sb3_ppo_zip_round_trip(tmp_path: Path, data_path: Path) -> None:
    model = sb3.PPO("MlpPolicy", make_env("BallRun"), seed=0, device="cpu", n_steps=64,
                    batch_size=32, policy_kwargs={"net_arch": [16]})
    model.save(tmp_path / "ppo.zip")
    result = run("fit", str(tmp_path / "ppo.zip"), str(data_path), "--algo", "PPO",
                 "--cost-threshold", "20", "--steps", "5", "--episodes", "1",
                 "--out", str(tmp_path / "ppo_safe.zip"), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    safe = sb3.PPO.load(tmp_path / "ppo_safe.zip", device="cpu")
    before = dict(model.policy.state_dict())
    after = safe.policy.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before), "nothing was trained"
    report = json.loads((tmp_path / "ppo_safe_fit" / "report.json").read_text())
    assert report["steps"] == 5 and report["method"] == "prefine"
    assert {"reference", "retrofitted"} <= set(report)
    for name in ("reward_cost.png", "learning_curves.png", "report.md", "metrics.csv"):
        assert (tmp_path / "ppo_safe_fit" / name).stat().st_size > 0
    assert (tmp_path / "ppo_safe_fit" / "reward_cost.png").read_bytes()[:4] == b"\x89PNG"

    again = run("fit", str(tmp_path / "ppo.zip"), str(data_path), "--algo", "PPO",
                "--cost-threshold", "20", "--steps", "5", "--out",
                str(tmp_path / "ppo_safe.zip"), "--quiet")
    assert again.returncode == 2 and "--overwrite" in again.stderr  # nothing destroyed


def test_d3rlpy_d3_round_trip(tmp_path: Path, data_path: Path) -> None:
    data = TrajectoryDataset.from_hdf5(data_path).select_episodes(list(range(4)))
    mdp = d3rlpy.dataset.MDPDataset(data.observations, data.actions, data.rewards,
                                    data.terminals, timeouts=data.timeouts)
    algo = d3rlpy.algos.BCConfig(
        encoder_factory=d3rlpy.models.VectorEncoderFactory(hidden_units=[16]), batch_size=32,
    ).create(device="cpu:0")
    algo.fit(mdp, n_steps=2, n_steps_per_epoch=2, logger_adapter=NoopAdapterFactory(),
             show_progress=False)
    algo.save(str(tmp_path / "bc.d3"))
    result = run("fit", str(tmp_path / "bc.d3"), str(data_path), "--cost-threshold", "20",
                 "--steps", "5", "--out", str(tmp_path / "bc_safe.d3"), "--quiet",
                 "--device", "cpu")
    assert result.returncode == 0, result.stderr
    safe = d3rlpy.load_learnable(str(tmp_path / "bc_safe.d3"), device="cpu:0")
    obs = data.observations[:8]
    assert not np.allclose(safe.predict(obs), algo.predict(obs)), "nothing was trained"


@pytest.mark.parametrize("method", ["bc-safe", "presa"])
def test_retrofit_pt_other_methods(tmp_path: Path, data_path: Path, method: str) -> None:
    data = TrajectoryDataset.from_hdf5(data_path)
    torch.manual_seed(0)
    save_policy(TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                   *action_bounds(data), hidden_sizes=(16, 16)),
                tmp_path / "ref.pt")
    result = run("fit", str(tmp_path / "ref.pt"), str(data_path), "--method", method,
                 "--cost-threshold", "20", "--steps", "3", "--set", "batch_size=8",
                 "--out", str(tmp_path / "out.pt"), "--quiet", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    load_policy(tmp_path / "out.pt")
    report = json.loads((tmp_path / "out_fit" / "report.json").read_text())
    assert report["method"] == method


def test_bad_calls_fail_before_training(tmp_path: Path, data_path: Path) -> None:
    torch.manual_seed(0)
    data = TrajectoryDataset.from_hdf5(data_path)
    save_policy(TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                   *action_bounds(data), hidden_sizes=(8,)), tmp_path / "r.pt")
    cases = [
        (["--out", str(tmp_path / "o.zip")], "suffix"),
        (["--out", str(tmp_path / "o.pt"), "--method", "nope"], "unknown"),
        (["--out", str(tmp_path / "o.pt")], "--cost-threshold"),
        (["--out", str(tmp_path / "o.pt"), "--cost-threshold", "20", "--set", "beta=nan"],
         "beta="),
    ]
    if not torch.cuda.is_available():
        cases.append((["--out", str(tmp_path / "o.pt"), "--cost-threshold", "20", "--device",
                       "cuda"], "CUDA"))
    for extra, message in cases:
        result = run("fit", str(tmp_path / "r.pt"), str(data_path), "--quiet", *extra)
        assert result.returncode == 2, (extra, result.stdout, result.stderr)
        assert message in result.stderr, (extra, result.stderr)
        assert not (tmp_path / "o.pt").exists() and not (tmp_path / "o_fit").exists()
