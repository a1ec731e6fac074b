"""Behaviour cloning, one trainer for all of it: π_ref's maximum likelihood and OSRL's BC.

``BCTrainer`` trains a fresh policy, with the observation size and action box of the policy passed
in, on transitions of the datasets given to ``fit``. The policy family, its loss and the episodes
cloned come from the config:

- ``BCConfig`` (the reference policy π_ref; PREFINE §5.1, Appendix A.4): a stochastic family
  (``policy``: clipped Gaussian, tanh-Gaussian or BCQ's VAE) fitted by maximum likelihood on the top
  ``top_fraction`` of episodes by reward return, irrespective of cost. Its public way in is
  :func:`retrofit.pretrain.pretrain_reference`.
- ``BCAllConfig`` / ``BCSafeConfig`` (OSRL; methods ``bc-all``, ``bc-safe``, ``bc-safe-full``): a
  deterministic MLP actor regressed onto the dataset actions (MSE); BC-Safe only on trajectories
  whose cost return is within the cost threshold κ. The result is a ``DeterministicPolicy``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import ConfigError, DataError
from retrofit.losses.bc import bc_mse_loss, bc_nll_loss, bc_vae_loss
from retrofit.methods.registry import register_method
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.std_bounds import CLIPPED_GAUSSIAN_MIN_STD
from retrofit.policies.vae import VAEPolicy
from retrofit.thresholds import check_cost_threshold, is_safe_trajectory
from retrofit.training.config import TrainerConfig
from retrofit.training.samplers import Transitions
from retrofit.training.trainer import BaseTrainer, Stage

ReferenceFamily = Literal["clipped-gaussian", "tanh-gaussian", "vae"]


@dataclass(frozen=True)
class BCConfig(TrainerConfig):
    """Behaviour-cloning settings for the reference policy π_ref.

    top_fraction: share of episodes, by reward return, to clone (0.3; "high-reward" is ours;
        1.0 clones every episode).
    hidden_sizes: MLP widths ([256, 256], as PREFINE A.4).
    learning_rate: Adam learning rate (1e-3, OSRL's BC).
    batch_size: transitions per step (256).
    steps: gradient steps (20k; enough for the small DSRL-size datasets here).
    policy: the reference's class and so its likelihood: "clipped-gaussian" (default;
        ``ClippedGaussianPolicy``: exact density for actions clipped onto the box, as the
        collector generates them, so a boundary action's log-likelihood is a log-probability),
        "tanh-gaussian" (``TanhGaussianPolicy``, the default before issue 25: unbounded
        log-likelihood at the bounds, PREFINE warns; docs/prefine.md) or "vae" (``VAEPolicy``,
        BCQ's conditional VAE, its ELBO as the likelihood; ``VAEConfig`` has BCQ's defaults).
    min_std: clipped-gaussian with a learned spread only, its lower bound (half-range units;
        ``CLIPPED_GAUSSIAN_MIN_STD`` = 0.05, the policy's own default).
    fixed_std: clipped-gaussian only, a constant spread in half-ranges (0.2, as the demo, the
        suite and ``retrofit compare``); None: a learned spread. The other families ignore it.
    latent_dim: vae only, the latent size (None: 2 · action_dim, BCQ).
    kl_weight: vae only, β_KL of the loss and of the log π surrogate (0.5, BCQ).
    """

    top_fraction: float = 0.3
    hidden_sizes: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    batch_size: int = 256
    steps: int = 20_000
    policy: ReferenceFamily = "clipped-gaussian"
    min_std: float = CLIPPED_GAUSSIAN_MIN_STD
    fixed_std: float | None = 0.2
    latent_dim: int | None = None
    kl_weight: float = 0.5

    def check(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if not 0 < self.top_fraction <= 1:
            raise ConfigError(f"top_fraction={self.top_fraction} must be in (0, 1], e.g. 0.3.")
        self.require_at_least(1, "steps", "latent_dim")
        self.require_positive("learning_rate")
        if self.min_std <= 0 or (self.fixed_std is not None and self.fixed_std <= 0):
            raise ConfigError(
                f"min_std={self.min_std} and fixed_std={self.fixed_std} must be > 0 "
                "(fixed_std=None for a learned spread)."
            )
        if self.kl_weight < 0:
            raise ConfigError(f"kl_weight={self.kl_weight} must be >= 0 (BCQ uses 0.5).")
        if self.policy == "vae" and not self.hidden_sizes:
            raise ConfigError(f"hidden_sizes={self.hidden_sizes}: the VAE needs at least one "
                              "hidden layer, e.g. (750, 750).")


@dataclass(frozen=True)
class VAEConfig(BCConfig):
    """π_ref as BCQ's conditional VAE, with BCQ's defaults (Fujimoto et al. 2019, Appendix D).

    hidden_sizes: encoder and decoder MLP widths ((750, 750), BCQ).
    learning_rate: Adam learning rate (1e-3, BCQ's VAE).
    batch_size: transitions per step (100, BCQ).
    steps: gradient steps (20k, as retrofit's Gaussian BC).
    latent_dim, kl_weight, top_fraction: as ``BCConfig`` (None: 2 · action_dim; 0.5; 0.3).
    """

    hidden_sizes: tuple[int, ...] = (750, 750)
    batch_size: int = 100
    policy: ReferenceFamily = "vae"

    def check(self) -> None:
        """``BCConfig``'s rules; the family is the VAE."""
        super().check()
        if self.policy != "vae":
            raise ConfigError(f"policy={self.policy!r}: VAEConfig clones the VAE; use "
                              f"BCConfig(policy={self.policy!r}) for another family.")


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

    policy: ClassVar[str] = "deterministic"
    """The family ``BCTrainer`` builds (a class constant, not a setting)."""

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


Box = tuple[int, int, np.ndarray, np.ndarray]
"""A policy's observation size, action size, action low and high bounds."""
Loss = Callable[[Any, torch.Tensor, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass(frozen=True)
class Family:
    """How BC builds one policy family from its config and box, and the loss it minimises."""

    build: Callable[[Any, Box], torch.nn.Module]
    loss: Loss


FAMILIES: dict[str, Family] = {
    "clipped-gaussian": Family(
        lambda c, box: ClippedGaussianPolicy(*box, c.hidden_sizes, min_std=c.min_std,
                                             fixed_std=c.fixed_std),
        lambda policy, obs, act: bc_nll_loss(policy.clipped_log_prob(*policy(obs), act)),
    ),
    "tanh-gaussian": Family(
        lambda c, box: TanhGaussianPolicy(*box, c.hidden_sizes),
        lambda policy, obs, act: bc_nll_loss(policy.squashed_log_prob(*policy(obs), act)),
    ),
    "vae": Family(
        lambda c, box: VAEPolicy(*box, c.hidden_sizes, c.latent_dim, c.kl_weight),
        lambda policy, obs, act: bc_vae_loss(*policy.elbo_terms(obs, act), policy.kl_weight),
    ),
    "deterministic": Family(
        lambda c, box: DeterministicPolicy(*box, c.hidden_sizes, c.sigma),
        lambda policy, obs, act: bc_mse_loss(policy(obs), act),
    ),
}
"""Every policy family ``BCTrainer`` clones, by ``config.policy``."""


def build_policy(config: BCConfig | BCAllConfig, box: Box) -> torch.nn.Module:
    """A fresh, untrained policy of ``config``'s family in ``box``."""
    return FAMILIES[config.policy].build(config, box)


class BCTrainer(BaseTrainer):
    """Behaviour cloning of a fresh policy of the config's family on ``fit(*datasets)``.

    ``policy`` gives only the observation size and the action box; its weights are not used.
    """

    config_class = BCAllConfig
    data_kind = "transitions"
    config: BCAllConfig | BCConfig

    def setup(self, policy: PolicyAdapter) -> None:
        """A fresh policy of the config's family with ``policy``'s observation size and box."""
        box = (int(policy.observation_dim), int(policy.action_dim), policy.action_low,
               policy.action_high)
        self.family = FAMILIES[self.config.policy]
        module = self.family.build(self.config, box).to(self.device)
        self.policy = wrap(module)
        self.optimizer = self.adam(list(module.parameters()), self.config.learning_rate)

    def update(self, obs: torch.Tensor, act: torch.Tensor) -> dict[str, torch.Tensor]:
        """One Adam step on the family's loss (negative log-likelihood, or BC-All's MSE)."""
        loss, metrics = self.family.loss(self.policy.module, obs, act)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        return metrics

    def stages(self, *datasets: Any, steps: int) -> list[Stage]:
        """Clone the transitions of the chosen episodes of ``datasets``: π_ref's high-reward
        ones, BC-Safe's safe ones, or all (BC-All)."""
        config = self.config
        if isinstance(config, BCConfig):
            datasets = tuple(data.select_episodes(high_reward_episodes(data, config.top_fraction))
                             for data in datasets)
            name = "bc"
        elif config.safe_only:
            assert config.cost_threshold is not None
            datasets = episodes_within_cost(datasets, config.cost_threshold)
            name = "bc-safe"
        else:
            name = "bc-all"
        self.data = Transitions(*datasets, device=self.device, seed=self.seed, name="datasets")
        self.policy.module.set_observation_normalizer(self.data.obs_mean, self.data.obs_std)

        def update() -> dict[str, torch.Tensor]:
            idx = self.data.index(config.batch_size)
            return self.update(self.data.obs[idx], self.data.act[idx])

        return [Stage(name, steps, update)]


def high_reward_episodes(dataset: Any, top_fraction: float) -> np.ndarray:
    """Indices of the top ``top_fraction`` episodes by reward return (stable: ties by index)."""
    rewards, _ = dataset.episode_returns()
    n_keep = max(1, int(round(top_fraction * len(rewards))))
    order = np.argsort(-np.asarray(rewards), kind="stable")
    return np.sort(order[:n_keep])


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
