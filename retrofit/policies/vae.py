"""A BCQ-style conditional VAE policy (PREFINE's reference policy class).

Fujimoto et al., "Off-Policy Deep RL without Exploration" (BCQ, 2019), §4 and Appendix D:

    encoder  q(z|s, a) = N(μ_φ(s, a), σ_φ(s, a)²),   log σ clamped to [-4, 15]
    decoder  dec(s, z) = centre + half_range · tanh(g_ψ(s, z))          (in the action box)
    loss     ||a - dec(s, z)||² + β_KL · KL(q(z|s, a) || N(0, I)),   z ~ q (reparameterised)
    sample   dec(s, z),  z ~ N(0, I) clipped to [-0.5, 0.5]

The likelihood is intractable; retrofit uses the negative loss as the surrogate,
``log π(a|s) ≈ -(||a - dec(s, z)||² + β_KL · KL)``, so BC training maximises exactly the quantity
PREFINE later fine-tunes. BCQ's defaults: latent 2·action_dim, hidden (750, 750), β_KL = 0.5 (BCQ
averages the reconstruction over action dimensions; here it is summed, as in the spec's form).
Observations are standardised by buffers set from data, so the module is self-contained. It is
behaviour-cloned by ``retrofit.pretrain.pretrain_reference(dataset, VAEConfig())``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from retrofit.policies.box import BoxPolicy
from retrofit.policies.gaussian import mlp
from retrofit.policies.std_bounds import VAE_ENCODER_LOG_STD

LATENT_CLIP = 0.5  # BCQ: prior samples clipped to ±0.5


class VAEPolicy(BoxPolicy):
    """Conditional VAE over actions given states; actions in ``[action_low, action_high]``."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
        hidden_sizes: Sequence[int] = (750, 750),
        latent_dim: int | None = None,
        kl_weight: float = 0.5,
    ) -> None:
        super().__init__(observation_dim, action_dim, action_low, action_high)
        if kl_weight < 0:
            raise ValueError(f"kl_weight={kl_weight} must be >= 0 (BCQ uses 0.5).")
        self.latent_dim = int(latent_dim or 2 * action_dim)
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.kl_weight = float(kl_weight)
        last = self.hidden_sizes[-1]
        self.encoder = mlp(observation_dim + action_dim, self.hidden_sizes)
        self.enc_mean = nn.Linear(last, self.latent_dim)
        self.enc_log_std = nn.Linear(last, self.latent_dim)
        self.decoder = nn.Sequential(
            mlp(observation_dim + self.latent_dim, self.hidden_sizes), nn.Linear(last, action_dim)
        )

    def config(self) -> dict:
        """JSON-able constructor arguments (for saving next to the state dict)."""
        return {
            **self.box_config(),
            "hidden_sizes": list(self.hidden_sizes),
            "latent_dim": self.latent_dim,
            "kl_weight": self.kl_weight,
        }

    def encode(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``q(z|s, a)``'s mean and clamped log σ; ``obs``/``act`` share leading dims."""
        half = (self.action_high - self.action_low) / 2
        centred = (act - (self.action_high + self.action_low) / 2) / half
        h = self.encoder(torch.cat([self.normalize_observations(obs), centred], -1))
        return self.enc_mean(h), VAE_ENCODER_LOG_STD.clamp(self.enc_log_std(h))

    def decode(self, obs: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """``dec(s, z)`` in the action box."""
        y = torch.tanh(self.decoder(torch.cat([self.normalize_observations(obs), z], -1)))
        return self.action_low + (y + 1) * (self.action_high - self.action_low) / 2

    def elbo_terms(self, obs: torch.Tensor, act: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(||a - dec(s, z)||², KL(q(z|s, a) || N(0, I)))`` with ``z ~ q(z|s, a)``
        reparameterised; shapes as :meth:`elbo`. A KL near 0 on the data means the decoder
        ignores z (posterior collapse): the policy is then a deterministic regressor."""
        obs = obs.expand(*act.shape[:-1], obs.shape[-1])
        mean, log_std = self.encode(obs, act)
        std = torch.exp(log_std)
        z = mean + std * torch.randn_like(std)
        recon = (self.decode(obs, z) - act).pow(2).sum(-1)
        # KL(N(μ, σ²) || N(0, I)) = ½ Σ (μ² + σ² - 1 - 2 log σ)
        kl = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * log_std).sum(-1)
        return recon, kl

    def elbo(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The surrogate ``-(||a - dec(s, z)||² + β_KL · KL)``, ``z ~ q(z|s, a)`` reparameterised.

        ``obs`` is ``(B, O)``; ``act`` is ``(B, A)`` or ``(..., B, A)`` (the states are repeated
        over the leading sample dims). Returns ``act.shape[:-1]``.
        """
        recon, kl = self.elbo_terms(obs, act)
        return -(recon + self.kl_weight * kl)

    def sample(self, obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """BCQ's sampling: ``dec(s, z)``, ``z ~ N(0, I)`` clipped to ±0.5 (differentiable in ψ)."""
        z = torch.randn(
            (*obs.shape[:-1], self.latent_dim), device=obs.device, generator=generator
        ).clamp(-LATENT_CLIP, LATENT_CLIP)
        return self.decode(obs, z)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """``dec(s, 0)``: the decoder at the prior's mode."""
        z = torch.zeros(*obs.shape[:-1], self.latent_dim, device=obs.device)
        return self.decode(obs, z)
