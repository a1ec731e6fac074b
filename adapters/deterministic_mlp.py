"""Adapter for retrofit's ``DeterministicPolicy`` (the BC-All / BC-Safe actor).

The policy is seen as a fixed-variance Gaussian around its output:
``log π(a|s) = -||μ(s) - a||² / (2 σ_fixed²)`` (constant dropped); sampling adds ``N(0, σ_fixed²)``
noise, clamped into the action box.
"""

from __future__ import annotations

import torch

from retrofit.adapters.module_adapter import ModuleAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.policies.deterministic import DeterministicPolicy


class DeterministicAdapter(ModuleAdapter):
    """``PolicyAdapter`` over a ``DeterministicPolicy``; ``export()`` returns the module."""

    module: DeterministicPolicy

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Fixed-variance Gaussian ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        return self.module.log_prob_from_mean(self.module(obs), act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        mean = self.module(obs)
        sampled = self.module.sample_from(mean)
        return (
            self.module.log_prob_from_mean(mean, act),
            sampled,
            self.module.log_prob_from_mean(mean, sampled),
        )

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions ``μ(s) + N(0, σ²)``, clamped into the box."""
        with torch.no_grad():
            return self.module.sample_from(self.module(obs))

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """``μ(s)``."""
        return self.module(obs)


register_adapter("retrofit.policies.deterministic.DeterministicPolicy",
                 lambda obj: isinstance(obj, DeterministicPolicy), DeterministicAdapter)
