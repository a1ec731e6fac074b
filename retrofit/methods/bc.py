"""BC-All and BC-Safe (OSRL): a deterministic MLP actor regressed onto dataset actions (MSE).

BC-All clones every transition it is given; BC-Safe only those of trajectories whose cost return
is within the cost limit. The actor is trained from scratch (as in OSRL) with the observation
size and action box of the policy passed in; the result is a ``DeterministicPolicy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any, ClassVar

import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.adapters.deterministic_mlp import DeterministicAdapter
from retrofit.device import get_device, make_adam, set_random_seed
from retrofit.errors import ConfigError
from retrofit.losses.bc import bc_mse_loss
from retrofit.methods.loop import train_policy
from retrofit.methods.transitions import Transitions, episodes_within_cost
from retrofit.metrics_log import MetricsLogger, NullLogger
from retrofit.policies.deterministic import DeterministicPolicy


@dataclass(frozen=True)
class BCAllConfig:
    """BC-All; defaults from OSRL's ``BCTrainConfig`` (Liu et al. 2023, DSRL/OSRL).

    learning_rate: Adam learning rate (1e-3).
    batch_size: transitions per step (512).
    steps: gradient steps (100k).
    hidden_sizes: actor MLP widths ([256, 256]).
    sigma: fixed standard deviation of the exported policy seen as a Gaussian (0.1; only used
        when the result is fine-tuned or sampled, spec/methods.md).
    safe_only: keep only trajectories with cost return ≤ ``cost_limit`` (False: BC-All).
    cost_limit: the episode cost limit κ (required when ``safe_only``).
    """

    learning_rate: float = 1e-3
    batch_size: int = 512
    steps: int = 100_000
    hidden_sizes: tuple[int, ...] = (256, 256)
    sigma: float = 0.1
    safe_only: bool = False
    cost_limit: float | None = None

    def resolved(self, domain: str | None) -> BCAllConfig:
        """No domain presets (OSRL uses the same values everywhere); validate and return."""
        out = replace(self, hidden_sizes=tuple(self.hidden_sizes))
        out.validate()
        return out

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if self.learning_rate <= 0 or self.batch_size < 1 or self.steps < 0:
            raise ConfigError(
                f"learning_rate={self.learning_rate} must be > 0, batch_size={self.batch_size} "
                f">= 1 and steps={self.steps} >= 0."
            )
        if self.safe_only and (self.cost_limit is None or self.cost_limit < 0):
            raise ConfigError(
                f"cost_limit={self.cost_limit}: BC-Safe needs the episode cost limit κ >= 0, e.g. "
                "Retrofitter(policy, method='bc-safe', cost_limit=20)."
            )


@dataclass(frozen=True)
class BCSafeConfig(BCAllConfig):
    """BC-Safe: BC-All on the trajectories whose cost return is ≤ ``cost_limit`` (OSRL)."""

    safe_only: bool = True


class BCTrainer:
    """Behaviour cloning of a fresh ``DeterministicPolicy`` on ``fit(*datasets)``."""

    data_family: ClassVar[str] = "transitions"

    def __init__(
        self, policy: PolicyAdapter, config: BCAllConfig, device: str | torch.device = "auto",
        seed: int = 0,
    ) -> None:
        config = config.resolved(None)
        self.config = config
        self.device = get_device(device)
        self.seed = seed
        set_random_seed(seed)
        module = DeterministicPolicy(
            int(policy.observation_dim), int(policy.action_dim), policy.action_low,
            policy.action_high, config.hidden_sizes, config.sigma,
        ).to(self.device)
        self.policy = DeterministicAdapter(module)
        self.optimizer = make_adam(list(module.parameters()), config.learning_rate)
        self.steps_done = 0
        self.train_wall_clock_s = 0.0

    def update(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on the MSE between ``π(s)`` and the dataset action."""
        loss, metrics = bc_mse_loss(self.policy.module(obs), act)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return metrics

    def fit(
        self,
        *datasets: Any,
        steps: int | None = None,
        logger: MetricsLogger | None = None,
        progress: bool = True,
        callback: Callable[[int, Any], bool | None] | None = None,
        callback_every: int = 0,
    ) -> PolicyAdapter:
        """Clone the transitions of ``datasets`` (all, or BC-Safe's filter); return the actor."""
        if self.config.safe_only:
            assert self.config.cost_limit is not None
            datasets = episodes_within_cost(datasets, self.config.cost_limit)
        data = Transitions(*datasets, device=self.device, seed=self.seed, name="datasets")
        self.policy.module.set_observation_normalizer(data.obs_mean, data.obs_std)
        steps = self.config.steps if steps is None else steps
        logger = logger or NullLogger()

        def update() -> dict[str, torch.Tensor]:
            idx = data.index(self.config.batch_size)
            return self.update(data.obs[idx], data.act[idx])

        return train_policy(
            self, update, steps, desc="bc-safe" if self.config.safe_only else "bc-all",
            logger=logger, progress=progress, callback=callback, callback_every=callback_every,
        )

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config as a JSON-able dict."""
        return asdict(self.config)
