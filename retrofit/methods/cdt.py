"""CDT (Liu et al. 2023, "Constrained Decision Transformer for Offline Safe RL") and Safe-RLHF
(CDT) (PreSa §6.1 after Dai et al. 2024, "Safe RLHF"), the remaining baselines of PreSa's Tables
1, 8 and 9.

``cdt`` learns from trajectories with ground-truth rewards and costs (``data_kind =
"transitions"``): a causal transformer over (return-to-go, cost-to-go, state, action) tokens of
``K``-step windows (:class:`~retrofit.policies.decision_transformer.DecisionTransformer`),
trained on the loss of :func:`retrofit.losses.cdt.cdt_loss` with AdamW, a linear warm-up and
gradient-norm clipping; the entropy temperature of its stochastic head is tuned towards
``−action_dim``. Evaluation conditions on the target cost κ (``cost_threshold``) and a target return
and lowers both by what each step returns (CDT §4.3; ``adapters/decision_transformer.py``).

``safe-rlhf-cdt`` learns from PreSa's segment feedback (``data_kind = "feedback"``) in three
stages: a Bradley–Terry reward model on the preference pairs, a cost model on the safety labels
(per-step outputs summed over a segment; Safe-RLHF Eq. 6 as PreSa's labels allow), then CDT on
every transition of the feedback's dataset relabelled with the two models. Its cost-to-go is in
the cost model's units, whose zero is the labels' boundary: a segment is unsafe iff its summed
cost is positive, and the synthetic labels call a segment unsafe iff its cost reaches
``κ·T/H``, so an episode whose learned cost sums below 0 is (to first order) one below κ; the
target cost is 0. ``safe-rlhf-cdt-binary`` trains the cost model on the labels alone (Table 9).

Not in this reading: OSRL's data augmentation towards the Pareto frontier and its cost
transform ``50 − Ĉ`` (a linear embedding absorbs it); see ``docs/cdt.md``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError, DataError
from retrofit.losses.bradley_terry import bradley_terry_loss
from retrofit.losses.cdt import cdt_loss, cost_model_loss, temperature_loss
from retrofit.methods.registry import register_method
from retrofit.policies.decision_transformer import (
    DecisionTransformer,
    StepValueModel,
    attach_step_values,
)
from retrofit.scaling import safe_scale
from retrofit.thresholds import check_cost_threshold, is_safe_trajectory
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import ContextWindows, SegmentBatcher, device_tensor
from retrofit.training.trainer import BaseTrainer, Stage

CostLabels = Literal["labels_and_comparisons", "binary"]


@dataclass(frozen=True)
class CDTConfig(TrainerConfig):
    """CDT hyper-parameters; defaults from CDT (Liu et al. 2023, Appendix) as OSRL's
    ``CDTTrainConfig`` sets them (PreSa uses them for its CDT rows, Table 1).

    embedding_dim, layers, heads, context, dropout: the transformer (128, 3, 8, 10, 0.1).
    learning_rate, weight_decay: AdamW (1e-4, 1e-4); warmup_steps: linear warm-up (500).
    grad_clip: gradient-norm clip (0.25).
    batch_size: windows per step (2048); steps: updates (100k).
    cost_weight: weight of the auxiliary cost-prediction loss (0.02).
    init_temperature: entropy temperature at step 0 (0.1); tuned towards −action_dim at 1e-4.
    reward_scale, cost_scale: multipliers of returns- and costs-to-go before embedding (0.1, 1).
    cost_threshold: κ, the target cost of evaluation (required).
    target_return: the target return of evaluation; None takes the highest return of a dataset
        episode whose cost is within the target cost (the highest return if none is).
    """

    embedding_dim: int = 128
    layers: int = 3
    heads: int = 8
    context: int = 10
    dropout: float = 0.1
    learning_rate: float = 1e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 500
    grad_clip: float = 0.25
    batch_size: int = 2048
    steps: int = 100_000
    cost_weight: float = 0.02
    init_temperature: float = 0.1
    reward_scale: float = 0.1
    cost_scale: float = 1.0
    cost_threshold: float | None = None
    target_return: float | None = None

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        self.require_positive("embedding_dim", "layers", "heads", "context", "learning_rate",
                              "grad_clip", "init_temperature", "reward_scale", "cost_scale")
        if self.embedding_dim % self.heads:
            raise ConfigError(f"embedding_dim={self.embedding_dim} must be a multiple of "
                              f"heads={self.heads}, e.g. embedding_dim=128, heads=8.")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1).")
        for name in ("weight_decay", "cost_weight", "warmup_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0.")
        if self.cost_threshold is not None:
            check_cost_threshold(self.cost_threshold)

    def check_complete(self) -> None:
        """CDT conditions its evaluation on κ."""
        if self.cost_threshold is None:
            raise ConfigError(
                "cost_threshold=None: CDT conditions on the target episode cost κ >= 0, e.g. "
                "Retrofitter(policy, method='cdt', cost_threshold=20)."
            )


@dataclass(frozen=True)
class SafeRLHFCDTConfig(CDTConfig):
    """Safe-RLHF (CDT): CDT's fields, plus the reward and cost models (PreSa §6.1 gives no
    settings for them; these are ours, documented in docs/cdt.md).

    hidden_sizes: the two models' ReLU MLP widths ((256, 256)).
    model_learning_rate: Adam for both models (3e-4).
    model_batch_size: segment pairs per model step (64).
    reward_model_steps, cost_model_steps: updates of each model (10k each).
    cost_labels: "labels_and_comparisons" (classification of each label plus the comparison of
        the two segments of a pair that differ in safety) or "binary" (labels only, Table 9).
    reward_scale: 1.0 here (the learned per-step rewards are standardised first).
    cost_threshold: κ of the comparison; the learned-unit target cost is 0 (module docstring).
    """

    hidden_sizes: tuple[int, ...] = (256, 256)
    model_learning_rate: float = 3e-4
    model_batch_size: int = 64
    reward_model_steps: int = 10_000
    cost_model_steps: int = 10_000
    cost_labels: CostLabels = "labels_and_comparisons"
    reward_scale: float = 1.0

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        super().check()
        self.require_positive("model_learning_rate", "model_batch_size")
        for name in ("reward_model_steps", "cost_model_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0.")
        if not self.hidden_sizes or min(self.hidden_sizes) < 1:
            raise ConfigError(f"hidden_sizes={self.hidden_sizes} must be positive widths, e.g. "
                              "(256, 256).")


@dataclass(frozen=True)
class SafeRLHFCDTBinaryConfig(SafeRLHFCDTConfig):
    """Safe-RLHF (CDT) with the cost model trained on the binary safety labels only (PreSa
    Appendix C.3, Table 9)."""

    cost_labels: CostLabels = "binary"


def best_return_within(returns: np.ndarray, costs: np.ndarray, target_cost: float) -> float:
    """The highest episode return among the safe episodes, cost ``< target_cost`` (all if none).

    Safe as :func:`retrofit.thresholds.is_safe_trajectory` (the split's SAFE set).
    """
    within = is_safe_trajectory(costs, target_cost)
    return float(np.max(returns[within] if within.any() else returns))


class CDTTrainer(BaseTrainer):
    """Trains a fresh decision transformer with ``policy``'s spaces on ``fit(*datasets)``."""

    config_class: ClassVar[type[TrainerConfig]] = CDTConfig
    data_kind = "transitions"
    config: CDTConfig
    derived_state = ("spaces",)

    def setup(self, policy: PolicyAdapter) -> None:
        """Remember the spaces; the network is built in ``stages`` (it needs the longest
        episode of the data for its step embedding)."""
        self.observation_dim, self.action_dim = int(policy.observation_dim), int(policy.action_dim)
        self.action_low = np.asarray(policy.action_low, dtype=np.float32)
        self.action_high = np.asarray(policy.action_high, dtype=np.float32)
        self.spaces = policy  # only its sizes: checked against the data before any step
        self.policy: Any = None

    def check_data(self, *data: Any) -> None:
        """The data's observation/action sizes equal the given policy's."""
        self.policy, policy = self.spaces, self.policy
        try:
            super().check_data(*data)
        finally:
            self.policy = policy

    def _build(self, windows: ContextWindows) -> None:
        """The transformer, its optimisers and the temperature (step 0 state)."""
        cfg = self.config
        self.model = DecisionTransformer(
            self.observation_dim, self.action_dim, self.action_low, self.action_high,
            windows.max_episode_steps, cfg.embedding_dim, cfg.layers, cfg.heads, cfg.context,
            cfg.dropout,
        ).to(self.device)
        self.model.set_observation_normalizer(windows.obs_mean, windows.obs_std)
        self.policy = wrap(self.model)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.learning_rate,
                                           weight_decay=cfg.weight_decay)
        self.log_temperature = torch.tensor(float(np.log(cfg.init_temperature)),
                                            device=self.device, requires_grad=True)
        self.temperature_optimizer = torch.optim.Adam([self.log_temperature], lr=1e-4)
        self.cdt_steps = torch.zeros((), dtype=torch.long)

    def _condition(self, windows: ContextWindows, target_cost: float) -> None:
        """Store the evaluation targets and scales in the module's buffers."""
        cfg = self.config
        returns, costs = windows.episode_returns()
        target = (cfg.target_return if cfg.target_return is not None
                  else best_return_within(returns, costs, target_cost))
        self.model.set_conditioning(target, target_cost, cfg.reward_scale, cfg.cost_scale)

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One AdamW step on CDT's loss (clipped, warm-up), then one temperature step."""
        cfg, model = self.config, self.model
        warm = min((int(self.cdt_steps) + 1) / max(cfg.warmup_steps, 1), 1.0)
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.learning_rate * warm
        mean, log_std, cost_log_probs = model(
            batch["rtg"] * cfg.reward_scale, batch["ctg"] * cfg.cost_scale, batch["obs"],
            batch["act"], batch["timesteps"],
        )
        log_lik = model.log_likelihood(mean, log_std, batch["act"])
        entropy = model.entropy(log_std)
        temperature = self.log_temperature.exp()
        loss, metrics = cdt_loss(log_lik, entropy, cost_log_probs, batch["cost_labels"],
                                 batch["mask"], temperature.detach(), cfg.cost_weight)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.optimizer.param_groups[0]["params"], cfg.grad_clip)
        self.optimizer.step()
        alpha_loss = temperature_loss(temperature, metrics["entropy"], -float(self.action_dim))
        self.temperature_optimizer.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.temperature_optimizer.step()
        self.cdt_steps += 1
        metrics["temperature"] = temperature.detach()
        return metrics

    def stages(self, *datasets: Any, steps: int) -> list[Stage]:
        """CDT on the transitions of ``datasets`` (ground-truth rewards and costs)."""
        if not datasets or datasets[0] is None:
            raise DataError("CDT learns from trajectories with rewards and costs: call "
                            "fit(dataset) with a retrofit.TrajectoryDataset.")
        cfg = self.config
        assert cfg.cost_threshold is not None
        self.windows = ContextWindows(*datasets, context=cfg.context, batch_size=cfg.batch_size,
                                      device=self.device, seed=self.seed, name="datasets")
        self._build(self.windows)
        self._condition(self.windows, cfg.cost_threshold)
        return [Stage("cdt", steps, lambda: self.update(self.windows.sample()))]

    def hyperparameters(self) -> dict[str, Any]:
        """The config plus the evaluation targets in use, JSON-able."""
        return {**asdict(self.config), "config_class": type(self.config).__name__,
                "target_return": float(self.model.target_return) if self.policy else None,
                "target_cost": float(self.model.target_cost) if self.policy else None}


class SafeRLHFCDTTrainer(CDTTrainer):
    """Reward model, cost model, then CDT on the relabelled feedback dataset."""

    config_class = SafeRLHFCDTConfig
    data_kind = "feedback"
    config: SafeRLHFCDTConfig

    def setup(self, policy: PolicyAdapter) -> None:
        """The spaces, the two step models and their optimisers."""
        super().setup(policy)
        cfg = self.config
        self.values = StepValueModel(self.observation_dim, self.action_dim,
                                     cfg.hidden_sizes).to(self.device)
        self.reward_optimizer = self.adam(list(self.values.reward.parameters()),
                                          cfg.model_learning_rate)
        self.cost_optimizer = self.adam(list(self.values.cost.parameters()),
                                        cfg.model_learning_rate)

    def reward_update(self) -> dict[str, torch.Tensor]:
        """One Bradley–Terry step on a batch of preference pairs (preferred segment first)."""
        obs, act, _, _ = self.batcher.sample()
        reward, _ = self.values.raw(obs, act)  # (B, 2, T)
        returns = reward.sum(-1)
        loss, metrics = bradley_terry_loss(returns[:, 0], returns[:, 1])
        self.reward_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.reward_optimizer.step()
        return {f"reward_model/{k}" if k != "loss" else "loss/reward_model": v
                for k, v in metrics.items()}

    def cost_update(self) -> dict[str, torch.Tensor]:
        """One step of the cost model on a batch of labelled segment pairs."""
        obs, act, labels, _ = self.batcher.sample()
        _, cost = self.values.raw(obs, act)
        loss, metrics = cost_model_loss(cost.sum(-1), labels,
                                        binary_only=self.config.cost_labels == "binary")
        self.cost_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.cost_optimizer.step()
        return {f"cost_model/{k}" if k != "loss" else "loss/cost_model": v
                for k, v in metrics.items()}

    def relabel(self, feedback: Any, chunk: int = 65_536) -> tuple[np.ndarray, np.ndarray]:
        """The models' per-step reward and cost of every transition of the feedback's dataset:
        rewards standardised (a shift and a positive scale keep every preference), costs divided
        by their standard deviation (their sign, the safety boundary, is kept)."""
        data = feedback.dataset
        obs = device_tensor(data.observations, self.device)
        act = device_tensor(data.actions, self.device)
        with torch.no_grad():
            parts = [self.values.raw(obs[i:i + chunk], act[i:i + chunk])
                     for i in range(0, len(obs), chunk)]
        reward = torch.cat([p[0] for p in parts])
        cost = torch.cat([p[1] for p in parts])
        self.values.reward_shift.fill_(float(reward.mean()))
        self.values.reward_scale.fill_(max(float(reward.std()), 1e-6))
        self.values.cost_scale.fill_(max(float(cost.std()), 1e-6))
        with torch.no_grad():
            r, c = self.values(obs, act)
        return r.cpu().double().numpy(), c.cpu().double().numpy()

    def stages(self, feedback: Any = None, *, steps: int) -> list[Stage]:
        """Reward model, cost model (no callbacks: no policy yet), then CDT."""
        for name in ("starts", "safety", "segment_length", "dataset"):
            if not hasattr(feedback, name):
                raise DataError(
                    "Safe-RLHF (CDT) learns from segment feedback; got "
                    f"{type(feedback).__name__} without {name!r}. Build it with "
                    "retrofit.feedback.synthesize(dataset, ...) or retrofit.feedback.load(path)."
                )
        cfg = self.config
        data = feedback.dataset
        std = safe_scale(data.observations.std(0))
        self.values.obs_mean.copy_(torch.as_tensor(data.observations.mean(0)))
        self.values.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.batcher = SegmentBatcher(feedback, cfg.model_batch_size, self.device, self.seed + 1)
        self.windows = ContextWindows(data, context=cfg.context, batch_size=cfg.batch_size,
                                      device=self.device, seed=self.seed, name="feedback.dataset")
        self._build(self.windows)

        def start_cdt() -> None:
            self.values.requires_grad_(False)
            self.values.zero_grad(set_to_none=True)
            self.windows.set_returns(*self.relabel(feedback))
            self._condition(self.windows, 0.0)
            attach_step_values(self.model, self.values)

        return [
            Stage("safe-rlhf-reward-model", cfg.reward_model_steps, self.reward_update,
                  callbacks=False),
            Stage("safe-rlhf-cost-model", cfg.cost_model_steps, self.cost_update,
                  callbacks=False),
            Stage("safe-rlhf-cdt", steps, lambda: self.update(self.windows.sample()),
                  prepare=start_cdt),
        ]


register_method("cdt", CDTTrainer, CDTConfig,
                "CDT: return- and cost-to-go conditioned decision transformer (ground truth)")
register_method("safe-rlhf-cdt", SafeRLHFCDTTrainer, SafeRLHFCDTConfig,
                "Safe-RLHF (CDT): Bradley-Terry reward and cost models, relabel, then CDT")
register_method("safe-rlhf-cdt-binary", SafeRLHFCDTTrainer, SafeRLHFCDTBinaryConfig,
                "Safe-RLHF (CDT) with the cost model from the binary safety labels only")
