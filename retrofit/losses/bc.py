"""Behaviour cloning losses: maximum likelihood (π_ref) and OSRL's BC-All / BC-Safe MSE."""

from __future__ import annotations

import torch


def bc_nll_loss(log_prob: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_batch −log π(a|s)``: maximum-likelihood BC of a stochastic policy (π_ref,
    PREFINE §5.1); ``log_prob`` is ``(B,)``, the exact density or the family's surrogate (the
    VAE's ELBO)."""
    loss = (-log_prob).mean()
    return loss, {"loss": loss.detach()}


def bc_mse_loss(
    predicted: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_{batch, dims} (π(s) - a)²`` (OSRL ``BC.actor_loss``: ``F.mse_loss``)."""
    loss = (predicted - target).pow(2).mean()
    return loss, {"loss": loss.detach(), "loss/bc_mse": loss.detach()}
