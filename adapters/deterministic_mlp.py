"""Adapter for retrofit's ``DeterministicPolicy`` (the BC-All / BC-Safe actor).

The policy is seen as a fixed-variance Gaussian around its output (spec/methods.md):
``log π(a|s) = -||μ(s) - a||² / (2 σ_fixed²)`` (constant dropped); sampling adds ``N(0, σ_fixed²)``
noise, clamped into the action box.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from retrofit.policies.deterministic import DeterministicPolicy


class DeterministicAdapter:
    """``PolicyAdapter`` over a ``DeterministicPolicy``; ``export()`` returns the module."""

    def __init__(self, module: DeterministicPolicy) -> None:
        self.module = module
        self.observation_dim = module.obs_dim
        self.action_dim = module.act_dim
        self.action_low = module.action_low.detach().cpu().numpy().copy()
        self.action_high = module.action_high.detach().cpu().numpy().copy()

    @property
    def device(self) -> torch.device:
        """Device of the module's parameters."""
        return self.module.action_low.device

    def parameters(self) -> Any:
        """The module's parameters."""
        return self.module.parameters()

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Fixed-variance Gaussian ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        return self.module.log_prob_from_mean(self.module(obs), act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        mean = self.module(obs)
        sampled = self.module.sample_from(mean)
        return (
            self.module.log_prob_from_mean(mean, act),
            sampled,
            self.module.log_prob_from_mean(mean, sampled),
        )

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions ``μ(s) + N(0, σ²)``, clamped into the box."""
        with torch.no_grad():
            return self.module.sample_from(self.module(obs))

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of numpy observations (``μ(s)`` when deterministic)."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        with torch.no_grad():
            out = self.module(obs_t) if deterministic else self.sample(obs_t)
        return out.cpu().numpy()

    def trainable_copy(self) -> DeterministicAdapter:
        """Independent copy in train mode with gradients on."""
        module = copy.deepcopy(self.module)
        module.train()
        module.requires_grad_(True)
        return DeterministicAdapter(module)

    def frozen_copy(self) -> DeterministicAdapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        module = copy.deepcopy(self.module)
        module.eval()
        module.requires_grad_(False)
        return DeterministicAdapter(module)

    def to(self, device: torch.device | str) -> DeterministicAdapter:
        """Move the module to ``device``."""
        self.module.to(device)
        return self

    def train(self, mode: bool = True) -> DeterministicAdapter:
        """Set the module's train/eval mode."""
        self.module.train(mode)
        return self

    def export(self) -> DeterministicPolicy:
        """The trained module, on CPU, in eval mode."""
        return self.module.to("cpu").eval()
