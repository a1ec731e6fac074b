"""Behaviour cloning's one entry point, ``pretrain_reference``, for every policy family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.shipped import default_dataset_path
from retrofit.errors import ConfigError, DataError
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.vae import VAEPolicy
from retrofit.pretrain import BCConfig, VAEConfig, high_reward_episodes, pretrain_reference

TASK = "OfflineBallRun-v0"
CLASSES = {"clipped-gaussian": ClippedGaussianPolicy, "tanh-gaussian": TanhGaussianPolicy,
           "vae": VAEPolicy}


@pytest.fixture(scope="module")
def data() -> TrajectoryDataset:
    full = TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)
    return full.select_episodes(np.arange(10))


def _fit(data: TrajectoryDataset, family: str, steps: int, seed: int = 0,
         top_fraction: float = 1.0) -> torch.nn.Module:
    config = BCConfig(steps=steps, hidden_sizes=(32, 32), policy=family,  # type: ignore[arg-type]
                      top_fraction=top_fraction)
    return pretrain_reference(data, config, device="cpu", seed=seed, progress=False)


@pytest.mark.parametrize("family", sorted(CLASSES))
def test_cloning_raises_the_likelihood_and_is_seeded(data, family):
    obs, act = torch.as_tensor(data.observations), torch.as_tensor(data.actions)

    def mean_mse(policy: torch.nn.Module) -> float:
        with torch.no_grad():
            return float(((policy.deterministic_action(obs) - act) ** 2).sum(-1).mean())

    untrained, trained = _fit(data, family, 1), _fit(data, family, 300)
    assert isinstance(trained, CLASSES[family])
    assert mean_mse(trained) < 0.8 * mean_mse(untrained)
    assert not trained.training and trained.train_wall_clock_s > 0
    np.testing.assert_allclose(trained.obs_mean.numpy(), data.observations.mean(0), rtol=1e-5)
    again, other = _fit(data, family, 300), _fit(data, family, 300, seed=1)
    for name, value in trained.state_dict().items():
        assert torch.equal(value, again.state_dict()[name]), name
    assert not torch.equal(next(trained.parameters()), next(other.parameters()))


def test_top_fraction_clones_the_high_reward_episodes(data):
    policy = _fit(data, "clipped-gaussian", 1, top_fraction=0.3)
    kept = data.select_episodes(high_reward_episodes(data, 0.3))
    assert kept.n_episodes == 3
    np.testing.assert_allclose(policy.obs_mean.numpy(), kept.observations.mean(0), rtol=1e-6)


def test_vae_config_is_bcq_s_vae(data):
    config = VAEConfig(steps=1, hidden_sizes=(16,), latent_dim=3, kl_weight=0.25)
    assert (VAEConfig().policy, VAEConfig().hidden_sizes, VAEConfig().batch_size) == (
        "vae", (750, 750), 100)
    policy = pretrain_reference(data, config, device="cpu", progress=False)
    assert isinstance(policy, VAEPolicy)
    assert (policy.latent_dim, policy.kl_weight) == (3, 0.25)


def test_the_action_box_is_the_tasks_else_the_datasets_own(data):
    arrays = data.to_dict()
    own = TrajectoryDataset(**arrays, task=None, action_low=-2.0, action_high=2.0)
    policy = pretrain_reference(own, BCConfig(steps=1, hidden_sizes=(8,)), device="cpu",
                                progress=False)
    assert torch.equal(policy.action_low, torch.full((2,), -2.0))
    with pytest.raises(DataError, match="no task"):
        pretrain_reference(TrajectoryDataset(**arrays, task=None), BCConfig(steps=1),
                           device="cpu", progress=False)


@pytest.mark.parametrize("bad,field", [
    ({"top_fraction": 0.0}, "top_fraction"), ({"steps": 0}, "steps=0"),
    ({"batch_size": "32"}, "batch_size"), ({"policy": "gaussian"}, "policy"),
    ({"fixed_std": -0.1}, "fixed_std"), ({"kl_weight": -1.0}, "kl_weight"),
    ({"learning_rate": float("nan")}, "learning_rate"),
])
def test_bc_config_refuses_bad_values_at_construction(bad, field):
    with pytest.raises(ConfigError, match=field):
        BCConfig(**bad)


def test_vae_config_keeps_its_family():
    with pytest.raises(ConfigError, match="BCConfig\\(policy='tanh-gaussian'\\)"):
        VAEConfig(policy="tanh-gaussian")


def test_vae_cloning_logs_both_elbo_terms(data):
    """The negative ELBO by hand, and the VAE family's BC step reports its KL and reconstruction
    (a KL at ≈ 0 is posterior collapse: the decoder ignores z)."""
    from retrofit.losses.bc import bc_vae_loss
    from retrofit.methods.bc import FAMILIES

    loss, metrics = bc_vae_loss(torch.tensor([1.0, 3.0]), torch.tensor([2.0, 4.0]), 0.5)
    assert float(loss) == pytest.approx(3.5)  # mean(1 + 0.5·2, 3 + 0.5·4)
    assert (float(metrics["vae/recon"]), float(metrics["vae/kl"])) == (2.0, 3.0)
    policy = pretrain_reference(data, VAEConfig(steps=2, hidden_sizes=(16,)), device="cpu",
                                progress=False)
    obs, act = torch.as_tensor(data.observations[:64]), torch.as_tensor(data.actions[:64])
    torch.manual_seed(0)
    loss, metrics = FAMILIES["vae"].loss(policy, obs, act)
    torch.manual_seed(0)
    assert float(loss) == pytest.approx(float(-policy.elbo(obs, act).mean()), rel=1e-6)
    assert float(loss) == pytest.approx(
        float(metrics["vae/recon"]) + policy.kl_weight * float(metrics["vae/kl"]), rel=1e-5)
    assert float(metrics["vae/kl"]) > 0
