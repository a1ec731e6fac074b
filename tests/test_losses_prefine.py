"""PREFINE loss (prefine.txt Eq. 6–9) against hand-computed numbers and TRL's DPO+NLL formula."""

import math

import pytest
import torch
import torch.nn.functional as F

from retrofit.losses.prefine import PairLogProbs, implicit_margin, prefine_loss


def _t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


PREFERRED = PairLogProbs(_t(-1.0, -2.0), _t(-3.0, -1.5), _t(-1.5, -2.0), _t(-2.5, -1.0))
NONPREFERRED = PairLogProbs(_t(-0.5), _t(-4.0), _t(-1.0), _t(-3.0))


def test_implicit_margin_is_eq6():
    # Δ = (-1 + 1.5) - (-3 + 2.5) = 1.0 and (-2 + 2) - (-1.5 + 1) = 0.5
    assert implicit_margin(PREFERRED).tolist() == [1.0, 0.5]
    assert implicit_margin(NONPREFERRED).tolist() == [1.5]


def test_loss_matches_hand_computation():
    # β=0.5, λ=2: L_p = -(logσ(0.5)+logσ(0.25))/2 + 2·1.5 = 0.525008202 + 3 ;
    # L_np = -logσ(0.75) = 0.386871006 ; L = 3.911879208
    loss, metrics = prefine_loss(PREFERRED, NONPREFERRED, beta=0.5, sft_weight=2.0)
    assert loss.item() == pytest.approx(3.911879208144375, abs=1e-12)
    assert metrics["loss/preferred"].item() == pytest.approx(3.525008202029475, abs=1e-12)
    assert metrics["loss/nonpreferred"].item() == pytest.approx(0.38687100611489994, abs=1e-12)
    assert metrics["loss/sft_nll"].item() == pytest.approx(1.5)
    assert metrics["accuracy/preferred"].item() == 1.0


def test_vanilla_dpo_drops_the_sft_term():
    with_sft, _ = prefine_loss(PREFERRED, NONPREFERRED, beta=0.5, sft_weight=2.0)
    without, _ = prefine_loss(PREFERRED, NONPREFERRED, beta=0.5, sft_weight=0.0)
    assert (with_sft - without).item() == pytest.approx(2.0 * 1.5, abs=1e-12)


def _trl_dpo_with_nll(chosen, rejected, ref_chosen, ref_rejected, beta, rpo_alpha):
    """TRL's published sigmoid DPO loss (label_smoothing 0) plus rpo_alpha·NLL of the chosen.

    logits = (π_c − π_r) − (ref_c − ref_r);  loss = −logsigmoid(β·logits);  NLL = −mean π_c.
    Written from the formula, independently of retrofit's code.
    """
    logits = (chosen - rejected) - (ref_chosen - ref_rejected)
    dpo = -F.logsigmoid(beta * logits).mean()
    return dpo + rpo_alpha * (-chosen.mean())


def test_preferred_side_equals_trl_dpo_with_nll_and_nonpreferred_equals_plain_dpo():
    gen = torch.Generator().manual_seed(0)
    vals = [torch.randn(64, generator=gen, dtype=torch.float64) - 2 for _ in range(8)]
    pref = PairLogProbs(*vals[:4])
    nonpref = PairLogProbs(*vals[4:])
    beta, lam = 0.2, 1.6
    loss, metrics = prefine_loss(pref, nonpref, beta=beta, sft_weight=lam)
    trl_p = _trl_dpo_with_nll(*vals[:4], beta=beta, rpo_alpha=lam)
    trl_np = _trl_dpo_with_nll(*vals[4:], beta=beta, rpo_alpha=0.0)
    assert metrics["loss/preferred"].item() == pytest.approx(trl_p.item(), abs=1e-12)
    assert loss.item() == pytest.approx((trl_p + trl_np).item(), abs=1e-12)


def test_gradient_pushes_chosen_up_and_rejected_down():
    chosen = torch.tensor([-1.0], requires_grad=True)
    rejected = torch.tensor([-1.0], requires_grad=True)
    pair = PairLogProbs(chosen, rejected, torch.tensor([-1.0]), torch.tensor([-1.0]))
    empty = PairLogProbs(*(torch.zeros(1) for _ in range(4)))
    loss, _ = prefine_loss(pair, empty, beta=1.0, sft_weight=0.0)
    loss.backward()
    # d/dx −logσ(x) at 0 = −0.5, so dL/dπ_c = −0.5·β·(1/1 batch) and dL/dπ_r = +0.5
    assert chosen.grad.item() == pytest.approx(-0.5)
    assert rejected.grad.item() == pytest.approx(0.5)
    assert math.isfinite(loss.item())


def test_sft_only_is_the_mean_nll_of_the_preferred_dataset_actions():
    # dpo_weight = 0: L = λ · (−mean log πθ(a⁺)) = 2 · (1 + 2)/2 = 3 over D_p's dataset actions
    loss, metrics = prefine_loss(PREFERRED, NONPREFERRED, beta=0.5, sft_weight=2.0, dpo_weight=0.0)
    assert loss.item() == pytest.approx(3.0)
    assert metrics["loss/nonpreferred"].item() == 0.0
    assert metrics["loss/dpo_preferred"].item() > 0  # still logged, for the implicit accuracies
