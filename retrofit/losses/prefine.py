"""PREFINE's hybrid DPO + SFT loss (PREFINE Eq. 6–9), as pure functions of log-probabilities.

Every argument is a 1-D tensor over the states of one side of the batch. "chosen" is a⁺ and
"rejected" is a⁻: on the preferred side a⁺ is the dataset action and a⁻ the policy sample; on the
non-preferred side a⁻ is the dataset action and a⁺ the policy sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class PairLogProbs:
    """Log-probabilities of a⁺ and a⁻ under the trainable and the reference policy."""

    policy_chosen: torch.Tensor
    policy_rejected: torch.Tensor
    ref_chosen: torch.Tensor
    ref_rejected: torch.Tensor


def implicit_margin(pair: PairLogProbs) -> torch.Tensor:
    """Eq. 6: ``Δ = [log πθ(a⁺|s) − log π_ref(a⁺|s)] − [log πθ(a⁻|s) − log π_ref(a⁻|s)]``."""
    return (pair.policy_chosen - pair.ref_chosen) - (pair.policy_rejected - pair.ref_rejected)


def prefine_loss(
    preferred: PairLogProbs,
    nonpreferred: PairLogProbs,
    beta: float,
    sft_weight: float,
    dpo_weight: float = 1.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = L_p + L_np`` (Eq. 9) and detached metrics.

    ``L_p = −mean_Dp[ logσ(βΔ) + λ log πθ(a⁺|s) ]`` (Eq. 7), a⁺ the dataset action;
    ``L_np = −mean_Dnp[ logσ(βΔ) ]`` (Eq. 8). ``sft_weight`` is λ; ``sft_weight=0`` is vanilla DPO.
    ``dpo_weight`` scales both DPO terms (1 in the paper; 0 is the SFT-only ablation, whose
    DPO metrics are still logged).
    Metric names follow TRL (``rewards/chosen`` = β(log πθ − log π_ref) of a⁺, etc.).
    """
    delta_p = implicit_margin(preferred)
    delta_np = implicit_margin(nonpreferred)
    dpo_p = -F.logsigmoid(beta * delta_p).mean()
    dpo_np = -F.logsigmoid(beta * delta_np).mean()
    nll = -preferred.policy_chosen.mean()
    loss_p = dpo_weight * dpo_p + sft_weight * nll
    loss = loss_p + dpo_weight * dpo_np
    with torch.no_grad():
        chosen = torch.cat([preferred.policy_chosen - preferred.ref_chosen,
                            nonpreferred.policy_chosen - nonpreferred.ref_chosen]) * beta
        rejected = torch.cat([preferred.policy_rejected - preferred.ref_rejected,
                              nonpreferred.policy_rejected - nonpreferred.ref_rejected]) * beta
        metrics = {
            "loss": loss.detach(),
            "loss/preferred": loss_p.detach(),
            "loss/nonpreferred": (dpo_weight * dpo_np).detach(),
            "loss/dpo_preferred": dpo_p.detach(),
            "loss/sft_nll": nll.detach(),
            "delta/preferred": delta_p.mean(),
            "delta/nonpreferred": delta_np.mean(),
            "rewards/chosen": chosen.mean(),
            "rewards/rejected": rejected.mean(),
            "rewards/margins": (chosen - rejected).mean(),
            "rewards/accuracies": (chosen > rejected).float().mean(),
            "accuracy/preferred": (delta_p > 0).float().mean(),
            "accuracy/nonpreferred": (delta_np > 0).float().mean(),
            "logps/dataset_preferred": preferred.policy_chosen.mean(),
            "logps/dataset_nonpreferred": nonpreferred.policy_rejected.mean(),
        }
    return loss, metrics
