"""The Bradley–Terry preference loss, the one definition every method uses.

``L = −mean log σ(ψ⁺ − ψ⁻)`` over pairs of scores (Bradley & Terry 1952; Christiano et al. 2017;
Safe-RLHF, Dai et al. 2024, Eq. 5; CPL, Hejna et al. 2024, Eq. 5 with ψ the discounted sum of
α log π; PreSa Eq. 2–4). Metrics use TRL's names: ``rewards/chosen`` is the mean ψ⁺,
``rewards/rejected`` the mean ψ⁻, ``rewards/margins`` the mean ψ⁺ − ψ⁻ and
``rewards/accuracies`` the fraction of pairs with ψ⁺ > ψ⁻.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bradley_terry_loss(
    score_chosen: torch.Tensor, score_rejected: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``−mean logσ(ψ⁺ − ψ⁻)`` and its TRL-named metrics (``loss`` included, detached)."""
    margin = score_chosen - score_rejected
    loss = -F.logsigmoid(margin).mean()
    with torch.no_grad():
        metrics = {
            "loss": loss.detach(),
            "rewards/chosen": score_chosen.mean(),
            "rewards/rejected": score_rejected.mean(),
            "rewards/margins": margin.mean(),
            "rewards/accuracies": (margin > 0).float().mean(),
        }
    return loss, metrics
