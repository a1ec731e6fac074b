"""PPL trainer: Bradley–Terry preference learning from π_ref, without SFT (PREFINE's baseline).

See :mod:`retrofit.losses.ppl` for exactly what is implemented. Each step draws
``batch_size // segment_length`` segment pairs: a random window of ``segment_length`` steps of a
random preferred trajectory (σ⁺) and one of a random non-preferred trajectory (σ⁻); so a step
scores ``batch_size`` preferred and ``batch_size`` non-preferred state–action pairs, as PREFINE.
The policy starts as a trainable copy of π_ref (the policy passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.device import get_device, make_adam, set_random_seed
from retrofit.errors import ConfigError, DataError
from retrofit.losses.ppl import bradley_terry_loss, segment_scores
from retrofit.methods.loop import train_policy
from retrofit.metrics_log import MetricsLogger, NullLogger


@dataclass(frozen=True)
class PPLConfig:
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

    def resolved(self, domain: str | None) -> PPLConfig:
        """No domain presets; validate and return."""
        self.validate()
        return self

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if self.alpha <= 0 or self.learning_rate <= 0:
            raise ConfigError(f"alpha={self.alpha} and learning_rate={self.learning_rate} "
                              "must be > 0.")
        if self.segment_length < 1 or self.batch_size < 1 or self.steps < 0:
            raise ConfigError("segment_length and batch_size must be >= 1, steps >= 0.")


class SegmentSampler:
    """Random windows of ``length`` steps inside the episodes of one trajectory set."""

    def __init__(self, data: Any, length: int, device: torch.device, rng: np.random.Generator,
                 name: str) -> None:
        for field in ("observations", "actions", "episode_starts"):
            if not hasattr(data, field):
                raise DataError(f"{name} has no {field!r}: pass a retrofit.TrajectoryDataset.")
        starts = np.asarray(data.episode_starts, dtype=np.int64)
        lengths = np.diff(starts)
        if len(lengths) == 0 or lengths.min() < 1:
            raise DataError(f"{name} has no episodes.")
        self.length = int(min(length, lengths.min()))
        valid = [np.arange(s, s + n - self.length + 1) for s, n in zip(starts[:-1], lengths,
                                                                     strict=True)]
        self.window_starts = np.concatenate(valid)
        self.obs = torch.as_tensor(np.asarray(data.observations, dtype=np.float32), device=device)
        self.act = torch.as_tensor(np.asarray(data.actions, dtype=np.float32), device=device)
        self.offsets = torch.arange(self.length, device=device)
        self.device = device
        self.rng = rng

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` windows: observations ``(n, K, obs_dim)`` and actions ``(n, K, act_dim)``."""
        first = torch.as_tensor(self.rng.choice(self.window_starts, size=n), device=self.device)
        index = first[:, None] + self.offsets[None, :]
        return self.obs[index], self.act[index]


class PPLTrainer:
    """Bradley–Terry fine-tuning of a trainable copy of ``policy`` on ``fit(D_p, D_np)``."""

    data_family: ClassVar[str] = "pairs"

    def __init__(
        self, policy: PolicyAdapter, config: PPLConfig, device: str | torch.device = "auto",
        seed: int = 0, reference: PolicyAdapter | None = None,
    ) -> None:
        config.validate()
        self.config = config
        self.device = get_device(device)
        self.seed = seed
        set_random_seed(seed)
        self.policy = policy.trainable_copy().to(self.device)
        self.reference = ((reference or policy).frozen_copy().to(self.device)
                          if config.reference_ratio else None)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("The policy has no trainable parameters: nothing to fine-tune.")
        self.optimizer = make_adam(params, config.learning_rate)
        self.steps_done = 0
        self.train_wall_clock_s = 0.0

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

    def fit(
        self,
        preferred: Any,
        nonpreferred: Any = None,
        *,
        steps: int | None = None,
        logger: MetricsLogger | None = None,
        progress: bool = True,
        callback: Callable[[int, Any], bool | None] | None = None,
        callback_every: int = 0,
    ) -> PolicyAdapter:
        """Train for ``steps`` (default ``config.steps``); return the trained adapter."""
        if nonpreferred is None:
            raise DataError(
                "PPL needs preferred and nonpreferred trajectories: call fit(preferred, "
                "nonpreferred), e.g. with dataset.split_preferences(...)."
            )
        rng = np.random.default_rng(self.seed)
        k = self.config.segment_length
        sides = [SegmentSampler(d, k, self.device, rng, name)
                 for d, name in ((preferred, "preferred"), (nonpreferred, "nonpreferred"))]
        k = min(s.length for s in sides)
        for side in sides:
            side.length, side.offsets = k, side.offsets[:k]
        n_pairs = max(1, self.config.batch_size // k)
        steps = self.config.steps if steps is None else steps
        logger = logger or NullLogger()

        def update() -> dict[str, torch.Tensor]:
            (obs_p, act_p), (obs_n, act_n) = (side.sample(n_pairs) for side in sides)
            return self.update(torch.stack([obs_p, obs_n]), torch.stack([act_p, act_n]))

        return train_policy(
            self, update, steps, desc="ppl", logger=logger, progress=progress,
            callback=callback, callback_every=callback_every,
        )

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config as a JSON-able dict."""
        return asdict(self.config)
