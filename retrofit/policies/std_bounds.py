"""How far retrofit's stochastic policies may shrink (or grow) their spread: one definition per
family.

Three families bound their standard deviation, with different values for different reasons;
each value is defined here once and imported where it is used. They are the values every trained
result so far was made with: changing one changes results, so change it here, on purpose.

- :data:`TANH_GAUSSIAN_LOG_STD`, ``[-5, 2]``: the pre-tanh ``log σ`` of
  :class:`~retrofit.policies.gaussian.TanhGaussianPolicy` (π_ref, CPQ's actor) and of
  :class:`~retrofit.policies.decision_transformer.DecisionTransformer`'s action head (CDT). The
  floor keeps ``log π`` of a dataset action finite when the policy grows confident
  (``σ ≥ e⁻⁵ ≈ 0.0067`` pre-tanh); the same bounds as OSRL's ``DiagGaussianActor``
  (``log_std_bounds=[-5.0, 2.0]``, ``osrl/common/net.py``, CDT's head). OSRL's
  ``SquashedGaussianMLPActor`` uses ``[-20, 2]``; retrofit does not.
- :data:`VAE_ENCODER_LOG_STD`, ``[-4, 15]``: the ``log σ`` of the latent ``q(z|s, a)`` of the
  BCQ-style VAEs (:class:`~retrofit.policies.vae.VAEPolicy`, CPQ's ``ActionVAE``), BCQ's clamp as
  OSRL's ``VAE`` has it (``log_std.clamp(-4, 15)``).
- :data:`CLIPPED_GAUSSIAN_MIN_STD`, ``0.05``: the default lower bound of
  :class:`~retrofit.policies.clipped_gaussian.ClippedGaussianPolicy`'s learned spread
  ``s = min_std + softplus(h)``, in half-range units (also ``retrofit.pretrain.BCConfig``'s
  default). A policy's own ``min_std`` is saved with it, so a loaded policy keeps the bound it
  was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LogStdBounds:
    """Closed interval ``[low, high]`` for a network's ``log σ`` output."""

    low: float
    high: float

    def clamp(self, log_std: torch.Tensor) -> torch.Tensor:
        """``log_std`` clamped into ``[low, high]`` (gradient zero outside, as ``Tensor.clamp``)."""
        return log_std.clamp(self.low, self.high)


TANH_GAUSSIAN_LOG_STD = LogStdBounds(-5.0, 2.0)
VAE_ENCODER_LOG_STD = LogStdBounds(-4.0, 15.0)
CLIPPED_GAUSSIAN_MIN_STD = 0.05
