"""CPQ (Constraints Penalized Q-learning, Xu et al. 2022, as in OSRL), as pure functions.

Notation: ``Q`` reward critic, ``Qc`` cost critic, primes are target networks, ``L`` the episode
cost threshold (``cost_threshold`` in code; the paper's symbol), ``T`` the episode length.
``q_thres``/``qc_thres`` are OSRL's names for the threshold in Q-value units derived from it.
Critic tensors carry the ensemble on dim 0: ``(E, B)``.
"""

from __future__ import annotations

import torch


def cost_critic_thresholds(cost_threshold: float, gamma: float, episode_len: int,
                           qc_scalar: float = 1.5) -> tuple[float, float]:
    """``q_thres = L (1-γ^T) / ((1-γ) T)`` (the discounted per-step share of L); ``qc_thres =
    qc_scalar · q_thres`` (OSRL ``CPQ.__init__``)."""
    q_thres = cost_threshold * (1 - gamma**episode_len) / (1 - gamma) / episode_len
    return q_thres, qc_scalar * q_thres


def vae_kl(mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Per-sample ``KL(N(μ, σ²) || N(0, I))`` averaged over latent dims (OSRL):
    ``-0.5 · mean_j(1 + log σ_j² - μ_j² - σ_j²)``; shape ``mean.shape[:-1]``."""
    return -0.5 * (1 + torch.log(std.pow(2)) - mean.pow(2) - std.pow(2)).mean(-1)


def vae_loss(
    recon: torch.Tensor, actions: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
    kl_weight: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_vae = mean (recon - a)² + β_KL · mean KL`` (OSRL ``CPQ.vae_loss``)."""
    recon_loss = (recon - actions).pow(2).mean()
    kl = vae_kl(mean, std).mean()
    loss = recon_loss + kl_weight * kl
    return loss, {"loss/vae": loss.detach(), "vae/recon": recon_loss.detach(),
                  "vae/kl": kl.detach()}


def reward_critic_target(
    rewards: torch.Tensor, dones: torch.Tensor, q_next: torch.Tensor, qc_next: torch.Tensor,
    q_thres: float, gamma: float,
) -> torch.Tensor:
    """Constraints-penalised Bellman target ``r + γ (1-d) 1[Qc'(s',a') ≤ q_thres] Q'(s',a')``.

    ``q_next`` is the ensemble minimum of the target reward critic, ``qc_next`` the target cost
    critic, both at ``a' ~ π(·|s')``; all tensors ``(B,)``.
    """
    return rewards + gamma * (1 - dones) * (qc_next <= q_thres).to(q_next.dtype) * q_next


def cost_critic_target(
    costs: torch.Tensor, dones: torch.Tensor, qc_next: torch.Tensor, gamma: float
) -> torch.Tensor:
    """``c + γ (1-d) Qc'(s',a')`` (OSRL omits ``(1-d)``; a terminal state has no future cost)."""
    return costs + gamma * (1 - dones) * qc_next


def ensemble_mse(predictions: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``Σ_e mean_b (Q_e(s,a) - y)²`` over an ``(E, B)`` ensemble (OSRL ``EnsembleQCritic``)."""
    return (predictions - target.unsqueeze(0)).pow(2).mean(-1).sum()


def ood_mask(kl: torch.Tensor, quantile: float = 0.75) -> torch.Tensor:
    """``1[KL ≥ q]`` over an ``(N, B)`` KL batch of ``N`` sampled actions per state, ``q`` the
    ``quantile`` of the whole batch: only the actions the VAE finds least like the data count
    as out of distribution (no gradient)."""
    return kl.detach() >= torch.quantile(kl.detach(), quantile)


def ood_cost_mean(qc_selected: torch.Tensor, n_entries: int) -> torch.Tensor:
    """``mean qc_ood = mean_B mean_N 1[KL ≥ q] Qc(s, a_n)`` from the masked actions' values.

    ``= Σ_{masked} Qc / (N·B)``: the unmasked actions contribute 0 to the value and the
    gradient, so the critic need not score them (three quarters of the N·B actions at the 0.75
    quantile). ``n_entries`` is ``N·B``.
    """
    return qc_selected.sum() / n_entries


def cost_critic_loss(
    qc_predictions: torch.Tensor, target: torch.Tensor, qc_ood_mean: torch.Tensor,
    alpha: torch.Tensor, qc_thres: float,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_Qc = Σ_e mean (Qc_e - y)² - α (mean qc_ood - qc_thres)``, ``α = exp(log α)`` detached.

    Minimising it fits the Bellman target and raises ``Qc`` on out-of-distribution actions until
    they exceed ``qc_thres`` (so the penalised operator treats them as unsafe).
    """
    mse = ensemble_mse(qc_predictions, target)
    penalty = qc_ood_mean - qc_thres
    loss = mse - alpha.detach() * penalty
    return loss, {"loss/cost_critic": loss.detach(), "cost_critic/mse": mse.detach(),
                  "cost_critic/qc_ood": qc_ood_mean.detach()}


def alpha_loss(log_alpha: torch.Tensor, qc_ood_mean: torch.Tensor, qc_thres: float
               ) -> torch.Tensor:
    """Dual loss ``exp(log α) · (mean qc_ood - qc_thres)`` (detached gap): gradient descent raises
    ``α`` while ``qc_ood < qc_thres`` and lowers it once OOD actions look costly enough."""
    return log_alpha.exp() * (qc_ood_mean.detach() - qc_thres)


def actor_loss(q_pi: torch.Tensor, qc_pi: torch.Tensor, q_thres: float
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """``L_π = -mean 1[Qc(s,π(s)) ≤ q_thres] Q(s,π(s))`` (OSRL ``CPQ.actor_loss``)."""
    safe = (qc_pi.detach() <= q_thres).to(q_pi.dtype)
    loss = -(safe * q_pi).mean()
    return loss, {"loss/actor": loss.detach(), "actor/safe_fraction": safe.mean()}

