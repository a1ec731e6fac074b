"""``kill -9`` in the middle of a ``retrofit fit`` loses at most one checkpoint interval, and the
resumed run ends bit for bit where an uninterrupted one ends (PREFINE and PreSa, real processes).
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from retrofit import feedback
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import save_policy

RETROFIT = str(Path(sys.executable).with_name("retrofit"))
STEPS, EVERY = 1500, 150


def command(policy: Path, data: Path, out: Path, method: str) -> list[str]:
    return [RETROFIT, "fit", str(policy), str(data), "--method", method, "--cost-threshold", "20",
            "--steps", str(STEPS), "--checkpoint-every", str(EVERY), "--set", "batch_size=16",
            "--out", str(out), "--quiet", "--device", "cpu"]


def checkpoint_step(folder: Path) -> int:
    path = folder / "checkpoint.pt"
    if not path.exists():
        return 0
    return int(torch.load(path, weights_only=True)["position"]["steps_done"])


@pytest.mark.parametrize("method", ["prefine", "presa"])
def test_kill_9_then_resume_equals_uninterrupted(tmp_path: Path, method: str) -> None:
    data = TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                *action_bounds(data), hidden_sizes=(16, 16))
    policy.set_observation_normalizer(data.observations.mean(0), data.observations.std(0))
    save_policy(policy, tmp_path / "ref.pt")
    source = default_dataset_path("OfflineBallRun-v0")
    if method == "presa":
        source = tmp_path / "fb.h5"
        fb = feedback.synthesize(data.select_episodes(list(range(200))), n_pairs=256,
                                 segment_length=16, cost_threshold=20, seed=0)
        feedback.save(fb, source)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    whole = subprocess.run(command(tmp_path / "ref.pt", source, tmp_path / "whole.pt", method),
                           capture_output=True, text=True, env=env, timeout=600)
    assert whole.returncode == 0, whole.stderr

    killed = subprocess.Popen(command(tmp_path / "ref.pt", source, tmp_path / "b.pt", method),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    folder = tmp_path / "b_fit"
    deadline = time.monotonic() + 300
    while checkpoint_step(folder) < 2 * EVERY and killed.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint appeared"
        time.sleep(0.05)
    assert killed.poll() is None, "the run finished before it could be killed; raise STEPS"
    os.kill(killed.pid, signal.SIGKILL)
    killed.wait()
    assert not (tmp_path / "b.pt").exists()
    at_kill = checkpoint_step(folder)
    assert 0 < at_kill < STEPS

    resumed = subprocess.run(command(tmp_path / "ref.pt", source, tmp_path / "b.pt", method)
                             + ["--resume"], capture_output=True, text=True, env=env, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    a = torch.load(tmp_path / "whole.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    with (folder / "metrics.csv").open() as fh:
        steps = [int(row["step"]) for row in csv.DictReader(fh)]
    assert steps == list(range(1, STEPS + 1)), "metrics lost or duplicated across the kill"
