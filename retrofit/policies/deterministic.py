"""A deterministic MLP actor (OSRL's BC actor): ``a = centre + half_range · tanh(f(s))``.

Observations are standardised by buffers set from data, so the exported module is
self-contained. As a ``PolicyAdapter`` it is a fixed-variance Gaussian around ``μ(s)``
(docs/methods.md, "Likelihoods"): ``log π(a|s) = -||μ(s) - a||² / (2 σ_fixed²)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from retrofit.policies.box import BoxPolicy
from retrofit.policies.gaussian import mlp


class DeterministicPolicy(BoxPolicy):
    """MLP regressor from observations to actions inside the box ``[low, high]``.

    ``sigma`` is the fixed standard deviation (in action units) used when the policy is seen as
    a Gaussian for preference losses and stochastic sampling; it does not affect ``forward``.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
        hidden_sizes: Sequence[int] = (256, 256),
        sigma: float = 0.1,
    ) -> None:
        super().__init__(observation_dim, action_dim, action_low, action_high)
        if sigma <= 0:
            raise ValueError(f"sigma={sigma} must be > 0 (the fixed Gaussian standard deviation).")
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.sigma = float(sigma)
        self.trunk = mlp(observation_dim, self.hidden_sizes)
        last = self.hidden_sizes[-1] if self.hidden_sizes else observation_dim
        self.head = nn.Linear(last, action_dim)

    def config(self) -> dict:
        """JSON-able constructor arguments (for saving next to the state dict)."""
        return {
            **self.box_config(),
            "hidden_sizes": list(self.hidden_sizes),
            "sigma": self.sigma,
        }

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The action ``centre + half_range · tanh(f(s))``, ``(B, action_dim)``."""
        h = self.trunk(self.normalize_observations(obs))
        centre = (self.action_high + self.action_low) / 2
        half_range = (self.action_high - self.action_low) / 2
        return centre + half_range * torch.tanh(self.head(h))

    def log_prob_from_mean(self, mean: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """``-||mean - act||² / (2 σ²)`` summed over action dims; ``act`` may be ``(..., B, A)``."""
        return -(mean - act).pow(2).sum(-1) / (2 * self.sigma**2)

    def sample_from(self, mean: torch.Tensor) -> torch.Tensor:
        """Detached ``mean + N(0, σ²)`` noise, clamped into the action box."""
        noise = torch.randn_like(mean) * self.sigma
        clipped = torch.minimum(mean + noise, self.action_high)
        return torch.maximum(clipped, self.action_low).detach()
