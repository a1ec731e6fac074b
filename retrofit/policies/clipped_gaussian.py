"""A Gaussian MLP policy whose samples are clipped into the action box, with the exact density.

The offline data is generated as ``a = clip(μ(s) + σ · half_range · ε, low, high)`` (the
collector's eq. 2), so a share of action components lies exactly on a bound. In the normalised
space ``y = (a − centre) / half_range`` the law of one component of ``clip(m + s·ε, −1, 1)`` is
a Gaussian density inside ``(−1, 1)`` plus an atom at each bound:

    p(y) = N(y; m, s²) / half_range                 for −1 < y < 1
    P(y = −1) = Φ((−1 − m) / s)                     (mass clipped onto the lower bound)
    P(y = +1) = Φ((m − 1) / s)                      (mass clipped onto the upper bound)

``log π(a|s)`` sums these per component (a density with respect to Lebesgue measure plus atoms at
the bounds; the reference measure cancels in every log-ratio PREFINE and PreSa use). At a bound
the log-likelihood is a log-probability, so it is ≤ 0 and cannot run to −∞ by shrinking ``s``:
``log Φ((m − 1)/s) → 0`` when the mean sits beyond the bound. Unlike a tanh-Gaussian, a boundary
action is not pushed through ``atanh`` to a huge pre-squash value.

The spread ``s(s)`` (in half-range units) is either learned and bounded below
(``s = min_std + softplus(h(s))``), or a fixed constant ``fixed_std`` that no objective can move
(the spread is then the reference's by construction). The mean ``m(s)`` is unbounded, as the
collector's is; the deterministic action is ``clip(m, −1, 1)`` mapped back to the box.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from retrofit.policies.box import BoxPolicy
from retrofit.policies.gaussian import mlp
from retrofit.policies.std_bounds import CLIPPED_GAUSSIAN_MIN_STD

BOUND_TOL = 1e-6  # |y| ≥ 1 − BOUND_TOL counts as "on the bound" (float32 data)
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def clipped_gaussian_log_prob(
    mean: torch.Tensor, std: torch.Tensor, y: torch.Tensor
) -> torch.Tensor:
    """Per-component log-likelihood of ``y`` under ``clip(N(mean, std²), −1, 1)`` (no Jacobian).

    Inside ``(−1, 1)``: ``−½z² − log std − log√(2π)`` with ``z = (y − mean)/std``. At (or beyond)
    ``−1``: ``log Φ((−1 − mean)/std)``; at (or beyond) ``+1``: ``log Φ((mean − 1)/std)``.
    Shapes broadcast; nothing is reduced.
    """
    at_low = y <= -1 + BOUND_TOL
    at_high = y >= 1 - BOUND_TOL
    inside = ~(at_low | at_high)
    # Evaluate the density only where it applies, so no masked-out branch can poison a gradient.
    z = torch.where(inside, (y - mean) / std, torch.zeros_like(mean))
    density = -0.5 * z.square() - torch.log(std) - _LOG_SQRT_2PI
    low_mass = torch.special.log_ndtr((-1.0 - mean) / std)
    high_mass = torch.special.log_ndtr((mean - 1.0) / std)
    return torch.where(at_low, low_mass, torch.where(at_high, high_mass, density))


class ClippedGaussianPolicy(BoxPolicy):
    """State-dependent diagonal Gaussian in normalised action space, clipped into the box.

    ``min_std``: lower bound of the learned spread (half-range units;
    ``CLIPPED_GAUSSIAN_MIN_STD`` = 0.05, ``retrofit.policies.std_bounds``).
    ``fixed_std``: if set, a constant spread (half-range units) instead of a learned one.
    """

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
        hidden_sizes: Sequence[int] = (256, 256),
        min_std: float = CLIPPED_GAUSSIAN_MIN_STD,
        fixed_std: float | None = None,
    ) -> None:
        super().__init__(observation_dim, action_dim, action_low, action_high)
        if min_std <= 0 or (fixed_std is not None and fixed_std <= 0):
            raise ValueError(
                f"min_std={min_std} and fixed_std={fixed_std} must be > 0 (half-range units); "
                "use fixed_std=None for a learned spread."
            )
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.min_std = float(min_std)
        self.fixed_std = None if fixed_std is None else float(fixed_std)
        self.trunk = mlp(observation_dim, self.hidden_sizes)
        last = self.hidden_sizes[-1] if self.hidden_sizes else observation_dim
        self.mean_head = nn.Linear(last, action_dim)
        self.std_head = nn.Linear(last, action_dim) if self.fixed_std is None else None

    def config(self) -> dict:
        """JSON-able constructor arguments (for saving next to the state dict)."""
        return {
            **self.box_config(),
            "hidden_sizes": list(self.hidden_sizes),
            "min_std": self.min_std,
            "fixed_std": self.fixed_std,
        }

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised mean ``m(s)`` and spread ``s(s)`` (half-range units), each ``(B, A)``."""
        h = self.trunk(self.normalize_observations(obs))
        mean = self.mean_head(h)
        if self.std_head is None:
            return mean, torch.full_like(mean, self.fixed_std or 1.0)
        return mean, self.min_std + F.softplus(self.std_head(h))

    def _normalise(self, act: torch.Tensor) -> torch.Tensor:
        centre = (self.action_high + self.action_low) / 2
        half_range = (self.action_high - self.action_low) / 2
        return (act - centre) / half_range

    def clipped_log_prob(
        self, mean: torch.Tensor, std: torch.Tensor, act: torch.Tensor
    ) -> torch.Tensor:
        """``log π(act|s)`` from a forward's ``(mean, std)``; ``act`` may be ``(..., B, A)``.

        Inside the box the density carries the Jacobian ``−Σ log half_range`` of ``y → a``.
        """
        y = self._normalise(act)
        per = clipped_gaussian_log_prob(mean, std, y)
        inside = (y > -1 + BOUND_TOL) & (y < 1 - BOUND_TOL)
        log_half = torch.log((self.action_high - self.action_low) / 2)
        return (per - inside * log_half).sum(-1)

    def sample_from(
        self, mean: torch.Tensor, std: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``a = clip(m + s·ε)`` in env units (detached) and its differentiable ``log π(a|s)``.

        ``noise``: ``ε`` shaped like ``mean`` (default: ``randn_like(mean)``, global generator).
        """
        if noise is None:
            noise = torch.randn_like(mean)
        y = (mean + std * noise).detach().clamp(-1.0, 1.0)
        centre = (self.action_high + self.action_low) / 2
        half_range = (self.action_high - self.action_low) / 2
        act = centre + half_range * y
        return act, self.clipped_log_prob(mean, std, act)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """``centre + half_range · clip(m(s), −1, 1)``."""
        mean, _ = self(obs)
        centre = (self.action_high + self.action_low) / 2
        half_range = (self.action_high - self.action_low) / 2
        return centre + half_range * mean.clamp(-1.0, 1.0)
