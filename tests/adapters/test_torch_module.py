from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from retrofit import Retrofitter, feedback
from retrofit.adapters import wrap
from retrofit.adapters.torch_module import TorchModuleAdapter
from retrofit.errors import PolicyError

from . import ballrun_dataset, preference_sets, run_fresh


class MeanPolicy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 2), nn.Tanh())

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)


class NormalPolicy(MeanPolicy):
    def __init__(self, squash: bool = False) -> None:
        super().__init__()
        self.log_std = nn.Parameter(torch.full((2,), -1.0))
        self.squash = squash

    def forward(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        base = torch.distributions.Normal(self.net(obs), self.log_std.exp())
        if self.squash:
            return torch.distributions.TransformedDistribution(
                base, [torch.distributions.TanhTransform(cache_size=1)]
            )
        return torch.distributions.Independent(base, 1)


class Discrete(MeanPolicy):
    def forward(self, obs: torch.Tensor) -> torch.distributions.Distribution:
        return torch.distributions.Categorical(logits=self.net(obs))


def _bc(module: nn.Module, steps: int = 200) -> nn.Module:
    """A few hundred steps of BC on real BallRun data."""
    data = ballrun_dataset(4)
    obs, act = torch.as_tensor(data.observations), torch.as_tensor(data.actions)
    opt = torch.optim.Adam(module.parameters(), lr=1e-3)
    adapter = TorchModuleAdapter(module, action_low=-1, action_high=1)
    for _ in range(steps):
        loss = -adapter.log_prob(obs, act.clamp(-0.999, 0.999)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return module.eval()


@pytest.mark.parametrize("squash", [False, True])
def test_distribution_log_prob_matches_torch(squash):
    module = _bc(NormalPolicy(squash))
    adapter = TorchModuleAdapter(module, action_low=-1, action_high=1)
    data = ballrun_dataset(4)
    obs = torch.as_tensor(data.observations[:32])
    act = torch.as_tensor(data.actions[:32]).clamp(-0.99, 0.99)
    with torch.no_grad():
        expected = module(obs).log_prob(act)
        expected = expected.sum(-1) if squash else expected
        torch.testing.assert_close(adapter.log_prob(obs, act), expected, atol=1e-5, rtol=0)
        assert adapter.log_prob(obs, torch.stack([act, act])).shape == (2, 32)
    logp, sampled, logp_s = adapter.trainable_copy().log_prob_and_sample(obs, act)
    assert logp.requires_grad and logp_s.requires_grad and not sampled.requires_grad


def test_mean_module_is_a_fixed_sigma_gaussian():
    module = _bc(MeanPolicy())
    adapter = wrap(module)
    assert isinstance(adapter, TorchModuleAdapter) and not adapter.stochastic
    data = ballrun_dataset(4)
    obs, act = torch.as_tensor(data.observations[:32]), torch.as_tensor(data.actions[:32])
    with torch.no_grad():
        expected = -((module(obs) - act) ** 2).sum(-1) / (2 * 0.1**2)
        torch.testing.assert_close(adapter.log_prob(obs, act), expected, atol=1e-4, rtol=1e-6)
        wide = TorchModuleAdapter(module, sigma=2**-0.5).log_prob(obs, act)
        torch.testing.assert_close(wide, -((module(obs) - act) ** 2).sum(-1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("make", [MeanPolicy, NormalPolicy, lambda: NormalPolicy(squash=True)])
def test_presa_with_its_default_fixed_variance_likelihood(make):
    module = _bc(make(), steps=20)
    adapter = TorchModuleAdapter(module, action_low=-1, action_high=1).trainable_copy()
    data = ballrun_dataset(4)
    obs = torch.as_tensor(data.observations[:32])
    mean = adapter.mean_action(obs)
    assert mean.requires_grad
    np.testing.assert_allclose(mean.detach().clamp(-1, 1).numpy(), adapter.act(obs.numpy()),
                               atol=1e-6)
    fb = feedback.synthesize(data, n_pairs=64, segment_length=8, cost_threshold=20.0,
                             max_episode_steps=100)
    exported = Retrofitter(module, "presa", progress=False, batch_size=4).fit(fb, steps=5)
    assert isinstance(exported, type(module))
    assert not torch.allclose(exported.net[0].weight, module.net[0].weight)


def test_retrofit_export_round_trip(tmp_path):
    module = _bc(MeanPolicy())
    preferred, nonpreferred = preference_sets()
    retro = Retrofitter(TorchModuleAdapter(module, action_low=-1, action_high=1), progress=False)
    exported = retro.fit(preferred, nonpreferred, steps=50)
    assert isinstance(exported, MeanPolicy) and exported is not module
    obs = ballrun_dataset(4).observations[:32]
    expected = retro.policy_.act(obs)
    torch.save(exported.state_dict(), tmp_path / "policy.pt")
    np.save(tmp_path / "obs.npy", obs)
    run_fresh(f"""
        import numpy as np, torch
        from torch import nn
        net = nn.Sequential(nn.Linear(7, 16), nn.ReLU(), nn.Linear(16, 2), nn.Tanh())
        state = torch.load(r"{tmp_path / 'policy.pt'}", weights_only=True)
        net.load_state_dict({{k.removeprefix("net."): v for k, v in state.items()}})
        obs = torch.as_tensor(np.load(r"{tmp_path / 'obs.npy'}"))
        with torch.no_grad():
            np.save(r"{tmp_path / 'pred.npy'}", net(obs).numpy())
    """)
    np.testing.assert_allclose(np.load(tmp_path / "pred.npy"), expected, atol=1e-6)


def test_bad_inputs_are_rejected():
    with pytest.raises(PolicyError, match="Supported policies"):
        wrap("ppo.zip")
    with pytest.raises(PolicyError, match="discrete-action"):
        wrap(Discrete())
    with pytest.raises(PolicyError, match="observation_dim"):
        wrap(nn.ReLU())
    adapter = wrap(MeanPolicy())
    with pytest.raises(PolicyError, match=r"\(batch, 7\)"):
        adapter.log_prob(torch.zeros(4, 9), torch.zeros(4, 2))
    with pytest.raises(PolicyError, match="2-dimensional actions"):
        adapter.log_prob(torch.zeros(4, 7), torch.zeros(4, 3))


def test_import_retrofit_does_not_import_sb3_or_d3rlpy():
    out = run_fresh("""
        import sys
        import retrofit, retrofit.adapters, retrofit.adapters.sb3, retrofit.adapters.d3rlpy
        print(sorted(m for m in sys.modules if m.startswith(("stable_baselines3", "d3rlpy"))))
    """)
    assert out.strip() == "[]"
