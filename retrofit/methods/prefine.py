"""PREFINE trainer: DPO + SFT fine-tuning with policy-sampled counterfactuals (PREFINE, Alg. 1).

Each step draws preferred (s, a⁺) and non-preferred (s, a⁻) pairs, samples the counterfactual
from the current policy in the same forward pass that scores the dataset action, scores both
actions under the frozen reference in one forward pass, and takes one Adam step on Eq. 9.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.data.dataset import share_on_bounds
from retrofit.errors import ConfigError, DataError, LikelihoodWarning
from retrofit.losses.prefine import PairLogProbs, prefine_loss
from retrofit.methods.registry import register_method
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import PairedBatcher, Sampling
from retrofit.training.trainer import BaseTrainer, Stage
from retrofit.training.weight_average import WeightAverage

# A tanh-squashed reference is warned about when at least this share of action components sits
# on the bounds (the collector clips 16-33 % of them; docs/prefine.md).
BOUNDARY_WARNING_SHARE = 0.01

# Per-domain defaults of PREFINE Appendix A.4 ("Final values used"), except BulletGym's SFT
# weight and learning rate. A.4 has λ = 1.0 and Adam lr 3e-4. BulletGym's λ = 0.3 and lr 3e-5 were
# chosen by the protocol of docs/protocol.md on selection cells only (BallCircle, BallRun, CarRun,
# κ = 20, seeds 0-2, 20 000 updates): at lr 3e-4 the CarRun policies collapsed in 2 of 3 seeds
# (λ = 0.3) and 1 of 3 (λ = 0), at lr 3e-5 in none; mean normalised reward 0.591 against 0.531
# for the best lr-3e-4 candidate (docs/results/retrofit-vs-scratch/). sft_weight=1.0,
# learning_rate=3e-4 restore A.4 (the ``paper_preset``).
PREFINE_PRESETS: dict[str, dict[str, float]] = {
    "bullet": {"beta": 0.2, "sft_weight": 0.3, "learning_rate": 3e-5},
    "safety": {"beta": 0.05, "sft_weight": 1.6, "learning_rate": 3e-4},
}

PAPER_PRESETS: dict[str, dict[str, float]] = {
    "bullet": {"beta": 0.2, "sft_weight": 1.0, "learning_rate": 3e-4},
    "safety": {"beta": 0.05, "sft_weight": 1.6, "learning_rate": 3e-4},
}
"""PREFINE Appendix A.4's values: ``PrefineConfig(**PAPER_PRESETS["bullet"])`` is the
paper-literal setting (issue 21 keeps it one named preset away)."""


@dataclass(frozen=True)
class PrefineConfig(TrainerConfig):
    """PREFINE hyper-parameters; defaults from PREFINE Appendix A.4.

    beta: DPO temperature β (None: the domain preset, BulletGym 0.2 / SafetyGym 0.05;
        BulletGym's when the domain is unknown).
    sft_weight: SFT anchor weight λ (None: preset, BulletGym 0.3 — A.4 has 1.0 — / SafetyGym
        1.6).
    learning_rate: Adam learning rate (None: preset, BulletGym 3e-5 — A.4 has 3e-4 — /
        SafetyGym 3e-4).
    batch_size: state–action pairs per side per step (256; 256 preferred + 256 non-preferred).
    steps: training iterations (500k in the paper).
    sampling: "transitions" (uniform pairs, default) or "trajectories" (Algorithm 1; then
        ``batch_size`` counts whole trajectories per side).
    precompute_reference: compute the frozen reference's per-state distribution parameters
        once for every dataset state (one chunked forward pass) and score each step's actions
        from that table instead of a reference forward pass per step — exact up to float
        rounding, since π_ref is frozen and in eval mode (TRL's ``precompute_ref_log_probs``
        idea, for a reference whose density is a closed form of per-state parameters). Used
        when the reference adapter offers ``distribution_params`` (retrofit's Gaussian
        policies); otherwise the reference runs every step. True by default.
    dpo_weight: weight of both DPO terms (1, Eq. 9; 0 is the SFT-only ablation).
    weight_average_decay: 0 (default) returns the last step's weights; a decay ``d`` in (0, 1)
        returns an exponential moving average of the weights instead, ``w̄ ← d·w̄ + (1 − d)·w``
        after every step (:mod:`retrofit.training.weight_average`; not part of the paper).
        Checkpoints and callbacks along training see the last step's weights; the average
        replaces them when the fit ends.
    """

    presets: ClassVar[Mapping[str, Mapping[str, Any]]] = PREFINE_PRESETS

    beta: float | None = None
    sft_weight: float | None = None
    learning_rate: float | None = None
    batch_size: int = 256
    steps: int = 500_000
    sampling: Sampling = "transitions"
    precompute_reference: bool = True
    dpo_weight: float = 1.0
    weight_average_decay: float = 0.0

    added_later: ClassVar[Mapping[str, Any]] = {"weight_average_decay": 0.0}

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if self.beta is not None and self.beta <= 0:
            raise ConfigError(f"beta={self.beta} must be > 0 (paper sweeps 0.05–0.95).")
        if self.sft_weight is not None and self.sft_weight < 0:
            raise ConfigError(f"sft_weight={self.sft_weight} must be >= 0 (0 is vanilla DPO).")
        if self.dpo_weight < 0:
            raise ConfigError(f"dpo_weight={self.dpo_weight} must be >= 0 (0 is SFT only).")
        self.require_positive("learning_rate")
        if not 0.0 <= self.weight_average_decay < 1.0:
            raise ConfigError(
                f"weight_average_decay={self.weight_average_decay} must be in [0, 1): 0 returns "
                "the last step's weights, 0.999 an average over roughly the last 1000 steps."
            )


@dataclass(frozen=True)
class VanillaDPOConfig(PrefineConfig):
    """PREFINE without the SFT anchor (λ = 0): the paper's "vanilla DPO" ablation (Fig. 6), at
    A.4's learning rate 3e-4 (its docs/prefine.md and issue-21 numbers were measured at it)."""

    sft_weight: float | None = 0.0
    learning_rate: float | None = 3e-4


@dataclass(frozen=True)
class SFTOnlyConfig(PrefineConfig):
    """PREFINE's SFT term alone (``dpo_weight = 0``): maximum likelihood on D_p from π_ref, at
    A.4's learning rate 3e-4 (the SFT-only baseline of docs/results/retrofit-vs-scratch)."""

    dpo_weight: float = 0.0
    learning_rate: float | None = 3e-4


class PrefineTrainer(BaseTrainer):
    """Fine-tunes a trainable copy of ``policy`` against a frozen copy (``reference``)."""

    config_class = PrefineConfig
    data_kind = "pairs"
    distinct_sets = True
    config: PrefineConfig
    derived_state = ("_ref_table",)

    def setup(self, policy: PolicyAdapter, reference: PolicyAdapter | None = None) -> None:
        """Frozen reference (``reference`` or ``policy``), trainable copy, Adam."""
        self.fine_tuning_copies(policy, reference)
        self._ref_table: tuple[torch.Tensor, ...] | None = None
        self.optimizer = self.adam(self.trainable_parameters(), self.config.learning_rate)
        self.weight_average = (
            WeightAverage(self.trainable_parameters(), self.config.weight_average_decay)
            .to(self.device) if self.config.weight_average_decay > 0 else None
        )

    def update(self, obs: torch.Tensor, act: torch.Tensor, n_pref: int,
               ref_params: tuple[torch.Tensor, ...] | None = None) -> dict[str, torch.Tensor]:
        """One PREFINE step on a batch whose first ``n_pref`` rows are preferred.

        ``ref_params``: the reference's precomputed distribution parameters of these states
        (then the reference runs no forward pass).
        """
        logp_data, sampled, logp_sampled = self.policy.log_prob_and_sample(obs, act)
        with torch.no_grad():
            both = torch.stack([act, sampled])
            if ref_params is not None:
                ref_data, ref_sampled = self.reference.log_prob_from(ref_params, both)
            else:
                ref_data, ref_sampled = self.reference.log_prob(obs, both)
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
        if self.weight_average is not None:
            self.weight_average.update(self.trainable_parameters())
        return metrics

    def reference_table(self) -> tuple[torch.Tensor, ...] | None:
        """The frozen reference's distribution parameters of every training state, row-aligned
        with ``self.batcher.obs`` (``precompute_reference``), or None where the reference runs
        every step instead (``precompute_reference=False`` or a reference without
        ``distribution_params``). Filled by the prepare step of :meth:`stages`' stage, before the
        first update; batched runs (:mod:`retrofit.methods.prefine_batched`) read each member's
        table here."""
        return self._ref_table

    def finish(self) -> None:
        """With ``weight_average_decay`` > 0, the returned policy takes the averaged weights."""
        if self.weight_average is not None:
            self.weight_average.copy_to(self.trainable_parameters())

    def check_data(self, *data: Any) -> None:
        """The base checks, then a ``LikelihoodWarning`` when a tanh-squashed reference meets
        actions on the box bounds (its log-likelihood there is unbounded; docs/prefine.md)."""
        super().check_data(*data)
        if not getattr(self.reference, "squashed", False):
            return
        acts = [np.asarray(d.actions) for d in data[:2] if hasattr(d, "actions")]
        share = share_on_bounds(np.concatenate(acts) if acts else np.empty((0,)),
                                self.reference.action_low, self.reference.action_high)
        if share >= BOUNDARY_WARNING_SHARE:
            warnings.warn(LikelihoodWarning(
                f"{share:.0%} of the data's action components lie on the action bounds and the "
                f"reference ({type(self.reference).__name__}) is tanh-squashed: its log-likelihood "
                "of a boundary action is unbounded, so PREFINE's DPO terms can be met by driving "
                "logps/dataset_nonpreferred towards -inf (-1.6e6 nats with an SB3 SAC reference "
                "on BallRun). Prefer a reference with mass on the bounds (BCConfig()'s "
                "default: policy='clipped-gaussian', fixed_std=0.2; `retrofit compare`'s "
                "default π_ref) or watch logps/dataset_nonpreferred in metrics.csv; "
                "docs/prefine.md."),
                stacklevel=2)

    def stages(self, preferred: Any = None, nonpreferred: Any = None, *,
               steps: int) -> list[Stage]:
        """One stage of ``steps`` PREFINE updates on pairs drawn from ``(D_p, D_np)``."""
        if preferred is None or nonpreferred is None:
            raise DataError(
                "PREFINE needs both preferred and nonpreferred trajectories: call "
                "fit(preferred, nonpreferred), e.g. with dataset.split_preferences(...)."
            )
        self.batcher = PairedBatcher(
            preferred, nonpreferred, self.config.batch_size, self.device, self.seed,
            self.config.sampling,
        )
        self._ref_table = None
        cached = self.config.precompute_reference and hasattr(self.reference,
                                                               "distribution_params")

        def precompute() -> None:
            if cached:
                self._ref_table = _reference_table(self.reference, self.batcher.obs)

        def update() -> dict[str, torch.Tensor]:
            rows, n_pref = self.batcher.sample_index()
            params = None if self._ref_table is None else tuple(t[rows] for t in self._ref_table)
            return self.update(self.batcher.obs[rows], self.batcher.act[rows], n_pref, params)

        return [Stage(self.method_name or "prefine", steps, update, prepare=precompute)]


def _reference_table(reference: PolicyAdapter, obs: torch.Tensor,
                     chunk: int = 65_536) -> tuple[torch.Tensor, ...]:
    """The frozen reference's ``distribution_params`` of every state, in chunks, no gradients."""
    with torch.no_grad():
        parts = [reference.distribution_params(obs[i:i + chunk])  # type: ignore[attr-defined]
                 for i in range(0, len(obs), chunk)]
    return tuple(torch.cat(column) for column in zip(*parts, strict=True))


register_method("prefine", PrefineTrainer, PrefineConfig,
                "DPO + SFT with policy-sampled counterfactual actions (PREFINE)")
register_method("dpo", PrefineTrainer, VanillaDPOConfig,
                "PREFINE without the SFT anchor (sft_weight = 0), the paper's ablation")
register_method("sft-only", PrefineTrainer, SFTOnlyConfig,
                "PREFINE's SFT term alone from the reference (dpo_weight = 0), the ablation")
