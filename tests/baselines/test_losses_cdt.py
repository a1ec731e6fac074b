"""CDT and Safe-RLHF (CDT) losses against hand-computed numbers (retrofit/losses/cdt.py)."""

import math

import pytest
import torch

from retrofit.losses.bradley_terry import bradley_terry_loss
from retrofit.losses.cdt import cdt_loss, cost_model_loss, temperature_loss


def _log_sig(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_cdt_loss_by_hand_ignores_padding():
    log_lik = torch.tensor([[-1.0, -3.0, 100.0]])  # last step is padding
    entropy = torch.tensor([[0.5, 1.5, 100.0]])
    # step 0 predicts p(cost)=0.8 with label 1; step 1 p(no cost)=0.6 with label 1 (wrong)
    probs = torch.tensor([[[0.2, 0.8], [0.6, 0.4], [0.5, 0.5]]])
    labels = torch.tensor([[1, 1, 0]])
    mask = torch.tensor([[True, True, False]])
    loss, m = cdt_loss(log_lik, entropy, probs.log(), labels, mask, temperature=0.1,
                       cost_weight=0.02)
    nll = 2.0  # mean of 1 and 3
    ent = 1.0
    cost_nll = -(math.log(0.8) + math.log(0.4)) / 2
    assert loss.item() == pytest.approx(nll - 0.1 * ent + 0.02 * cost_nll, rel=1e-6)
    assert m["loss/nll"].item() == pytest.approx(2.0)
    assert m["cost/accuracy"].item() == pytest.approx(0.5)


def test_temperature_loss_moves_alpha_towards_the_target_entropy():
    alpha = torch.tensor(0.1, requires_grad=True)
    temperature_loss(alpha, torch.tensor(-3.0), target_entropy=-2.0).backward()
    assert alpha.grad.item() == pytest.approx(-1.0)  # entropy below target: α grows


def test_bradley_terry_by_hand():
    loss, m = bradley_terry_loss(torch.tensor([2.0, 0.0]), torch.tensor([1.0, 0.5]))
    expected = -(_log_sig(1.0) + _log_sig(-0.5)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert m["rewards/accuracies"].item() == pytest.approx(0.5)


def test_cost_model_loss_by_hand_with_and_without_the_comparison_term():
    costs = torch.tensor([[1.0, -2.0], [0.5, 0.25]])
    safety = torch.tensor([[-1, 1], [1, 1]])  # pair 0: unsafe vs safe; pair 1: both safe
    # classification: s = +1 unsafe, -1 safe: terms log σ(1), log σ(2), log σ(-0.5), log σ(-0.25)
    classify = -(_log_sig(1.0) + _log_sig(2.0) + _log_sig(-0.5) + _log_sig(-0.25)) / 4
    compare = -_log_sig(1.0 - (-2.0))  # only the mixed pair: C(unsafe) - C(safe) = 3
    loss, m = cost_model_loss(costs, safety)
    assert loss.item() == pytest.approx(classify + compare, rel=1e-6)
    binary, _ = cost_model_loss(costs, safety, binary_only=True)
    assert binary.item() == pytest.approx(classify, rel=1e-6)
    assert m["cost/accuracy"].item() == pytest.approx(0.5)


def test_cost_model_comparison_orders_a_pair_listed_safe_first():
    costs = torch.tensor([[-2.0, 1.0]])
    safety = torch.tensor([[1, -1]])  # safe segment first this time
    loss, m = cost_model_loss(costs, safety)
    classify = -(_log_sig(2.0) + _log_sig(1.0)) / 2
    assert loss.item() == pytest.approx(classify - _log_sig(3.0), rel=1e-6)
