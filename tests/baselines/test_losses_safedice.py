"""SafeDICE: discriminator loss, α bound, reward, ν loss and weights by hand."""

import math

import pytest
import torch

from retrofit.losses import safedice as L


def test_mixture_alpha_is_the_min_of_inverse_sigmoid_minus_one():
    logits = torch.tensor([0.0, math.log(3.0)])  # σ = 1/2, 3/4 -> 1/σ - 1 = 1, 1/3
    assert L.mixture_alpha(logits) == pytest.approx(1 / 3 - 1e-5)


def test_mixture_alpha_is_capped_below_one():
    assert L.mixture_alpha(torch.tensor([-3.0, -1.0])) == pytest.approx(1 - 1e-5)


def test_reward_from_logits_hand_computed():
    logits = torch.tensor([0.0, math.log(3.0)])
    reward = L.reward_from_logits(logits, alpha=0.2)
    # σ=1/2: (1-1.2·0.5)/(0.8·0.5) = 1 -> 0;  σ=3/4: (1-0.9)/(0.8·0.25) = 0.5
    assert torch.allclose(reward, torch.tensor([0.0, math.log(0.5)]), atol=1e-6)


def test_reward_is_finite_everywhere_with_the_alpha_bound(rng):
    logits = torch.as_tensor(rng.normal(0, 3, size=1000), dtype=torch.float32)
    alpha = L.mixture_alpha(logits)
    reward = L.reward_from_logits(logits, alpha)
    assert torch.isfinite(reward).all()
    # the most "non-preferred-looking" pair gets the lowest reward
    assert reward.argmin() == logits.argmax()


def test_discriminator_loss_hand_computed():
    grads = torch.tensor([[3.0, 4.0]])  # ||g|| = 5 -> (5-1)^2 = 16
    loss, metrics = L.discriminator_loss(torch.tensor([0.0]), torch.tensor([0.0]), grads, 10.0)
    assert loss.item() == pytest.approx(2 * math.log(2) + 160.0)
    assert metrics["discriminator/gan"].item() == pytest.approx(2 * math.log(2))


def test_advantage_and_nu_loss_hand_computed():
    adv = L.advantage(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([3.0]), gamma=0.5)
    assert adv.item() == pytest.approx(0.5)
    loss, metrics = L.nu_loss(torch.tensor([0.0, math.log(3.0)]), torch.tensor([2.0, 4.0]),
                              torch.tensor([[1.0, 2.0]]), gamma=0.9, gp_weight=1e-6)
    assert loss.item() == pytest.approx(math.log(4.0) + 0.1 * 3.0 + 5e-6, rel=1e-6)
    assert metrics["nu/logsumexp"].item() == pytest.approx(math.log(4.0))


def test_dice_weights_and_weighted_bc():
    adv = torch.tensor([1.0, 1.0 + math.log(3.0)], requires_grad=True)
    w = L.dice_weights(adv)  # exp(e-1) = [1, 3], / mean 2
    assert torch.allclose(w, torch.tensor([0.5, 1.5]))
    assert not w.requires_grad
    loss, _ = L.weighted_bc_loss(w, torch.tensor([-2.0, -4.0]))
    assert loss.item() == pytest.approx(3.5)
