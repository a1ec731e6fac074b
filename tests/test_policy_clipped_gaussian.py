"""Clipped-Gaussian policy: hand-computed log-likelihoods at and inside the bounds, save/load."""

import math

import numpy as np
import pytest
import torch

from retrofit.adapters import wrap
from retrofit.adapters.clipped_gaussian import ClippedGaussianAdapter
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy, clipped_gaussian_log_prob
from retrofit.policies.io import load_policy, save_policy

LOW = np.array([-1.0, -2.0], dtype=np.float32)
HIGH = np.array([1.0, 0.5], dtype=np.float32)


def _log_phi(x: float) -> float:
    """log Φ(x) by hand, Φ(x) = ½ erfc(−x/√2) (accurate in the lower tail)."""
    return math.log(0.5 * math.erfc(-x / math.sqrt(2.0)))


def test_log_prob_at_bounds_is_log_phi_and_inside_is_gaussian():
    mean = torch.tensor([0.3, -0.8, 0.1], dtype=torch.float64)
    std = torch.tensor([0.5, 0.2, 0.7], dtype=torch.float64)
    y = torch.tensor([-1.0, 1.0, 0.4], dtype=torch.float64)
    got = clipped_gaussian_log_prob(mean, std, y).tolist()
    assert got[0] == pytest.approx(_log_phi((-1.0 - 0.3) / 0.5), rel=1e-12)  # Φ(−2.6)
    assert got[1] == pytest.approx(_log_phi((-0.8 - 1.0) / 0.2), rel=1e-12)  # Φ(−9)
    z = (0.4 - 0.1) / 0.7
    assert got[2] == pytest.approx(-0.5 * z * z - math.log(0.7) - 0.5 * math.log(2 * math.pi))
    # Hand values: Φ(−2.6) = 0.0046611880, so log = −5.368...
    assert got[0] == pytest.approx(math.log(0.0046611880237), rel=1e-9)


def test_mass_and_density_integrate_to_one():
    mean = torch.tensor(0.7, dtype=torch.float64)
    std = torch.tensor(0.4, dtype=torch.float64)
    y = torch.linspace(-1 + 1e-5, 1 - 1e-5, 200_001, dtype=torch.float64)
    density = clipped_gaussian_log_prob(mean, std, y).exp()
    inside = torch.trapezoid(density, y)
    atoms = clipped_gaussian_log_prob(mean, std, torch.tensor([-1.0, 1.0], dtype=torch.float64))
    assert float(inside + atoms.exp().sum()) == pytest.approx(1.0, abs=1e-4)


def test_bound_log_prob_is_bounded_above_by_zero_as_the_spread_shrinks():
    y = torch.tensor(1.0, dtype=torch.float64)
    for s in (1.0, 1e-2, 1e-4):
        value = clipped_gaussian_log_prob(torch.tensor(1.2, dtype=torch.float64),
                                          torch.tensor(s, dtype=torch.float64), y)
        assert float(value) <= 0.0
    assert float(value) == pytest.approx(0.0, abs=1e-12)


@pytest.fixture
def policy() -> ClippedGaussianPolicy:
    torch.manual_seed(0)
    pol = ClippedGaussianPolicy(3, 2, LOW, HIGH, hidden_sizes=(16, 16)).double()
    pol.set_observation_normalizer(np.array([0.5, -1.0, 2.0]), np.array([2.0, 1.0, 0.5]))
    return pol


def test_adapter_log_prob_in_env_units_matches_hand_formula(policy):
    obs = torch.randn(4, 3, dtype=torch.float64)
    mean, std = policy(obs)
    # dim 0 at its lower bound −1, dim 1 inside (y = 0.2 → a = −0.75 + 1.25·0.2 = −0.5)
    act = torch.tensor([[-1.0, -0.5]] * 4, dtype=torch.float64)
    got = wrap(policy).log_prob(obs, act)
    for i in range(4):
        m0, s0, m1, s1 = mean[i, 0].item(), std[i, 0].item(), mean[i, 1].item(), std[i, 1].item()
        z = (0.2 - m1) / s1
        expected = (_log_phi((-1 - m0) / s0) - 0.5 * z * z - math.log(s1)
                    - 0.5 * math.log(2 * math.pi) - math.log(1.25))
        assert got[i].item() == pytest.approx(expected, rel=1e-10)


def test_sampling_puts_phi_of_the_mass_on_each_bound():
    torch.manual_seed(1)
    pol = ClippedGaussianPolicy(1, 1, [-1.0], [1.0], hidden_sizes=(4,), fixed_std=0.5)
    torch.nn.init.zeros_(pol.mean_head.weight)
    torch.nn.init.constant_(pol.mean_head.bias, 0.8)
    obs = torch.zeros(200_000, 1)
    act = wrap(pol).sample(obs)
    assert float((act == 1.0).double().mean()) == pytest.approx(math.exp(_log_phi(-0.4)), abs=4e-3)
    assert float((act == -1.0).double().mean()) == pytest.approx(math.exp(_log_phi(-3.6)), abs=1e-3)


def test_fixed_spread_has_no_spread_parameters_and_round_trips(tmp_path):
    pol = ClippedGaussianPolicy(3, 2, LOW, HIGH, hidden_sizes=(8,), fixed_std=0.3)
    assert pol.std_head is None
    _, std = pol(torch.zeros(5, 3))
    assert torch.all(std == 0.3)
    loaded = load_policy(save_policy(pol, tmp_path / "p.pt"))
    assert isinstance(wrap(loaded), ClippedGaussianAdapter)
    obs, act = torch.randn(6, 3), torch.tensor([[1.0, -2.0]] * 6)
    assert torch.equal(wrap(loaded).log_prob(obs, act), wrap(pol).log_prob(obs, act))


def test_learned_spread_is_bounded_below():
    pol = ClippedGaussianPolicy(3, 2, LOW, HIGH, hidden_sizes=(8,), min_std=0.05)
    torch.nn.init.constant_(pol.std_head.bias, -50.0)
    _, std = pol(torch.randn(5, 3))
    assert torch.all(std >= 0.05)


def test_mean_action_has_a_gradient_beyond_the_bound():
    pol = ClippedGaussianPolicy(1, 1, [-1.0], [1.0], hidden_sizes=(4,), fixed_std=0.2)
    torch.nn.init.constant_(pol.mean_head.bias, 3.0)  # mean far beyond the upper bound
    torch.nn.init.zeros_(pol.mean_head.weight)
    adapter = wrap(pol)
    obs = torch.zeros(2, 1)
    assert np.all(adapter.act(obs.numpy()) == 1.0)  # the action taken is clipped
    adapter.mean_action(obs).sum().backward()
    assert pol.mean_head.bias.grad.item() == pytest.approx(2.0)  # d(unclipped mean)/d bias
