"""The reference policy π_ref: behaviour cloning on the high-reward trajectories, one function.

PREFINE's protocol (PREFINE §5.1, Appendix A.4): pretrain π_ref by BC on the high-reward
trajectories of the offline dataset, irrespective of cost. "High-reward" is our documented choice:
the top ``BCConfig.top_fraction`` of episodes by reward return (ties by index).

``pretrain_reference(dataset, config)`` is the one way in; ``config.policy`` picks the family.
The default is the clipped Gaussian with a fixed spread of 0.2 half-ranges (issue 25): its density
is exact for actions clipped onto the box bounds, where the collector puts 4–33 % of the shipped
data's action components, so PREFINE's log-likelihoods stay bounded. The tanh-Gaussian, the
default before, is ``BCConfig(policy="tanh-gaussian")``; BCQ's conditional VAE is
``VAEConfig()`` (``BCConfig(policy="vae")`` with BCQ's defaults); docs/prefine.md. The training
itself is ``retrofit.methods.bc.BCTrainer``'s, the trainer of OSRL's BC-All and BC-Safe.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.data.dataset import action_bounds
from retrofit.methods.bc import BCConfig, BCTrainer, VAEConfig, build_policy, high_reward_episodes
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.vae import VAEPolicy

__all__ = ["BCConfig", "VAEConfig", "high_reward_episodes", "pretrain_reference"]


def pretrain_reference(
    dataset: Any,
    config: BCConfig | None = None,
    *,
    action_low: np.ndarray | None = None,
    action_high: np.ndarray | None = None,
    device: str | torch.device = "auto",
    seed: int = 0,
    progress: bool = True,
) -> ClippedGaussianPolicy | TanhGaussianPolicy | VAEPolicy:
    """π_ref: BC of ``config.policy`` on the top ``config.top_fraction`` episodes of ``dataset``
    by reward return, irrespective of cost (``top_fraction=1`` clones every episode).

    The action box is ``action_low``/``action_high`` when given, else the dataset's task's (from
    the real environment), else the dataset's own recorded bounds. ``seed`` fixes the initial
    weights and the minibatches. Returns the module in eval mode, ``train_wall_clock_s`` set.
    """
    config = config or BCConfig()
    if action_low is None or action_high is None:
        action_low, action_high = _action_box(dataset)
    box = (int(dataset.observations.shape[1]), int(dataset.actions.shape[1]), action_low,
           action_high)
    shape = wrap(build_policy(config, box))  # the trainer builds its own policy in this box
    trainer = BCTrainer(shape, config, device=device, seed=seed)
    module = trainer.fit(dataset, progress=progress).export()
    module.train_wall_clock_s = trainer.train_wall_clock_s
    return module


def _action_box(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The task's action box, else the dataset's own bounds (``DataError`` if neither)."""
    low, high = getattr(dataset, "action_low", None), getattr(dataset, "action_high", None)
    if getattr(dataset, "task", None) or low is None or high is None:
        return action_bounds(dataset)
    return low, high

