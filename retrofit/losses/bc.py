"""Behaviour cloning of a deterministic actor (OSRL's BC-All / BC-Safe): mean squared error."""

from __future__ import annotations

import torch


def bc_mse_loss(
    predicted: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_{batch, dims} (π(s) - a)²`` (OSRL ``BC.actor_loss``: ``F.mse_loss``)."""
    loss = (predicted - target).pow(2).mean()
    return loss, {"loss": loss.detach(), "loss/bc_mse": loss.detach()}
