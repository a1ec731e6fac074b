"""BC-All and BC-Safe (OSRL): a deterministic MLP actor regressed onto dataset actions (MSE).

BC-All clones every transition it is given; BC-Safe only those of trajectories whose cost return
is within the cost threshold κ. The actor is trained from scratch (as in OSRL) with the observation
size and action box of the policy passed in; the result is a ``DeterministicPolicy``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError, DataError
from retrofit.losses.bc import bc_mse_loss
from retrofit.methods.registry import register_method
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.thresholds import check_cost_threshold, is_safe_trajectory
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import Transitions
from retrofit.training.trainer import BaseTrainer, Stage


@dataclass(frozen=True)
class BCAllConfig(TrainerConfig):
    """BC-All; defaults from OSRL's ``BCTrainConfig`` (Liu et al. 2023, DSRL/OSRL).

    learning_rate: Adam learning rate (1e-3).
    batch_size: transitions per step (512).
    steps: gradient steps (100k).
    hidden_sizes: actor MLP widths ([256, 256]).
    sigma: fixed standard deviation of the exported policy seen as a Gaussian (0.1; only used
        when the result is fine-tuned or sampled, docs/methods.md).
    safe_only: keep only trajectories with cost return < ``cost_threshold`` (False: BC-All).
    cost_threshold: the episode cost threshold κ (required when ``safe_only``).
    """

    learning_rate: float = 1e-3
    batch_size: int = 512
    steps: int = 100_000
    hidden_sizes: tuple[int, ...] = (256, 256)
    sigma: float = 0.1
    safe_only: bool = False
    cost_threshold: float | None = None

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        self.require_positive("learning_rate", "sigma")
        if self.cost_threshold is not None:
            check_cost_threshold(self.cost_threshold)

    def check_complete(self) -> None:
        """BC-Safe needs κ."""
        if self.safe_only and self.cost_threshold is None:
            raise ConfigError(
                "cost_threshold=None: BC-Safe needs the episode cost threshold κ >= 0, e.g. "
                "Retrofitter(policy, method='bc-safe', cost_threshold=20)."
            )


@dataclass(frozen=True)
class BCSafeConfig(BCAllConfig):
    """BC-Safe: BC-All on the trajectories whose cost return is ≤ ``cost_threshold`` (OSRL)."""

    safe_only: bool = True


class BCTrainer(BaseTrainer):
    """Behaviour cloning of a fresh ``DeterministicPolicy`` on ``fit(*datasets)``."""

    config_class = BCAllConfig
    data_kind = "transitions"
    config: BCAllConfig

    def setup(self, policy: PolicyAdapter) -> None:
        """A fresh deterministic actor with ``policy``'s observation size and action box."""
        config = self.config
        module = DeterministicPolicy(
            int(policy.observation_dim), int(policy.action_dim), policy.action_low,
            policy.action_high, config.hidden_sizes, config.sigma,
        ).to(self.device)
        self.policy = wrap(module)
        self.optimizer = self.adam(list(module.parameters()), config.learning_rate)

    def update(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on the MSE between ``π(s)`` and the dataset action."""
        loss, metrics = bc_mse_loss(self.policy.module(obs), act)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return metrics

    def stages(self, *datasets: Any, steps: int) -> list[Stage]:
        """Clone the transitions of ``datasets`` (all, or BC-Safe's filter)."""
        if self.config.safe_only:
            assert self.config.cost_threshold is not None
            datasets = episodes_within_cost(datasets, self.config.cost_threshold)
        self.data = Transitions(*datasets, device=self.device, seed=self.seed, name="datasets")
        self.policy.module.set_observation_normalizer(self.data.obs_mean, self.data.obs_std)

        def update() -> dict[str, torch.Tensor]:
            idx = self.data.index(self.config.batch_size)
            return self.update(self.data.obs[idx], self.data.act[idx])

        return [Stage("bc-safe" if self.config.safe_only else "bc-all", steps, update)]


def episodes_within_cost(datasets: tuple[Any, ...], cost_threshold: float) -> tuple[Any, ...]:
    """The safe episodes of ``datasets``, cost return ``< cost_threshold`` (BC-Safe's filter;
    :func:`retrofit.thresholds.is_safe_trajectory`, the split's SAFE set).

    Datasets left with no such episode are dropped; it is an error if none has any.
    """
    kept, lowest = [], float("inf")
    for data in datasets:
        _, costs = data.episode_returns()
        keep = np.flatnonzero(is_safe_trajectory(costs, cost_threshold))
        lowest = min(lowest, float(np.min(costs)))
        if keep.size:
            kept.append(data.select_episodes(keep.tolist()))
    if not kept:
        raise DataError(
            f"no episode has cost return < cost_threshold={cost_threshold} "
            f"(lowest: {lowest:.2f}); raise cost_threshold or use bc-all."
        )
    return tuple(kept)


register_method("bc-all", BCTrainer, BCAllConfig,
                "Behaviour cloning of all transitions, deterministic MLP actor (OSRL)")
register_method("bc-safe", BCTrainer, BCSafeConfig,
                "Behaviour cloning of trajectories within the cost threshold (OSRL)")


class BCSafeFullTrainer(BCTrainer):
    """BC-Safe as OSRL runs it: on every safe trajectory of the *whole* dataset.

    The same trainer as ``bc-safe``; only the comparison harness treats it differently: it hands
    this method the full dataset (``data_scope = "dataset"``) instead of the cell's D_p ∪ D_np,
    so a comparison can show what a user holding the whole dataset would train from scratch.
    """

    data_scope = "dataset"


register_method("bc-safe-full", BCSafeFullTrainer, BCSafeConfig,
                "BC-Safe on all safe trajectories of the full dataset (OSRL's protocol)")
