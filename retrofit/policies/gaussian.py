"""A tanh-squashed Gaussian MLP policy: the reference policy retrofit pretrains by BC.

Actions live in the environment's box ``[low, high]``; the network works in the squashed space
``y = (a - centre) / half_range ∈ (-1, 1)``, ``y = tanh(u)``, ``u ~ N(μ(s), σ(s)²)``.
Observations are standardised by buffers (set from data), so the module is self-contained when
exported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from retrofit.policies.box import BoxPolicy
from retrofit.policies.std_bounds import TANH_GAUSSIAN_LOG_STD

ATANH_EPS = 1e-6  # inverse-tanh clip and Jacobian epsilon
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def mlp(in_dim: int, hidden_sizes: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """ReLU MLP trunk ``in_dim → hidden_sizes`` (no output layer), with optional dropout."""
    layers: list[nn.Module] = []
    last = in_dim
    for size in hidden_sizes:
        layers += [nn.Linear(last, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        last = size
    return nn.Sequential(*layers)


class TanhGaussianPolicy(BoxPolicy):
    """State-dependent diagonal Gaussian in pre-tanh space, squashed into the action box."""

    def __init__(
        self,
        observation_dim: int,
        action_dim: int,
        action_low: Sequence[float] | np.ndarray,
        action_high: Sequence[float] | np.ndarray,
        hidden_sizes: Sequence[int] = (256, 256),
        dropout: float = 0.0,
    ) -> None:
        super().__init__(observation_dim, action_dim, action_low, action_high)
        low, high = self.action_low, self.action_high
        self.hidden_sizes = tuple(int(h) for h in hidden_sizes)
        self.dropout = float(dropout)
        # Derived from the bounds once, not per call (each elementwise op costs ~5 µs on CPU).
        self.register_buffer("action_centre", (high + low) / 2, persistent=False)
        self.register_buffer("action_half_range", (high - low) / 2, persistent=False)
        self.register_buffer(
            "log_prob_offset",
            -(torch.log((high - low) / 2).sum() + action_dim * _LOG_SQRT_2PI),
            persistent=False,
        )
        self.trunk = mlp(observation_dim, self.hidden_sizes, dropout)
        last = self.hidden_sizes[-1] if self.hidden_sizes else observation_dim
        self.mean_head = nn.Linear(last, action_dim)
        self.log_std_head = nn.Linear(last, action_dim)

    def config(self) -> dict:
        """JSON-able constructor arguments (for saving next to the state dict)."""
        return {
            **self.box_config(),
            "hidden_sizes": list(self.hidden_sizes),
            "dropout": self.dropout,
        }

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pre-tanh mean and log-std, each ``(B, action_dim)``."""
        h = self.trunk(self.normalize_observations(obs))
        log_std = TANH_GAUSSIAN_LOG_STD.clamp(self.log_std_head(h))
        return self.mean_head(h), log_std

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # type: ignore[no-untyped-def]
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        with torch.no_grad():  # keep the derived constants in step with loaded bounds
            low, high = self.action_low, self.action_high
            self.action_centre.copy_((high + low) / 2)
            self.action_half_range.copy_((high - low) / 2)
            self.log_prob_offset.copy_(
                -(torch.log((high - low) / 2).sum() + self.action_dim * _LOG_SQRT_2PI)
            )

    def squashed_log_prob(
        self, mean: torch.Tensor, log_std: torch.Tensor, act: torch.Tensor
    ) -> torch.Tensor:
        """``log π(act|s)`` from a forward's ``(mean, log_std)``; ``act`` may be ``(..., B, A)``.

        ``u = atanh(clip(y, ±(1-ε)))``, ``log π = Σ log N(u; μ, σ) - Σ log(1 - y² + ε)
        - Σ log(half_range)`` (change of variables from u to the env action).
        """
        y = ((act - self.action_centre) / self.action_half_range).clamp(
            -1 + ATANH_EPS, 1 - ATANH_EPS
        )
        return self._log_prob_pre_tanh(mean, log_std, torch.atanh(y), y)

    def _log_prob_pre_tanh(
        self, mean: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor, y: torch.Tensor
    ) -> torch.Tensor:
        # Σ[-½ z² - log σ - log√(2π)] - Σ log(1 - y² + ε) - Σ log half_range, summed term-wise
        z = (u - mean) * torch.exp(-log_std)
        squares = z.square().sum(-1) * -0.5
        jacobian = torch.log1p(ATANH_EPS - y.square()).sum(-1)
        return squares - jacobian - log_std.sum(-1) + self.log_prob_offset

    def sample_from(
        self, mean: torch.Tensor, log_std: torch.Tensor, noise: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``a ~ π`` from a forward's outputs: the detached action and its ``log π(a|s)``.

        The log-probability is differentiable in ``mean``/``log_std`` (not through the sample).
        ``noise``: the standard-normal draw ``ε`` shaped like ``mean`` (default: a fresh
        ``randn_like(mean)`` from the global generator; batched runs pass each member's own).
        """
        if noise is None:
            noise = torch.randn_like(mean)
        u = (mean + noise * torch.exp(log_std)).detach()
        y = torch.tanh(u)
        act = torch.addcmul(self.action_centre, self.action_half_range, y)
        return act, self._log_prob_pre_tanh(mean, log_std, u, y)

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The mode of the squashed policy's mean: ``centre + half_range · tanh(μ(s))``."""
        mean, _ = self(obs)
        return torch.addcmul(self.action_centre, self.action_half_range, torch.tanh(mean))
