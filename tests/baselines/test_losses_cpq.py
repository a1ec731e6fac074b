"""CPQ losses and targets against hand-computed numbers."""

import math

import pytest
import torch

from retrofit.losses import cpq as L


def test_cost_thresholds_hand_computed():
    q_thres, qc_thres = L.cost_critic_thresholds(10.0, 0.99, 100)
    expected = 10 * (1 - 0.99**100) / (0.01 * 100)  # = 6.33967659...
    assert q_thres == pytest.approx(expected)
    assert q_thres == pytest.approx(6.3396765, abs=1e-6)
    assert qc_thres == pytest.approx(1.5 * expected)


def test_reward_critic_target_penalises_unsafe_next_actions():
    rewards = torch.tensor([1.0, 2.0, 1.0])
    dones = torch.tensor([0.0, 1.0, 0.0])
    q_next = torch.tensor([10.0, 10.0, 10.0])
    qc_next = torch.tensor([5.0, 8.0, 7.0])  # third: Qc' > q_thres -> no bootstrap
    target = L.reward_critic_target(rewards, dones, q_next, qc_next, q_thres=6.0, gamma=0.9)
    assert torch.allclose(target, torch.tensor([1 + 0.9 * 10, 2.0, 1.0]))


def test_cost_critic_target():
    target = L.cost_critic_target(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]),
                                  torch.tensor([2.0, 3.0]), gamma=0.5)
    assert torch.allclose(target, torch.tensor([2.0, 0.0]))


def test_ood_cost_keeps_actions_above_the_kl_quantile():
    kl = torch.tensor([[0.0, 1.0], [2.0, 3.0]])  # 75th percentile of {0,1,2,3} is 2.25
    qc = torch.tensor([[10.0, 20.0], [30.0, 40.0]])
    mask = L.ood_mask(kl)
    assert mask.tolist() == [[False, False], [False, True]]
    # per state (0, 20), mean over states 10 = 40 / (N·B = 4)
    assert torch.allclose(L.ood_cost_mean(qc[mask], kl.numel()), torch.tensor(10.0))


def test_ensemble_mse_and_cost_critic_loss():
    preds = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    target = torch.tensor([1.0, 1.0])
    assert L.ensemble_mse(preds, target).item() == pytest.approx(0.5 + 6.5)
    qc_ood = torch.tensor(3.0, requires_grad=True)
    loss, metrics = L.cost_critic_loss(preds, target, qc_ood, torch.tensor(2.0), qc_thres=5.0)
    # 7 - α (3 - 5) = 7 + 4
    assert loss.item() == pytest.approx(11.0)
    loss.backward()
    assert qc_ood.grad.item() == pytest.approx(-2.0)  # minimising raises Qc on OOD actions
    assert metrics["cost_critic/mse"].item() == pytest.approx(7.0)


def test_ood_cost_of_the_masked_actions_only_equals_the_full_mean_and_its_gradient():
    torch.manual_seed(0)
    kl = torch.rand(10, 64)
    qc = torch.randn(10, 64, requires_grad=True)
    full = ((kl >= torch.quantile(kl, 0.75)).float() * qc).mean(0).mean()  # Eq. as written
    (grad_full,) = torch.autograd.grad(full, qc)
    mask = L.ood_mask(kl, 0.75)
    assert mask.sum() == 160  # a quarter of the 640 actions
    rows = mask.reshape(-1).nonzero().squeeze(1)
    part = L.ood_cost_mean(qc.reshape(-1)[rows], kl.numel())
    (grad_part,) = torch.autograd.grad(part, qc)
    torch.testing.assert_close(part, full)
    torch.testing.assert_close(grad_part, grad_full)
    assert (grad_part[~mask] == 0).all() and (grad_part[mask] == 1 / 640).all()


def test_alpha_loss_raises_alpha_while_ood_cost_is_below_threshold():
    log_alpha = torch.tensor(math.log(2.0), requires_grad=True)
    loss = L.alpha_loss(log_alpha, torch.tensor(3.0), qc_thres=5.0)
    assert loss.item() == pytest.approx(-4.0)
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(-4.0)  # descent increases log α
    log_alpha.grad = None
    L.alpha_loss(log_alpha, torch.tensor(7.0), qc_thres=5.0).backward()
    assert log_alpha.grad.item() == pytest.approx(4.0)


def test_actor_loss_ignores_states_judged_unsafe():
    loss, metrics = L.actor_loss(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.0, 10.0, 1.0]),
                                 q_thres=5.0)
    assert loss.item() == pytest.approx(-4.0 / 3.0)
    assert metrics["actor/safe_fraction"].item() == pytest.approx(2.0 / 3.0)


def test_vae_kl_and_loss():
    mean = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    std = torch.ones(2, 2)
    assert torch.allclose(L.vae_kl(mean, std), torch.tensor([0.0, 0.25]))
    loss, _ = L.vae_loss(torch.tensor([[1.0]]), torch.tensor([[0.0]]), mean, std, kl_weight=0.5)
    assert loss.item() == pytest.approx(1.0 + 0.5 * 0.125)
