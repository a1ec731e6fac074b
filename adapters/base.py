"""The one contract every policy wrapper honours (like SB3's ``BasePolicy``: small and fixed).

Methods (PREFINE, PreSa, baselines) only ever talk to a ``PolicyAdapter``; they know nothing of
SB3, d3rlpy or the user's module. Adapters know nothing of methods.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch


@runtime_checkable
class PolicyAdapter(Protocol):
    """A continuous-action policy seen through the interface retrofit's methods need.

    Shapes: ``obs`` is ``(B, observation_dim)`` and ``act`` is ``(B, action_dim)``, in the
    environment's own units (actions inside ``action_low``/``action_high``). ``log_prob`` returns
    ``(B,)``.

    Optional: ``mean_action(obs) -> (B, action_dim)``, the differentiable action the policy takes
    when asked to act deterministically, before any clipping into the bounds. PreSa's default
    fixed-variance likelihood ``−‖μ(s) − a‖²`` needs it; every adapter shipped here has it.

    Optional memory hooks, for a policy whose action depends on the episode so far (a decision
    transformer's context window); ``retrofit.evaluate`` calls them when present and a policy
    without them is unaffected. Row ``k`` of an ``act`` batch is evaluation slot ``k``:
    ``reset(slot)`` before the first step of each episode run in ``slot``;
    ``observe(rewards, costs)`` after each step, arrays aligned with the last ``act`` batch;
    ``retire(slot)`` when ``slot`` has no episode left (later slots move down by one).
    ``adapters/decision_transformer.py`` is the shipped example.
    """

    observation_dim: int
    action_dim: int
    action_low: np.ndarray
    action_high: np.ndarray

    @property
    def device(self) -> torch.device:
        """Device the parameters live on."""
        ...

    def parameters(self) -> Any:
        """Trainable parameters (an iterator of tensors), as ``nn.Module.parameters``."""
        ...

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Differentiable ``log π(act|obs)`` (an exact density or the documented surrogate)."""
        ...

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward pass: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π(·|obs)``.

        ``a_s`` is detached (no gradient through the sample); its log-probability is
        differentiable in the parameters. This is PREFINE's counterfactual, at the cost of one
        forward pass per state.
        """
        ...

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Actions drawn from ``π(·|obs)``, detached."""
        ...

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Numpy in, numpy out: the action the environment receives (for evaluation)."""
        ...

    def trainable_copy(self) -> PolicyAdapter:
        """An independent copy whose parameters require gradients (train mode)."""
        ...

    def frozen_copy(self) -> PolicyAdapter:
        """An independent copy in eval mode with ``requires_grad_(False)`` (the reference)."""
        ...

    def to(self, device: torch.device | str) -> PolicyAdapter:
        """Move the parameters to ``device`` and return self."""
        ...

    def train(self, mode: bool = True) -> PolicyAdapter:
        """Switch dropout/batch-norm behaviour and return self."""
        ...

    def export(self) -> Any:
        """The policy in the user's own format (module, SB3 model, d3rlpy algorithm)."""
        ...
