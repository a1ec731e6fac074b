"""Adapter for retrofit's ``ClippedGaussianPolicy`` (exact density for clipped actions)."""

from __future__ import annotations

import torch

from retrofit.adapters.module_adapter import ModuleAdapter
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy


class ClippedGaussianAdapter(ModuleAdapter):
    """``PolicyAdapter`` over a ``ClippedGaussianPolicy``; ``export()`` returns the module."""

    module: ClippedGaussianPolicy

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Exact ``log π(act|obs)`` with atoms at the bounds; ``act`` may carry sample dims."""
        mean, std = self.module(obs)
        return self.module.clipped_log_prob(mean, std, act)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One forward pass: the per-state ``(mean, std)`` that ``log_prob`` scores actions with
        (a frozen reference's can be computed once per dataset state)."""
        return self.module(obs)

    def log_prob_from(self, params: tuple[torch.Tensor, ...], act: torch.Tensor) -> torch.Tensor:
        """``log π(act)`` from ``distribution_params``; ``act`` may carry leading sample dims."""
        return self.module.clipped_log_prob(*params, act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        mean, std = self.module(obs)
        sampled, sampled_logp = self.module.sample_from(mean, std)
        return self.module.clipped_log_prob(mean, std, act), sampled, sampled_logp

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The unclipped mean ``centre + half_range · m(s)``, differentiable everywhere.

        PreSa's fixed-variance likelihood ``−‖μ(s) − a‖²`` uses it; the clipped action the policy
        takes would have zero gradient wherever ``m(s)`` lies beyond a bound.
        """
        mean, _ = self.module(obs)
        centre = (self.module.action_high + self.module.action_low) / 2
        half_range = (self.module.action_high - self.module.action_low) / 2
        return centre + half_range * mean

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions ``clip(m + s·ε)``."""
        with torch.no_grad():
            mean, std = self.module(obs)
            return self.module.sample_from(mean, std)[0]
