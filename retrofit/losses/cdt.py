"""Losses of CDT and of Safe-RLHF (CDT): pure functions of tensors (no optimiser steps here).

- ``cdt_loss``: the Constrained Decision Transformer's objective (Liu et al. 2023, §4.2): the
  negative log-likelihood of the dataset actions under the stochastic head, minus a
  temperature-weighted entropy bonus, plus the auxiliary cost-prediction loss (weight 0.02).
- ``temperature_loss``: the entropy temperature's automatic tuning towards a target entropy
  (the SAC-style rule CDT's stochastic head uses).
- the reward model of Safe-RLHF (Dai et al. 2024, Eq. 5) on segment pairs is
  ``retrofit.losses.bradley_terry.bradley_terry_loss`` on segment returns (sums of per-step
  rewards).
- ``cost_model_loss``: Safe-RLHF's cost model (Dai et al. 2024, Eq. 6) as PreSa's setting allows
  it (PreSa §6.1, Appendix C.3): a classifier of each segment's safety label on the summed
  per-step costs (positive = unsafe), plus, unless ``binary_only``, the comparison term of Eq. 6
  on pairs whose two segments differ in safety (the unsafe one is the costlier).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask.to(values.dtype)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def cdt_loss(
    log_likelihood: torch.Tensor,
    entropy: torch.Tensor,
    cost_log_probs: torch.Tensor,
    cost_labels: torch.Tensor,
    mask: torch.Tensor,
    temperature: torch.Tensor | float,
    cost_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """CDT §4.2: ``L = −E[log π(a_t|…)] − α·E[H] + w_c · E[−log p(1[c_t>0] | …)]``.

    Args:
        log_likelihood: ``(B, K)`` log-likelihood of each dataset action.
        entropy: ``(B, K)`` entropy of the action distribution at each step.
        cost_log_probs: ``(B, K, 2)`` log-probabilities of "no cost" / "cost" at each step.
        cost_labels: ``(B, K)`` 0/1 (long): whether the step's cost is positive.
        mask: ``(B, K)`` bool, False on the padding after an episode's end (ignored).
        temperature: α, treated as a constant (pass it detached).
        cost_weight: w_c (0.02 in CDT).

    Means run over the unmasked steps only.
    """
    nll = -_masked_mean(log_likelihood, mask)
    ent = _masked_mean(entropy, mask)
    picked = cost_log_probs.gather(-1, cost_labels.long().unsqueeze(-1)).squeeze(-1)
    cost_nll = -_masked_mean(picked, mask)
    loss = nll - temperature * ent + cost_weight * cost_nll
    accuracy = _masked_mean((cost_log_probs.argmax(-1) == cost_labels.long()).float(), mask)
    return loss, {
        "loss": loss.detach(), "loss/nll": nll.detach(), "loss/cost": cost_nll.detach(),
        "entropy": ent.detach(), "cost/accuracy": accuracy.detach(),
    }


def temperature_loss(temperature: torch.Tensor, entropy: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    """``α · (H − H_target)`` with ``H`` constant: minimising it raises α when the entropy is
    below target and lowers it above."""
    return temperature * (entropy.detach() - target_entropy)


def cost_model_loss(
    segment_costs: torch.Tensor, safety: torch.Tensor, binary_only: bool = False
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Safe-RLHF Eq. 6 on PreSa's feedback: segment cost ``C(σ) = Σ_t c(s_t, a_t)``.

    Classification of each segment's label, sign ``s = +1`` unsafe / ``−1`` safe:
    ``−log σ(s · C(σ))`` (so ``C > 0`` reads unsafe). Unless ``binary_only``, plus the comparison
    ``−log σ(C(σ_unsafe) − C(σ_safe))`` over the pairs whose segments differ in safety.

    Args:
        segment_costs: ``(B, 2)`` summed per-step costs of the two segments of each pair.
        safety: ``(B, 2)`` labels, ``+1`` safe, ``−1`` unsafe.
        binary_only: the Table 9 variant: the classification term only.
    """
    sign = -safety.to(segment_costs.dtype)
    classify = -F.logsigmoid(sign * segment_costs).mean()
    mixed = safety[:, 0] != safety[:, 1]
    # order each mixed pair as (unsafe, safe): sign of segment 0 is +1 iff it is the unsafe one
    gap = (segment_costs[:, 0] - segment_costs[:, 1]) * sign[:, 0]
    compare = _masked_mean(-F.logsigmoid(gap), mixed) if not binary_only else gap.new_zeros(())
    loss = classify + compare
    accuracy = ((sign * segment_costs) > 0).float().mean()
    return loss, {"loss": loss.detach(), "loss/classify": classify.detach(),
                  "loss/compare": compare.detach(), "cost/accuracy": accuracy}
