from __future__ import annotations

import numpy as np
import pytest
import torch

from retrofit import Retrofitter
from retrofit.adapters import wrap
from retrofit.adapters.vae import VAEAdapter
from retrofit.policies.vae import LATENT_CLIP, VAEPolicy
from retrofit.pretrain import VAEConfig, pretrain_reference

from . import ballrun_dataset, preference_sets, run_fresh

SMALL = VAEConfig(hidden_sizes=(32, 32), steps=300, batch_size=64, top_fraction=1.0)


@pytest.fixture(scope="module")
def vae() -> VAEPolicy:
    return pretrain_reference(ballrun_dataset(4), SMALL, progress=False, device="cpu")


def test_bc_vae_training_improves_the_elbo():
    data = ballrun_dataset(4)
    obs, act = torch.as_tensor(data.observations), torch.as_tensor(data.actions)
    short = pretrain_reference(data, VAEConfig(hidden_sizes=(32, 32), steps=1, top_fraction=1.0),
                               progress=False, device="cpu")
    long = pretrain_reference(data, SMALL, progress=False, device="cpu")
    with torch.no_grad():
        torch.manual_seed(0)
        before = short.elbo(obs, act).mean()
        torch.manual_seed(0)
        after = long.elbo(obs, act).mean()
    assert after > before


def test_log_prob_is_the_elbo_surrogate(vae):
    adapter = wrap(vae)
    assert isinstance(adapter, VAEAdapter)
    data = ballrun_dataset(4)
    obs, act = torch.as_tensor(data.observations[:32]), torch.as_tensor(data.actions[:32])
    torch.manual_seed(3)
    with torch.no_grad():
        got = adapter.log_prob(obs, act)
        torch.manual_seed(3)
        mean, log_std = vae.encode(obs, act)
        z = mean + log_std.exp() * torch.randn_like(mean)
        recon = ((vae.decode(obs, z) - act) ** 2).sum(-1)
        kl = torch.distributions.kl_divergence(
            torch.distributions.Normal(mean, log_std.exp()), torch.distributions.Normal(0.0, 1.0)
        ).sum(-1)
    torch.testing.assert_close(got, -(recon + 0.5 * kl), atol=1e-5, rtol=0)
    assert adapter.log_prob(obs, torch.stack([act, act])).shape == (2, 32)


def test_samples_use_the_clipped_prior(vae):
    adapter = wrap(vae)
    obs = torch.as_tensor(ballrun_dataset(4).observations[:16])
    torch.manual_seed(5)
    sampled = adapter.sample(obs)
    torch.manual_seed(5)
    z = torch.randn(16, vae.latent_dim).clamp(-LATENT_CLIP, LATENT_CLIP)
    torch.testing.assert_close(sampled, vae.decode(obs, z).detach(), atol=1e-6, rtol=0)
    logp, a_s, logp_s = adapter.trainable_copy().log_prob_and_sample(obs, sampled)
    assert logp.requires_grad and logp_s.requires_grad and not a_s.requires_grad
    assert np.all(np.abs(adapter.act(obs.numpy())) <= 1)


def test_retrofit_export_round_trip(vae, tmp_path):
    preferred, nonpreferred = preference_sets()
    retro = Retrofitter(vae, progress=False)
    exported = retro.fit(preferred, nonpreferred, steps=50)
    assert isinstance(exported, VAEPolicy) and exported is not vae
    obs = ballrun_dataset(4).observations[:32]
    expected = retro.policy_.act(obs)
    torch.save({"config": exported.config(), "state_dict": exported.state_dict()},
               tmp_path / "vae.pt")
    np.save(tmp_path / "obs.npy", obs)
    run_fresh(f"""
        import numpy as np, torch
        from retrofit.policies.vae import VAEPolicy
        payload = torch.load(r"{tmp_path / 'vae.pt'}", weights_only=True)
        policy = VAEPolicy(**payload["config"])
        policy.load_state_dict(payload["state_dict"])
        obs = torch.as_tensor(np.load(r"{tmp_path / 'obs.npy'}"))
        with torch.no_grad():
            np.save(r"{tmp_path / 'pred.npy'}", policy.deterministic_action(obs).numpy())
    """)
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), expected, atol=1e-6)
