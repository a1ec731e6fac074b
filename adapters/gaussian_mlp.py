"""Adapter for retrofit's own ``TanhGaussianPolicy`` (the BC reference policy)."""

from __future__ import annotations

from retrofit.adapters.module_adapter import ParametricAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.policies.gaussian import TanhGaussianPolicy


class TanhGaussianAdapter(ParametricAdapter):
    """``PolicyAdapter`` over a ``TanhGaussianPolicy`` (exact squashed-Gaussian density of
    ``(mean, log_std)``); ``export()`` returns the module itself."""

    module: TanhGaussianPolicy
    density = "squashed_log_prob"
    squashed = True


register_adapter("retrofit.policies.TanhGaussianPolicy",
                 lambda obj: isinstance(obj, TanhGaussianPolicy), TanhGaussianAdapter)
