"""Behaviour cloning losses: maximum likelihood (π_ref) and OSRL's BC-All / BC-Safe MSE."""

from __future__ import annotations

import torch


def bc_nll_loss(log_prob: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_batch −log π(a|s)``: maximum-likelihood BC of a stochastic policy (π_ref,
    PREFINE §5.1); ``log_prob`` is ``(B,)``, the exact density or the family's surrogate (the
    VAE's ELBO)."""
    loss = (-log_prob).mean()
    return loss, {"loss": loss.detach()}


def bc_vae_loss(recon: torch.Tensor, kl: torch.Tensor,
                kl_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_batch (||a - dec(s, z)||² + β_KL · KL)``, the negative ELBO (BCQ §4, summed over
    action dimensions); logs both terms, so a KL that falls to ≈ 0 (posterior collapse: the
    decoder ignores z, the VAE is a deterministic regressor) shows in the metrics."""
    loss, metrics = bc_nll_loss(-(recon + kl_weight * kl))
    return loss, {**metrics, "vae/recon": recon.mean().detach(), "vae/kl": kl.mean().detach()}


def bc_mse_loss(
    predicted: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L = mean_{batch, dims} (π(s) - a)²`` (OSRL ``BC.actor_loss``: ``F.mse_loss``)."""
    loss = (predicted - target).pow(2).mean()
    return loss, {"loss": loss.detach(), "loss/bc_mse": loss.detach()}
