"""SafeDICE (Jang et al., NeurIPS 2023) as pure functions of network outputs.

Notation: ``c(s,a)`` the discriminator's logit (high on the labelled non-preferred data), ``σ`` the
logistic sigmoid, ``ν(s)`` the state critic, ``D`` the union data (preferred ∪ non-preferred),
``D_N`` the labelled non-preferred data. Equations follow the paper's Section 4 and its public
implementation (algorithms/safedice.py).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

ALPHA_MARGIN = 1e-5  # α = min(1/σ(c) - 1) - 1e-5 keeps 1 - (1+α)σ(c) > 0 on all of D
LOG_CLIP = 1e-10  # numerator clip inside the reward's log (public implementation)


def discriminator_loss(
    logits_real: torch.Tensor, logits_fake: torch.Tensor, input_grads: torch.Tensor,
    gp_weight: float = 10.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """GAN loss with a gradient penalty: ``-mean logσ(c(D_N)) - mean log(1-σ(c(D)))
    + λ_gp mean (||∇_x c(x̂)|| - 1)²``.

    ``logits_real`` are on labelled non-preferred pairs, ``logits_fake`` on union pairs,
    ``input_grads`` ``(M, d)`` the gradients of ``c`` at interpolated inputs ``x̂``.
    """
    gan = -F.logsigmoid(logits_real).mean() - F.logsigmoid(-logits_fake).mean()
    penalty = (input_grads.norm(dim=-1) - 1).pow(2).mean()
    loss = gan + gp_weight * penalty
    with torch.no_grad():
        metrics = {
            "loss/discriminator": loss.detach(),
            "discriminator/gan": gan.detach(),
            "discriminator/grad_penalty": penalty.detach(),
            "discriminator/real_accuracy": (logits_real > 0).float().mean(),
            "discriminator/fake_accuracy": (logits_fake < 0).float().mean(),
        }
    return loss, metrics


def mixture_alpha(union_logits: torch.Tensor) -> float:
    """``α = min_D (1/σ(c) - 1) - 1e-5 = min_D exp(-c) - 1e-5``: the largest share of
    non-preferred behaviour in D that keeps every reward finite.

    Capped at ``1 - 1e-5`` (reached only when the discriminator rates all of D at σ(c) ≤ 1/2)
    so that ``(1-α) > 0``.
    """
    alpha = float(torch.exp(-union_logits.max()).item()) - ALPHA_MARGIN
    return min(alpha, 1.0 - ALPHA_MARGIN)


def reward_from_logits(logits: torch.Tensor, alpha: float) -> torch.Tensor:
    """``r(s,a) = log[(1 - (1+α)σ(c)) / ((1-α)(1-σ(c)))]`` (the log-ratio d^E/d^U the
    discriminator implies); the numerator is clipped at 1e-10 as in the public code."""
    d = torch.sigmoid(logits)
    numerator = (1 - (1 + alpha) * d).clamp(min=LOG_CLIP, max=1.0)
    return torch.log(numerator) - torch.log((1 - alpha) * (1 - d))


def advantage(rewards: torch.Tensor, nu: torch.Tensor, nu_next: torch.Tensor, gamma: float
              ) -> torch.Tensor:
    """``e_ν(s,a,s') = r(s,a) + γ ν(s') - ν(s)``."""
    return rewards + gamma * nu_next - nu


def nu_loss(
    adv: torch.Tensor, nu_init: torch.Tensor, nu_grads: torch.Tensor, gamma: float,
    gp_weight: float = 1e-6,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_ν = logsumexp_batch(e_ν) + (1-γ) mean ν(s₀) + λ mean ||∇_s ν||²``."""
    lse = torch.logsumexp(adv, dim=0)
    linear = (1 - gamma) * nu_init.mean()
    penalty = nu_grads.pow(2).sum(-1).mean()
    loss = lse + linear + gp_weight * penalty
    return loss, {"loss/nu": loss.detach(), "nu/logsumexp": lse.detach(),
                  "nu/initial": nu_init.mean().detach(), "nu/grad_penalty": penalty.detach()}


def dice_weights(adv: torch.Tensor) -> torch.Tensor:
    """``w = exp(e_ν - 1) / mean_batch exp(e_ν - 1)`` (constants: no gradient)."""
    w = torch.exp(adv.detach() - 1)
    return w / w.mean()


def weighted_bc_loss(weights: torch.Tensor, log_probs: torch.Tensor
                     ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_π = -mean w(s,a) log π(a|s)`` over the union batch."""
    loss = -(weights * log_probs).mean()
    return loss, {"loss/actor": loss.detach(), "weights/max": weights.max().detach(),
                  "weights/min": weights.min().detach(), "logps/union": log_probs.mean().detach()}
