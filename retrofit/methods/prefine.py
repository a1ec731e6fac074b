"""PREFINE trainer: DPO + SFT fine-tuning with policy-sampled counterfactuals (prefine.txt, Alg. 1).

Each step draws preferred (s, a⁺) and non-preferred (s, a⁻) pairs, samples the counterfactual
from the current policy in the same forward pass that scores the dataset action, scores both
actions under the frozen reference in one forward pass, and takes one Adam step on Eq. 9.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.device import get_device, make_adam, set_random_seed
from retrofit.errors import ConfigError, DataError
from retrofit.losses.prefine import PairLogProbs, prefine_loss
from retrofit.methods.batching import PairedBatcher, Sampling
from retrofit.methods.loop import train_policy
from retrofit.metrics_log import MetricsLogger, NullLogger

# Per-domain defaults of prefine.txt Appendix A.4 ("Final values used").
PREFINE_PRESETS: dict[str, dict[str, float]] = {
    "bullet": {"beta": 0.2, "sft_weight": 1.0},
    "safety": {"beta": 0.05, "sft_weight": 1.6},
}


@dataclass(frozen=True)
class PrefineConfig:
    """PREFINE hyper-parameters; defaults from prefine.txt Appendix A.4.

    beta: DPO temperature β (None: the domain preset, BulletGym 0.2 / SafetyGym 0.05;
        BulletGym's when the domain is unknown).
    sft_weight: SFT anchor weight λ (None: preset, BulletGym 1.0 / SafetyGym 1.6).
    learning_rate: Adam learning rate (3e-4).
    batch_size: state–action pairs per side per step (256; 256 preferred + 256 non-preferred).
    steps: training iterations (500k in the paper).
    sampling: "transitions" (uniform pairs, default) or "trajectories" (Algorithm 1; then
        ``batch_size`` counts whole trajectories per side).
    dpo_weight: weight of both DPO terms (1, Eq. 9; 0 is the SFT-only ablation).
    """

    beta: float | None = None
    sft_weight: float | None = None
    learning_rate: float = 3e-4
    batch_size: int = 256
    steps: int = 500_000
    sampling: Sampling = "transitions"
    dpo_weight: float = 1.0

    def resolved(self, domain: str | None) -> PrefineConfig:
        """Fill ``beta``/``sft_weight`` left as None from the domain preset, then validate."""
        preset = PREFINE_PRESETS.get(domain or "bullet", PREFINE_PRESETS["bullet"])
        out = replace(
            self,
            beta=preset["beta"] if self.beta is None else self.beta,
            sft_weight=preset["sft_weight"] if self.sft_weight is None else self.sft_weight,
        )
        out.validate()
        return out

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if self.beta is not None and self.beta <= 0:
            raise ConfigError(f"beta={self.beta} must be > 0 (paper sweeps 0.05–0.95).")
        if self.sft_weight is not None and self.sft_weight < 0:
            raise ConfigError(f"sft_weight={self.sft_weight} must be >= 0 (0 is vanilla DPO).")
        if self.dpo_weight < 0:
            raise ConfigError(f"dpo_weight={self.dpo_weight} must be >= 0 (0 is SFT only).")
        if self.learning_rate <= 0:
            raise ConfigError(f"learning_rate={self.learning_rate} must be > 0.")
        if self.batch_size < 1 or self.steps < 0:
            raise ConfigError(
                f"batch_size={self.batch_size} must be >= 1 and steps={self.steps} >= 0."
            )


@dataclass(frozen=True)
class VanillaDPOConfig(PrefineConfig):
    """PREFINE without the SFT anchor (λ = 0): the paper's "vanilla DPO" ablation (Fig. 6)."""

    sft_weight: float | None = 0.0


@dataclass(frozen=True)
class SFTOnlyConfig(PrefineConfig):
    """PREFINE's SFT term alone (``dpo_weight = 0``): maximum likelihood on D_p from π_ref."""

    dpo_weight: float = 0.0


class PrefineTrainer:
    """Fine-tunes a trainable copy of ``policy`` against a frozen copy (``reference``)."""

    def __init__(
        self,
        policy: PolicyAdapter,
        config: PrefineConfig,
        device: str | torch.device = "auto",
        seed: int = 0,
        reference: PolicyAdapter | None = None,
    ) -> None:
        if config.beta is None or config.sft_weight is None:
            config = config.resolved(None)
        config.validate()
        self.config = config
        self.device = get_device(device)
        self.seed = seed
        set_random_seed(seed)
        self.reference = (reference or policy).frozen_copy().to(self.device)
        self.policy = policy.trainable_copy().to(self.device)
        params = [p for p in self.policy.parameters() if p.requires_grad]
        if not params:
            raise ConfigError("The policy has no trainable parameters: nothing to fine-tune.")
        self.optimizer = make_adam(params, config.learning_rate)
        self.steps_done = 0
        self.train_wall_clock_s = 0.0

    def update(self, obs: torch.Tensor, act: torch.Tensor, n_pref: int) -> dict[str, torch.Tensor]:
        """One PREFINE step on a batch whose first ``n_pref`` rows are preferred."""
        logp_data, sampled, logp_sampled = self.policy.log_prob_and_sample(obs, act)
        with torch.no_grad():
            ref_data, ref_sampled = self.reference.log_prob(obs, torch.stack([act, sampled]))
        p, n = slice(0, n_pref), slice(n_pref, None)
        preferred = PairLogProbs(logp_data[p], logp_sampled[p], ref_data[p], ref_sampled[p])
        nonpreferred = PairLogProbs(logp_sampled[n], logp_data[n], ref_sampled[n], ref_data[n])
        assert self.config.beta is not None and self.config.sft_weight is not None
        loss, metrics = prefine_loss(
            preferred, nonpreferred, self.config.beta, self.config.sft_weight,
            self.config.dpo_weight,
        )
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
        callback: Callable[[int, PrefineTrainer], bool | None] | None = None,
        callback_every: int = 0,
    ) -> PolicyAdapter:
        """Train for ``steps`` (default ``config.steps``); return the trained adapter.

        ``callback(step, trainer)`` runs every ``callback_every`` steps off the clock (its time is
        excluded from ``train_wall_clock_s``); returning True stops training.
        """
        if nonpreferred is None:
            raise DataError(
                "PREFINE needs both preferred and nonpreferred trajectories: call "
                "fit(preferred, nonpreferred), e.g. with dataset.split_preferences(...)."
            )
        steps = self.config.steps if steps is None else steps
        logger = logger or NullLogger()
        batcher = PairedBatcher(
            preferred, nonpreferred, self.config.batch_size, self.device, self.seed,
            self.config.sampling,
        )
        return train_policy(
            self, lambda: self.update(*batcher.sample()), steps, desc="prefine",
            logger=logger, progress=progress, callback=callback, callback_every=callback_every,
        )

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config as a JSON-able dict."""
        return asdict(self.config)
