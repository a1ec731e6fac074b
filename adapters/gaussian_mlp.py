"""Adapter for retrofit's own ``TanhGaussianPolicy`` (the BC reference policy)."""

from __future__ import annotations

import torch

from retrofit.adapters.module_adapter import ModuleAdapter
from retrofit.policies.gaussian import TanhGaussianPolicy


class TanhGaussianAdapter(ModuleAdapter):
    """``PolicyAdapter`` over a ``TanhGaussianPolicy``; ``export()`` returns the module itself."""

    module: TanhGaussianPolicy

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Exact squashed-Gaussian ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        mean, log_std = self.module(obs)
        return self.module.squashed_log_prob(mean, log_std, act)

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One forward pass: the per-state parameters ``(mean, log_std)`` that ``log_prob``
        scores actions with (a frozen reference's can be computed once per dataset state)."""
        return self.module(obs)

    def log_prob_from(self, params: tuple[torch.Tensor, ...], act: torch.Tensor) -> torch.Tensor:
        """``log π(act)`` from ``distribution_params``; ``act`` may carry leading sample dims."""
        return self.module.squashed_log_prob(*params, act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        mean, log_std = self.module(obs)
        sampled, sampled_logp = self.module.sample_from(mean, log_std)
        return self.module.squashed_log_prob(mean, log_std, act), sampled, sampled_logp

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions drawn from the policy."""
        with torch.no_grad():
            mean, log_std = self.module(obs)
            return self.module.sample_from(mean, log_std)[0]
