"""PreSa losses against hand-computed numbers (presa-offline-safe-pohf.txt Eq. 2–15)."""

import math

import pytest
import torch

from retrofit.losses.presa import (
    cpl_kl_loss,
    discounted_sum,
    dual_ascent,
    fixed_variance_log_prob,
    label_probability,
    label_weights,
    presa_loss,
    reference_point,
    safety_alignment_loss,
    safety_class_weights,
    safety_constraint,
)


def _sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_discounted_sum_by_hand():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    # 0.5 * (1 + 0.9 * 2 + 0.81 * 3) = 0.5 * 5.23
    assert discounted_sum(x, 0.5, 0.9).item() == pytest.approx(2.615)
    assert discounted_sum(x, 1.0, 1.0).item() == pytest.approx(6.0)


def test_cpl_kl_term_by_hand():
    chosen = torch.tensor([[0.5, -0.5, 1.0], [0.0, 0.0, 0.0]])
    rejected = torch.tensor([[-1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    alpha, gamma = 0.2, 0.9
    # A(σ+) = 0.2 (0.5 - 0.45 + 0.81) = 0.172 ; A(σ-) = -0.2       -> margin 0.372
    # A(σ+) = 0                            ; A(σ-) = 0.2 * 1.9 = 0.38 -> margin -0.38
    loss, metrics = cpl_kl_loss(chosen, rejected, alpha, gamma)
    expected = -(math.log(_sig(0.372)) + math.log(_sig(-0.38))) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert metrics["rewards/accuracies"].item() == pytest.approx(0.5)
    assert metrics["rewards/margins"].item() == pytest.approx((0.372 - 0.38) / 2, abs=1e-6)


def test_cpl_kl_matches_cpl_published_formula():
    # CPL (Hejna et al. 2024): logits = α Σ_t γ^t (lp⁺ - lp⁻), loss = BCE(logits, label=1)
    torch.manual_seed(0)
    lp_pos, lp_neg = torch.randn(5, 7), torch.randn(5, 7)
    alpha, gamma = 0.2, 0.99
    disc = gamma ** torch.arange(7.0)
    logits = alpha * ((lp_pos - lp_neg) * disc).sum(-1)
    reference = torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones(5))
    loss, _ = cpl_kl_loss(lp_pos, lp_neg, alpha, gamma)
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)


def test_class_weights_from_eta():
    # λ_s n_s / (λ_u n_u) = η with λ_u = 1: n_s = 300, n_u = 100, η = 0.1 -> λ_s = 0.1/3
    lam_s, lam_u = safety_class_weights(300, 100, 0.1)
    assert lam_u == 1.0
    assert lam_s == pytest.approx(0.1 / 3)
    assert lam_s * 300 / (lam_u * 100) == pytest.approx(0.1)
    assert safety_class_weights(50, 150, 2.0) == pytest.approx((6.0, 1.0))
    with pytest.raises(ValueError):
        safety_class_weights(0, 10, 0.1)
    w = label_weights(torch.tensor([1.0, -1.0, 1.0]), 0.25, 1.0)
    assert w.tolist() == [0.25, 1.0, 0.25]


def test_safety_term_and_constraint_by_hand():
    scores = torch.tensor([2.0, -1.0, 0.5, 0.5])
    labels = torch.tensor([1.0, -1.0, -1.0, 1.0])
    z_ref = reference_point(scores)
    assert z_ref.item() == pytest.approx(0.5)
    p = label_probability(scores, labels, z_ref)
    expected_p = [_sig(1.5), _sig(1.5), _sig(0.0), _sig(0.0)]
    assert p.tolist() == pytest.approx(expected_p, rel=1e-6)
    w = label_weights(labels, 0.5, 1.0)  # [0.5, 1, 1, 0.5]
    loss = safety_alignment_loss(scores, labels, w, z_ref)
    weights = [0.5, 1.0, 1.0, 0.5]
    expected_loss = sum(wi * (1 - pi) for wi, pi in zip(weights, expected_p, strict=True)) / 4
    assert loss.item() == pytest.approx(expected_loss, rel=1e-6)
    constraint = safety_constraint(scores, labels, w, 0.9, z_ref)
    expected_c = sum(wi * (0.9 - pi) for wi, pi in zip(weights, expected_p, strict=True)) / 4
    assert constraint.item() == pytest.approx(expected_c, rel=1e-6)


def test_z_ref_is_detached_its_gradient_is_zero():
    scores = torch.tensor([1.0, -2.0, 0.5], requires_grad=True)
    z_ref = reference_point(scores)
    assert not z_ref.requires_grad
    labels = torch.tensor([1.0, -1.0, 1.0])
    w = torch.ones(3)
    safety_alignment_loss(scores, labels, w, z_ref).backward()
    # with z_ref detached, d/dψ_i only has the direct term: -w y p (1 - p) / n
    p = label_probability(scores.detach(), labels, z_ref)
    direct = -(w * labels * p * (1 - p)) / 3
    assert scores.grad.tolist() == pytest.approx(direct.tolist(), rel=1e-6)
    # the path through z_ref would add +mean(w y p (1-p))/3 to every entry: it is absent
    through_z = (w * labels * p * (1 - p)).sum() / 9
    assert through_z.abs().item() > 1e-3


def test_z_ref_gradient_zero_in_presa_loss():
    log_ratio = torch.randn(3, 2, 4, requires_grad=True)
    labels = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, -1.0]])
    kwargs = dict(alpha=0.2, beta=1.0, gamma=1.0, delta=0.95, lambda_safe=0.5)
    # gradient with z_ref detached equals the gradient with z_ref a constant of the same value
    loss, _, metrics = presa_loss(log_ratio, labels, 2.0, **kwargs)
    (grad,) = torch.autograd.grad(loss, log_ratio)
    z = metrics["safety/z_ref"].item()
    scores = discounted_sum(log_ratio, 1.0, 1.0)
    w = label_weights(labels, 0.5, 1.0)
    manual = cpl_kl_loss(log_ratio[:, 0], log_ratio[:, 1], 0.2, 1.0)[0] + 2.0 * (
        safety_constraint(scores, labels, w, 0.95, z)
    )
    (grad_const,) = torch.autograd.grad(manual, log_ratio)
    assert torch.allclose(grad, grad_const, atol=1e-6)


def test_presa_loss_is_preference_plus_nu_times_constraint():
    torch.manual_seed(1)
    log_ratio = torch.randn(4, 2, 5)
    labels = torch.tensor([[1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0]])
    kwargs = dict(alpha=0.2, beta=0.5, gamma=0.99, delta=0.9, lambda_safe=0.3)
    loss, constraint, metrics = presa_loss(log_ratio, labels, 1.5, **kwargs)
    pref, _ = cpl_kl_loss(log_ratio[:, 0], log_ratio[:, 1], 0.2, 0.99)
    assert loss.item() == pytest.approx(pref.item() + 1.5 * constraint.item(), rel=1e-6)
    assert metrics["nu"].item() == 1.5
    # w/o z_ref: p = σ(y ψ)
    _, c0, m0 = presa_loss(log_ratio, labels, 0.0, use_reference_point=False, **kwargs)
    scores = discounted_sum(log_ratio, 0.5, 0.99)
    w = label_weights(labels, 0.3, 1.0)
    expected = (w * (0.9 - torch.sigmoid(labels * scores))).mean()
    assert c0.item() == pytest.approx(expected.item(), rel=1e-6)
    assert m0["safety/z_ref"].item() == 0.0


def test_dual_ascent_projects_on_nonnegative():
    assert dual_ascent(0.0, 2.0, 0.005).item() == pytest.approx(0.01)
    assert dual_ascent(0.01, -10.0, 0.005).item() == 0.0
    assert dual_ascent(torch.tensor(1.0), torch.tensor(-0.5), 0.1).item() == pytest.approx(0.95)


def test_fixed_variance_log_prob():
    mean = torch.tensor([[0.0, 1.0]])
    act = torch.tensor([[0.5, -1.0]])
    assert fixed_variance_log_prob(mean, act).item() == pytest.approx(-(0.25 + 4.0))


def test_reference_point_modes_by_hand():
    negative = torch.tensor([-3.0, 1.0, -1.0])  # mean −1
    positive = torch.tensor([3.0, 1.0, -1.0])  # mean +1
    assert reference_point(negative, "mean").item() == pytest.approx(-1.0)
    assert reference_point(negative, "clamped").item() == 0.0  # max(0, −1)
    assert reference_point(positive, "clamped").item() == pytest.approx(1.0)
    assert reference_point(positive, "zero").item() == 0.0
    with pytest.raises(ValueError, match="'median'"):
        reference_point(positive, "median")


def test_clamped_z_ref_in_presa_loss_by_hand():
    # one pair, T = 1, β = 1: ψ = log-ratio; scores −2 (safe) and −4 (unsafe), mean −3 → z_ref 0
    log_ratio = torch.tensor([[[-2.0], [-4.0]]])
    labels = torch.tensor([[1.0, -1.0]])
    kwargs = dict(alpha=0.2, beta=1.0, gamma=1.0, delta=0.9, lambda_safe=1.0)
    _, c_mean, m_mean = presa_loss(log_ratio, labels, 0.0, z_ref_mode="mean", **kwargs)
    _, c_clamp, m_clamp = presa_loss(log_ratio, labels, 0.0, z_ref_mode="clamped", **kwargs)
    assert m_mean["safety/z_ref"].item() == pytest.approx(-3.0)
    assert m_clamp["safety/z_ref"].item() == 0.0
    # mean: p = σ(1), σ(1); clamped: p = σ(−2), σ(4)
    assert c_mean.item() == pytest.approx(((0.9 - _sig(1.0)) * 2) / 2, rel=1e-6)
    assert c_clamp.item() == pytest.approx(((0.9 - _sig(-2.0)) + (0.9 - _sig(4.0))) / 2, rel=1e-6)
