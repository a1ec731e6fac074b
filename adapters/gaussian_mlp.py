"""Adapter for retrofit's own ``TanhGaussianPolicy`` (the BC reference policy)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from retrofit.policies.gaussian import TanhGaussianPolicy


class TanhGaussianAdapter:
    """``PolicyAdapter`` over a ``TanhGaussianPolicy``; ``export()`` returns the module itself."""

    def __init__(self, module: TanhGaussianPolicy) -> None:
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
        """Exact squashed-Gaussian ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        mean, log_std = self.module(obs)
        return self.module.squashed_log_prob(mean, log_std, act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        mean, log_std = self.module(obs)
        sampled, sampled_logp = self.module.sample_from(mean, log_std)
        return self.module.squashed_log_prob(mean, log_std, act), sampled, sampled_logp

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions drawn from the policy."""
        with torch.no_grad():
            mean, log_std = self.module(obs)
            return self.module.sample_from(mean, log_std)[0]

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of numpy observations (``tanh(μ)`` when deterministic)."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        with torch.no_grad():
            if deterministic:
                out = self.module.deterministic_action(obs_t)
            else:
                out = self.sample(obs_t)
        return out.cpu().numpy()

    def trainable_copy(self) -> TanhGaussianAdapter:
        """Independent copy in train mode with gradients on."""
        module = copy.deepcopy(self.module)
        module.train()
        module.requires_grad_(True)
        return TanhGaussianAdapter(module)

    def frozen_copy(self) -> TanhGaussianAdapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        module = copy.deepcopy(self.module)
        module.eval()
        module.requires_grad_(False)
        return TanhGaussianAdapter(module)

    def to(self, device: torch.device | str) -> TanhGaussianAdapter:
        """Move the module to ``device``."""
        self.module.to(device)
        return self

    def train(self, mode: bool = True) -> TanhGaussianAdapter:
        """Set the module's train/eval mode."""
        self.module.train(mode)
        return self

    def export(self) -> TanhGaussianPolicy:
        """The trained module, on CPU, in eval mode."""
        return self.module.to("cpu").eval()
