"""PPL trainer: Bradley–Terry preference learning from π_ref, without SFT (PREFINE's baseline).

See :mod:`retrofit.losses.ppl` for exactly what is implemented. Each step draws
``batch_size // segment_length`` segment pairs: a random window of ``segment_length`` steps of a
random preferred trajectory (σ⁺) and one of a random non-preferred trajectory (σ⁻); so a step
scores ``batch_size`` preferred and ``batch_size`` non-preferred state–action pairs, as PREFINE.
The policy starts as a trainable copy of π_ref (the policy passed in).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError, DataError
from retrofit.losses.bradley_terry import bradley_terry_loss
from retrofit.losses.ppl import segment_scores
from retrofit.methods.registry import register_method
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import SegmentSampler
from retrofit.training.trainer import BaseTrainer, Stage


@dataclass(frozen=True)
class PPLConfig(TrainerConfig):
    """PPL hyper-parameters (our choices where PREFINE is silent, each marked).

    alpha: temperature α of the implicit reward ``α log π`` (0.1, CPL's default).
    segment_length: steps per segment (16; ours).
    reference_ratio: score ``log π_θ - log π_ref`` instead of ``log π_θ`` (False; True is CPL-KL).
    learning_rate / batch_size / steps: as PREFINE for a matched comparison (3e-4, 256
        state–action pairs per side, 500k).
    """

    alpha: float = 0.1
    segment_length: int = 16
    reference_ratio: bool = False
    learning_rate: float = 3e-4
    batch_size: int = 256
    steps: int = 500_000

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        self.require_positive("alpha", "learning_rate")
        if self.segment_length < 1:
            raise ConfigError(f"segment_length={self.segment_length} must be >= 1.")


class PPLTrainer(BaseTrainer):
    """Bradley–Terry fine-tuning of a trainable copy of ``policy`` on ``fit(D_p, D_np)``."""

    config_class = PPLConfig
    data_kind = "pairs"
    distinct_sets = True
    config: PPLConfig

    def setup(self, policy: PolicyAdapter, reference: PolicyAdapter | None = None) -> None:
        """Trainable copy, frozen reference (only for ``reference_ratio``), Adam."""
        self.reference: PolicyAdapter | None = None
        self.fine_tuning_copies(policy, reference, frozen=self.config.reference_ratio)
        self.optimizer = self.adam(self.trainable_parameters(), self.config.learning_rate)

    def update(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, torch.Tensor]:
        """One step on ``(2, n, K, ·)`` segments: index 0 preferred, 1 non-preferred."""
        shape = obs.shape[:3]
        flat_obs, flat_act = obs.reshape(-1, obs.shape[-1]), act.reshape(-1, act.shape[-1])
        logp = self.policy.log_prob(flat_obs, flat_act)
        if self.reference is not None:
            with torch.no_grad():
                logp = logp - self.reference.log_prob(flat_obs, flat_act)
        scores = segment_scores(logp.reshape(shape), self.config.alpha)
        loss, metrics = bradley_terry_loss(scores[0], scores[1])
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return metrics

    def stages(self, preferred: Any = None, nonpreferred: Any = None, *,
               steps: int) -> list[Stage]:
        """One stage: ``batch_size // K`` segment pairs per step from ``(D_p, D_np)``."""
        if preferred is None or nonpreferred is None:
            raise DataError(
                "PPL needs preferred and nonpreferred trajectories: call fit(preferred, "
                "nonpreferred), e.g. with dataset.split_preferences(...)."
            )
        self.rng = np.random.default_rng(self.seed)
        k = self.config.segment_length
        self.preferred_segments, self.nonpreferred_segments = (
            SegmentSampler(d, k, self.device, self.rng, name)
            for d, name in ((preferred, "preferred"), (nonpreferred, "nonpreferred")))
        sides = (self.preferred_segments, self.nonpreferred_segments)
        k = min(s.length for s in sides)
        for side in sides:
            side.length, side.offsets = k, side.offsets[:k]
        n_pairs = max(1, self.config.batch_size // k)

        def update() -> dict[str, torch.Tensor]:
            (obs_p, act_p), (obs_n, act_n) = (side.sample(n_pairs) for side in sides)
            return self.update(torch.stack([obs_p, obs_n]), torch.stack([act_p, act_n]))

        return [Stage("ppl", steps, update)]


register_method("ppl", PPLTrainer, PPLConfig,
                "Bradley-Terry preference learning from the reference, no SFT (PREFINE's baseline)")
