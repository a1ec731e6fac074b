"""Tanh-Gaussian policy: log-density against torch.distributions, sampling, save/load."""

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import AffineTransform, TanhTransform

from retrofit.adapters import wrap
from retrofit.errors import PolicyError
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.io import load_policy, save_policy

LOW = np.array([-1.0, -2.0], dtype=np.float32)
HIGH = np.array([1.0, 0.5], dtype=np.float32)


@pytest.fixture
def policy() -> TanhGaussianPolicy:
    torch.manual_seed(0)
    pol = TanhGaussianPolicy(3, 2, LOW, HIGH, hidden_sizes=(16, 16)).double()
    pol.set_observation_normalizer(np.array([0.5, -1.0, 2.0]), np.array([2.0, 1.0, 0.5]))
    return pol


def _reference_distribution(pol: TanhGaussianPolicy, obs: torch.Tensor):
    mean, log_std = pol(obs)
    centre = (pol.action_high + pol.action_low) / 2
    half = (pol.action_high - pol.action_low) / 2
    base = Normal(mean, log_std.exp())
    squashed = TransformedDistribution(base, [TanhTransform(), AffineTransform(centre, half)])
    return Independent(squashed, 1)


def test_log_prob_equals_torch_distributions(policy):
    obs = torch.randn(32, 3, dtype=torch.float64)
    dist = _reference_distribution(policy, obs)
    y = torch.empty(32, 2, dtype=torch.float64).uniform_(-0.95, 0.95)
    act = torch.as_tensor((HIGH + LOW) / 2, dtype=y.dtype) + torch.as_tensor((HIGH - LOW) / 2) * y
    ours = wrap(policy).log_prob(obs, act)
    theirs = dist.log_prob(act)
    # our Jacobian carries ε = 1e-6 inside log(1 − y² + ε) (spec/methods.md): for |y| ≤ 0.95
    # that shifts each term by < 2e-5
    assert torch.allclose(ours, theirs, atol=5e-5)
    assert not torch.allclose(ours, theirs + 1e-3, atol=5e-5)


def test_log_prob_broadcasts_over_leading_sample_dim(policy):
    adapter = wrap(policy)
    obs = torch.randn(8, 3, dtype=torch.float64)
    acts = torch.stack([adapter.sample(obs), adapter.sample(obs)])
    both = adapter.log_prob(obs, acts)
    assert both.shape == (2, 8)
    assert torch.allclose(both[1], adapter.log_prob(obs, acts[1]))


def test_sampled_log_prob_matches_log_prob_of_sample(policy):
    adapter = wrap(policy)
    obs = torch.randn(64, 3, dtype=torch.float64)
    data_act = adapter.sample(obs)
    logp_data, sampled, logp_sampled = adapter.log_prob_and_sample(obs, data_act)
    assert not sampled.requires_grad
    assert torch.allclose(logp_data, adapter.log_prob(obs, data_act))
    assert torch.allclose(logp_sampled, adapter.log_prob(obs, sampled), atol=1e-6)
    assert torch.all(sampled >= torch.as_tensor(LOW, dtype=sampled.dtype))
    assert torch.all(sampled <= torch.as_tensor(HIGH, dtype=sampled.dtype))


def test_copies_are_independent_and_reference_is_frozen(policy):
    adapter = wrap(policy)
    frozen, trainable = adapter.frozen_copy(), adapter.trainable_copy()
    assert all(not p.requires_grad for p in frozen.parameters())
    assert all(p.requires_grad for p in trainable.parameters())
    with torch.no_grad():
        next(iter(trainable.parameters())).add_(1.0)
    assert not torch.equal(next(iter(frozen.parameters())), next(iter(trainable.parameters())))


def test_save_load_round_trip(policy, tmp_path):
    path = save_policy(policy.float(), tmp_path / "p.pt")
    loaded = load_policy(path)
    obs = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_array_equal(wrap(policy).act(obs), wrap(loaded).act(obs))
    assert not list(tmp_path.glob("*.tmp"))


def test_wrap_rejects_unsupported_objects():
    with pytest.raises(PolicyError, match="Supported policies"):
        wrap(object())


def test_deterministic_action_inside_bounds(policy):
    out = wrap(policy.float()).act(np.zeros((4, 3), dtype=np.float32) + 100.0)
    assert np.all(out >= LOW) and np.all(out <= HIGH)


def test_loading_a_state_dict_updates_the_derived_bound_constants():
    torch.manual_seed(1)
    source = TanhGaussianPolicy(3, 2, [-2.0, 0.0], [2.0, 4.0], hidden_sizes=(8,))
    target = TanhGaussianPolicy(3, 2, [-1.0, -1.0], [1.0, 1.0], hidden_sizes=(8,))
    target.load_state_dict(source.state_dict())
    obs = torch.randn(6, 3)
    act = torch.tensor([[0.5, 1.0]]).expand(6, 2)
    assert torch.equal(source.deterministic_action(obs), target.deterministic_action(obs))
    assert torch.allclose(wrap(source).log_prob(obs, act), wrap(target).log_prob(obs, act))


def test_save_load_round_trip_of_the_other_retrofit_policies(tmp_path):
    from retrofit.policies.deterministic import DeterministicPolicy
    from retrofit.policies.vae import VAEPolicy

    obs = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    for policy in (VAEPolicy(3, 2, LOW, HIGH), DeterministicPolicy(3, 2, LOW, HIGH)):
        loaded = load_policy(save_policy(policy, tmp_path / f"{type(policy).__name__}.pt"))
        assert type(loaded) is type(policy)
        np.testing.assert_array_equal(wrap(policy.eval()).act(obs), wrap(loaded).act(obs))
    with pytest.raises(PolicyError, match="own save"):
        save_policy(torch.nn.Linear(2, 2), tmp_path / "x.pt")
