"""``Retrofitter.fit(..., select_checkpoint=...)``: a real PREFINE fit on the shipped BallRun data
keeps its policy along training, returns the copy the offline estimate selects, writes the
safety report, and a resumed fit selects exactly as an uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from retrofit import Retrofitter
from retrofit.adapters import wrap
from retrofit.data.dataset import TrajectoryDataset, action_bounds
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, DataError
from retrofit.estimate import CheckpointSelection, FQEConfig
from retrofit.estimate.checkpoints import CheckpointKeeper
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy

FQE = FQEConfig(n_bootstrap=3, hidden_sizes=(16, 16), batch_size=64, n_iterations=8,
                steps_per_iteration=5, seed=0)
STEPS, EVERY = 60, 20


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    return TrajectoryDataset.from_hdf5(default_dataset_path("OfflineBallRun-v0"))


def _policy(data: TrajectoryDataset) -> ClippedGaussianPolicy:
    torch.manual_seed(0)
    policy = ClippedGaussianPolicy(data.observations.shape[1], data.actions.shape[1],
                                   *action_bounds(data), hidden_sizes=(16, 16), fixed_std=0.2)
    policy.set_observation_normalizer(data.observations.mean(0), data.observations.std(0))
    return policy


def _fit(data: TrajectoryDataset, folder: Path, **kwargs: object) -> Retrofitter:
    torch.set_num_threads(1)
    split = data.split_preferences(cost_threshold=20, n_preferred=20, n_nonpreferred=5, seed=0)
    retrofitter = Retrofitter(_policy(data), device="cpu", progress=False, log_dir=folder,
                              checkpoint_every=EVERY, batch_size=32, learning_rate=1e-3)
    retrofitter.fit(*split, steps=STEPS, select_checkpoint=CheckpointSelection(
        data, 20.0, every=EVERY, fqe=FQE), **kwargs)
    return retrofitter


class Stop(Exception):
    pass


def test_fit_returns_the_selected_copy_and_a_resume_selects_the_same(data, tmp_path):
    whole = _fit(data, tmp_path / "whole")
    report = whole.safety_report_
    assert report is not None
    names = [e.name for e in report.estimates]
    assert names == ["step 20", "step 40", "step 60 (final)"]
    chosen = report.selection.name
    kept = {e.name: p for e, p in zip(report.estimates, [*_kept(tmp_path / "whole", data),
                                                            whole.trainer.policy], strict=True)}
    for a, b in zip(whole.policy_.parameters(), kept[chosen].parameters(), strict=True):
        assert torch.equal(a.detach().cpu(), b.detach().cpu())
    payload = json.loads((tmp_path / "whole" / "safety_report.json").read_text())
    assert payload["selection"]["name"] == chosen and payload["kept_every"] == EVERY
    assert (tmp_path / "whole" / "safety_report.png").stat().st_size > 0

    def crash(step: int, _: object) -> None:
        if step >= 45:
            raise Stop

    with pytest.raises(Stop):
        _fit(data, tmp_path / "resumed", callback=crash, callback_every=5)
    assert sorted(p.name for p in (tmp_path / "resumed" / "kept").iterdir()) == \
        ["step_20.pt", "step_40.pt"]
    retrofitter = Retrofitter(_policy(data), device="cpu", progress=False,
                              log_dir=tmp_path / "resumed", checkpoint_every=EVERY,
                              batch_size=32, learning_rate=1e-3)
    split = data.split_preferences(cost_threshold=20, n_preferred=20, n_nonpreferred=5, seed=0)
    retrofitter.fit(*split, steps=STEPS, resume=True, select_checkpoint=CheckpointSelection(
        data, 20.0, every=EVERY, fqe=FQE))
    again = json.loads((tmp_path / "resumed" / "safety_report.json").read_text())
    assert again["checkpoints"] == payload["checkpoints"]
    assert again["selection"] == payload["selection"]


def _kept(folder: Path, data: TrajectoryDataset) -> list[object]:
    keeper = CheckpointKeeper(wrap(_policy(data)), EVERY, folder / "kept",
                              resume_step=STEPS - 1)
    return [keeper.kept[s] for s in sorted(keeper.kept)]


def test_a_new_run_refuses_kept_copies_of_an_earlier_one(data, tmp_path):
    folder = tmp_path / "kept"
    folder.mkdir()
    (folder / "step_20.pt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="earlier run"):
        CheckpointKeeper(wrap(_policy(data)), EVERY, folder)
    CheckpointKeeper(wrap(_policy(data)), EVERY, folder, overwrite=True)
    assert not any(folder.iterdir())


def test_bad_selection_settings_are_refused_before_training(data):
    with pytest.raises(ConfigError, match="every"):
        CheckpointSelection(data, 20.0, every=0)
    with pytest.raises(ConfigError, match="cost_threshold"):
        CheckpointSelection(data, float("nan"))
    no_costs = type("NoCosts", (), {"rewards": np.zeros(3), "costs": None})()
    with pytest.raises(DataError, match="costs"):
        CheckpointSelection(no_costs, 20.0)
