"""Adapter for retrofit's ``ClippedGaussianPolicy`` (exact density for clipped actions)."""

from __future__ import annotations

import torch

from retrofit.adapters.module_adapter import ParametricAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy


class ClippedGaussianAdapter(ParametricAdapter):
    """``PolicyAdapter`` over a ``ClippedGaussianPolicy`` (exact density of ``(mean, std)`` with
    atoms at the bounds); ``export()`` returns the module."""

    module: ClippedGaussianPolicy
    density = "clipped_log_prob"

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The unclipped mean ``centre + half_range · m(s)``, differentiable everywhere.

        PreSa's fixed-variance likelihood ``−‖μ(s) − a‖²`` uses it; the clipped action the policy
        takes would have zero gradient wherever ``m(s)`` lies beyond a bound.
        """
        mean, _ = self.module(obs)
        centre = (self.module.action_high + self.module.action_low) / 2
        half_range = (self.module.action_high - self.module.action_low) / 2
        return centre + half_range * mean


register_adapter("retrofit.policies.clipped_gaussian.ClippedGaussianPolicy",
                 lambda obj: isinstance(obj, ClippedGaussianPolicy), ClippedGaussianAdapter)
