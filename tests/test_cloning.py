"""Behaviour cloning (``train_bc``, ``train_bc_vae``) through the shared likelihood loop."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import DataError
from retrofit.policies.vae import VAEConfig
from retrofit.pretrain import BCConfig, action_bounds, train_bc, train_bc_vae

TASK = "OfflineBallRun-v0"


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    full = TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)
    return full.select_episodes(np.arange(10))


def _fit(data: TrajectoryDataset, kind: str, steps: int, seed: int = 0) -> torch.nn.Module:
    if kind == "gaussian":
        return train_bc(data, BCConfig(steps=steps, hidden_sizes=(32, 32)), device="cpu",
                        seed=seed, progress=False)
    return train_bc_vae(data, VAEConfig(steps=steps, hidden_sizes=(32, 32)), device="cpu",
                        seed=seed, progress=False)


@pytest.mark.parametrize("kind", ["gaussian", "vae"])
def test_cloning_raises_the_likelihood_and_is_seeded(data, kind):
    obs, act = torch.as_tensor(data.observations), torch.as_tensor(data.actions)

    def mean_mse(policy: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(((policy.deterministic_action(obs) - act) ** 2).sum(-1).mean())

    untrained, trained = _fit(data, kind, 1), _fit(data, kind, 300)
    assert mean_mse(trained) < 0.8 * mean_mse(untrained)
    assert not trained.training and trained.train_wall_clock_s > 0
    np.testing.assert_allclose(trained.obs_mean.numpy(), data.observations.mean(0), rtol=1e-5)
    again, other = _fit(data, kind, 300), _fit(data, kind, 300, seed=1)
    for name, value in trained.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    assert not torch.equal(next(trained.parameters()), next(other.parameters()))


@pytest.mark.parametrize("kind", ["gaussian", "vae"])
def test_empty_dataset_is_a_data_error_naming_the_method(data, kind):
    # TrajectoryDataset refuses to be empty; a duck-typed dataset can still be
    empty = SimpleNamespace(observations=data.observations[:0], actions=data.actions[:0])
    low, high = action_bounds(data)
    with pytest.raises(DataError, match="BC-VAE dataset is empty" if kind == "vae"
                       else "BC dataset is empty"):
        if kind == "gaussian":
            train_bc(empty, BCConfig(steps=1), action_low=low, action_high=high, device="cpu")
        else:
            train_bc_vae(empty, VAEConfig(steps=1), action_low=low, action_high=high,
                         device="cpu")
