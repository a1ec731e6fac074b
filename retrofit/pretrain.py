"""Reference policy: behaviour cloning of a Gaussian MLP on the high-reward trajectories.

The default family is the clipped Gaussian with a fixed spread of 0.2 half-ranges (issue 25):
its density is exact for actions clipped onto the box bounds, where the collector puts 4–33 %
of the shipped data's action components, so PREFINE's log-likelihoods stay bounded. The
tanh-Gaussian, the default before, is ``BCConfig(policy="tanh-gaussian")``; docs/prefine.md.

PREFINE's protocol (PREFINE §5.1, Appendix A.4): pretrain π_ref by BC on the high-reward
trajectories of the offline dataset, irrespective of cost. "High-reward" is our documented choice:
the top ``top_fraction`` of episodes by reward return (ties by index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from retrofit.data.dataset import action_bounds
from retrofit.errors import ConfigError
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.std_bounds import CLIPPED_GAUSSIAN_MIN_STD
from retrofit.policies.vae import VAEConfig, VAEPolicy
from retrofit.training.cloning import clone_by_likelihood


@dataclass(frozen=True)
class BCConfig:
    """Behaviour-cloning settings for the reference policy.

    top_fraction: share of episodes, by reward return, to clone (0.3; "high-reward" is ours).
    hidden_sizes: MLP widths ([256, 256], as PREFINE A.4).
    learning_rate: Adam learning rate (1e-3, OSRL's BC).
    batch_size: transitions per step (256).
    steps: gradient steps (20k; enough for the small DSRL-size datasets here).
    policy: the reference's class and so its likelihood: "clipped-gaussian" (default;
        ``ClippedGaussianPolicy``: exact density for actions clipped onto the box, as the
        collector generates them, so a boundary action's log-likelihood is a log-probability)
        or "tanh-gaussian" (``TanhGaussianPolicy``, the default before issue 25: unbounded
        log-likelihood at the bounds, PREFINE warns; docs/prefine.md).
    min_std: clipped-gaussian with a learned spread only, its lower bound (half-range units;
        ``CLIPPED_GAUSSIAN_MIN_STD`` = 0.05, the policy's own default).
    fixed_std: clipped-gaussian only, a constant spread in half-ranges (0.2, as the demo, the
        suite and ``retrofit compare``); None: a learned spread. The tanh-Gaussian ignores it.
    """

    top_fraction: float = 0.3
    hidden_sizes: tuple[int, ...] = (256, 256)
    learning_rate: float = 1e-3
    batch_size: int = 256
    steps: int = 20_000
    policy: Literal["clipped-gaussian", "tanh-gaussian"] = "clipped-gaussian"
    min_std: float = CLIPPED_GAUSSIAN_MIN_STD
    fixed_std: float | None = 0.2

    def validate(self) -> None:
        """Raise ``ConfigError`` on out-of-range values."""
        if not 0 < self.top_fraction <= 1:
            raise ConfigError(f"top_fraction={self.top_fraction} must be in (0, 1].")
        if self.steps < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ConfigError("steps, batch_size and learning_rate must be positive.")
        if self.policy not in ("tanh-gaussian", "clipped-gaussian"):
            raise ConfigError(
                f"policy={self.policy!r} is not a reference class: use 'tanh-gaussian' or "
                "'clipped-gaussian'."
            )
        if self.min_std <= 0 or (self.fixed_std is not None and self.fixed_std <= 0):
            raise ConfigError(
                f"min_std={self.min_std} and fixed_std={self.fixed_std} must be > 0 "
                "(fixed_std=None for a learned spread)."
            )


def high_reward_episodes(dataset: Any, top_fraction: float) -> np.ndarray:
    """Indices of the top ``top_fraction`` episodes by reward return (stable: ties by index)."""
    rewards, _ = dataset.episode_returns()
    n_keep = max(1, int(round(top_fraction * len(rewards))))
    order = np.argsort(-np.asarray(rewards), kind="stable")
    return np.sort(order[:n_keep])


def train_bc(
    dataset: Any,
    config: BCConfig | None = None,
    *,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> TanhGaussianPolicy | ClippedGaussianPolicy:
    """Maximum-likelihood BC of ``config.policy`` on all transitions of ``dataset``."""
    config = config or BCConfig()
    config.validate()
    if action_low is None or action_high is None:
        action_low, action_high = action_bounds(dataset)
    common: dict[str, Any] = dict(
        steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
        device=device, seed=seed, name="BC", progress=progress,
    )
    if config.policy == "clipped-gaussian":
        return clone_by_likelihood(
            dataset,
            lambda observation_dim, action_dim: ClippedGaussianPolicy(
                observation_dim, action_dim, action_low, action_high, config.hidden_sizes,
                min_std=config.min_std, fixed_std=config.fixed_std,
            ),
            lambda policy, obs, act: -policy.clipped_log_prob(*policy(obs), act),
            **common,
        )
    return clone_by_likelihood(
        dataset,
        lambda observation_dim, action_dim: TanhGaussianPolicy(
            observation_dim, action_dim, action_low, action_high, config.hidden_sizes
        ),
        lambda policy, obs, act: -policy.squashed_log_prob(*policy(obs), act),
        **common,
    )


def pretrain_reference(
    dataset: Any,
    config: BCConfig | None = None,
    *,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> TanhGaussianPolicy | ClippedGaussianPolicy:
    """PREFINE's reference: BC on the high-reward episodes of ``dataset``, irrespective of cost."""
    config = config or BCConfig()
    config.validate()
    subset = dataset.select_episodes(high_reward_episodes(dataset, config.top_fraction))
    low, high = action_bounds(dataset)
    return train_bc(
        subset, config, action_low=low, action_high=high, device=device, seed=seed,
        progress=progress,
    )


def train_bc_vae(
    dataset: Any,
    config: VAEConfig | None = None,
    *,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> VAEPolicy:
    """Behaviour-clone a ``VAEPolicy`` on every transition of ``dataset`` (BCQ's VAE loss).

    Bounds default to the dataset's own, else its task's action space. Select the episodes to
    clone first (e.g. ``dataset.select_episodes(retrofit.pretrain.high_reward_episodes(...))``).
    """
    config = config or VAEConfig()
    config.validate()
    if action_low is None or action_high is None:
        if getattr(dataset, "action_low", None) is not None and dataset.action_high is not None:
            action_low, action_high = dataset.action_low, dataset.action_high
        else:
            action_low, action_high = action_bounds(dataset)
    return clone_by_likelihood(
        dataset,
        lambda observation_dim, action_dim: VAEPolicy(
            observation_dim, action_dim, action_low, action_high, config.hidden_sizes,
            config.latent_dim, config.kl_weight,
        ),
        lambda policy, obs, act: -policy.elbo(obs, act),
        steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
        device=device, seed=seed, name="BC-VAE", progress=progress,
    )
