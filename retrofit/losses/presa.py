"""PreSa's losses (PreSa Eq. 2–15) as pure functions of log-ratios.

Inputs are per-step log-ratios ``log π_θ(a_t|s_t) − log π_ref(a_t|s_t)`` of segments, shaped
``(..., T)`` (the last axis is time), and safety labels ``y ∈ {+1, −1}`` shaped like the segment
axes. Nothing here knows datasets, policies or optimisers; the dual step on ν is a plain
function the trainer calls after its optimiser step.
"""

from __future__ import annotations

import torch

from retrofit.losses.bradley_terry import bradley_terry_loss


def discounted_sum(log_ratio: torch.Tensor, scale: float, gamma: float) -> torch.Tensor:
    """``Σ_t γ^t · scale · log_ratio[..., t]`` over the last (time) axis.

    Eq. 7 (``ψ``, with ``scale = β``) and the CPL advantage sum of Eq. 2–3 (``scale = α``).
    """
    steps = log_ratio.shape[-1]
    discount = gamma ** torch.arange(steps, device=log_ratio.device, dtype=log_ratio.dtype)
    return scale * (log_ratio * discount).sum(-1)


def cpl_kl_loss(
    chosen_log_ratio: torch.Tensor, rejected_log_ratio: torch.Tensor, alpha: float, gamma: float
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Preference term, CPL-KL (Eq. 2–4): ``−mean logσ(A(σ⁺) − A(σ⁻))``.

    ``A(σ) = Σ_t γ^t α log(π_θ/π_ref)`` (Eq. 3 summed as in Eq. 2). Inputs are ``(B, T)``.
    Metrics follow TRL: ``rewards/chosen`` is ``A(σ⁺)``, ``rewards/accuracies`` the fraction
    of pairs with ``A(σ⁺) > A(σ⁻)``.
    """
    chosen = discounted_sum(chosen_log_ratio, alpha, gamma)
    rejected = discounted_sum(rejected_log_ratio, alpha, gamma)
    loss, metrics = bradley_terry_loss(chosen, rejected)
    metrics["loss/preference"] = metrics.pop("loss")
    return loss, metrics


def safety_class_weights(n_safe: int, n_unsafe: int, eta: float) -> tuple[float, float]:
    """``(λ_s, λ_u)`` with ``λ_s n_s / (λ_u n_u) = η`` and ``λ_u = 1`` (Eq. 8; λ_u = 1 is ours).

    ``n_safe``/``n_unsafe`` count the safe/unsafe segments of the whole feedback data set.
    """
    if n_safe < 1 or n_unsafe < 1:
        raise ValueError(
            f"n_safe={n_safe}, n_unsafe={n_unsafe}: class weights need both safe and unsafe "
            "segments."
        )
    if eta <= 0:
        raise ValueError(f"eta={eta} must be > 0.")
    return eta * n_unsafe / n_safe, 1.0


def label_weights(labels: torch.Tensor, lambda_safe: float, lambda_unsafe: float) -> torch.Tensor:
    """``w(y)``: ``λ_s`` where ``y = +1``, ``λ_u`` where ``y = −1`` (Eq. 10)."""
    return torch.where(labels > 0, lambda_safe, lambda_unsafe).to(torch.get_default_dtype())


def reference_point(scores: torch.Tensor, mode: str = "mean") -> torch.Tensor:
    """``z_ref``, detached: how the safe/unsafe boundary of ψ is placed (§5.1, after Eq. 7).

    ``"mean"``: the batch mean of ψ (the paper's text); ``"zero"``: 0 (the "w/o z_ref" ablation,
    Table 2); ``"clamped"``: ``max(0, mean)``, KTO's reference point (Ethayarajh et al. 2024,
    §4.1, which PreSa cites for Eq. 11): the boundary never sits below π_ref's own score.
    """
    if mode == "zero":
        return torch.zeros((), device=scores.device, dtype=scores.dtype)
    mean = scores.mean().detach()
    if mode == "clamped":
        return mean.clamp(min=0.0)
    if mode != "mean":
        raise ValueError(f"z_ref mode={mode!r}: use 'mean', 'zero' or 'clamped'.")
    return mean


def label_probability(
    scores: torch.Tensor, labels: torch.Tensor, z_ref: torch.Tensor | float
) -> torch.Tensor:
    """``p(y|σ) = σ(y (ψ(σ) − z_ref))`` (Eq. 11); ``labels`` are ±1 like ``scores``."""
    return torch.sigmoid(labels.to(scores.dtype) * (scores - z_ref))


def safety_alignment_loss(
    scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
    z_ref: torch.Tensor | float,
) -> torch.Tensor:
    """Safety-alignment term (Eq. 9): ``mean_σ[ w(y) (1 − p(y|σ)) ]``."""
    return (weights * (1.0 - label_probability(scores, labels, z_ref))).mean()


def safety_constraint(
    scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, delta: float,
    z_ref: torch.Tensor | float,
) -> torch.Tensor:
    """The constraint value of Eq. 15: ``mean_σ[ w(y) (δ − p(y|σ)) ]``; ≤ 0 means satisfied."""
    return (weights * (delta - label_probability(scores, labels, z_ref))).mean()


def presa_loss(
    log_ratio: torch.Tensor,
    labels: torch.Tensor,
    nu: torch.Tensor | float,
    *,
    alpha: float,
    beta: float,
    gamma: float,
    delta: float,
    lambda_safe: float,
    lambda_unsafe: float = 1.0,
    use_reference_point: bool = True,
    z_ref_mode: str = "mean",
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
    """PreSa's Lagrangian (Eq. 15) for the primal step: ``L_pref + ν · constraint``.

    Args:
        log_ratio: ``(B, 2, T)`` per-step ``log π_θ − log π_ref``; ``[:, 0]`` is σ⁺, ``[:, 1]``
            σ⁻.
        labels: ``(B, 2)`` safety labels ±1 of those segments.
        nu: the current Lagrange multiplier ν ≥ 0 (a constant for this step; not differentiated).
        alpha, gamma: CPL-KL temperature α and discount γ (preference term).
        beta: score temperature β of ψ (Eq. 7; safety term).
        delta: constraint level δ (Eq. 12–13).
        lambda_safe, lambda_unsafe: class weights from :func:`safety_class_weights`.
        use_reference_point: False is the "w/o z_ref" ablation (z_ref = 0, whatever the mode).
        z_ref_mode: "mean" (paper), "zero" or "clamped" (:func:`reference_point`).

    Returns ``(loss, constraint, metrics)``; ``constraint`` carries gradients (the trainer
    detaches it for the dual step, :func:`dual_ascent`).
    """
    pref_loss, metrics = cpl_kl_loss(log_ratio[:, 0], log_ratio[:, 1], alpha, gamma)
    scores = discounted_sum(log_ratio, beta, gamma)  # ψ, (B, 2)
    z_ref = reference_point(scores, z_ref_mode if use_reference_point else "zero")
    weights = label_weights(labels, lambda_safe, lambda_unsafe).to(scores.device)
    constraint = safety_constraint(scores, labels, weights, delta, z_ref)
    nu_t = torch.as_tensor(nu, device=scores.device, dtype=scores.dtype).detach()
    loss = pref_loss + nu_t * constraint
    metrics.update(safety_metrics(scores, labels, weights, z_ref))
    metrics.update({"loss": loss.detach(), "constraint": constraint.detach(), "nu": nu_t})
    return loss, constraint, metrics


def safety_metrics(
    scores: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor,
    z_ref: torch.Tensor | float,
) -> dict[str, torch.Tensor]:
    """Detached diagnostics of the safety module: accuracy, mean p(y|σ), ψ by class, z_ref."""
    with torch.no_grad():
        p = label_probability(scores, labels, z_ref)
        safe = labels > 0
        nan = torch.full((), float("nan"), device=scores.device)
        return {
            "loss/safety": (weights * (1 - p)).mean(),
            "safety/accuracy": (p > 0.5).float().mean(),
            "safety/probability": p.mean(),
            "safety/z_ref": torch.as_tensor(z_ref, device=scores.device, dtype=scores.dtype),
            "scores/safe": scores[safe].mean() if safe.any() else nan,
            "scores/unsafe": scores[~safe].mean() if (~safe).any() else nan,
        }


def dual_ascent(
    nu: torch.Tensor | float, constraint: torch.Tensor | float, nu_learning_rate: float
) -> torch.Tensor:
    """Projected gradient ascent on ν (Eq. 15): ``ν ← max(0, ν + lr_ν · constraint)``.

    Works on device tensors (no host synchronisation); ``constraint`` is detached here.
    """
    nu_t = torch.as_tensor(nu, dtype=torch.get_default_dtype())
    c = torch.as_tensor(constraint).detach().to(nu_t.device, nu_t.dtype)
    return torch.clamp(nu_t + nu_learning_rate * c, min=0.0)


def fixed_variance_log_prob(mean_action: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
    """CPL's and PreSa's fixed-variance Gaussian log-likelihood ``−‖μ(s) − a‖²`` (Appendix B.4).

    The Gaussian's constant and its ``1/(2σ²)`` are dropped, as in the paper (they only rescale
    α and β). Reduces the last (action) axis.
    """
    return -(mean_action - act).pow(2).sum(-1)
