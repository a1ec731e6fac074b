"""Adapter for retrofit's BCQ-style ``VAEPolicy`` (PREFINE's reference policy class).

``log π(a|s)`` is the ELBO surrogate ``-(||a - dec(s, z)||² + β_KL · KL(q(z|s,a) || N(0, I)))``
with ``z ~ q(z|s, a)`` reparameterised (spec/methods.md), so it is itself random. Sampling is
BCQ's: ``dec(s, z)``, ``z ~ N(0, I)`` clipped to ±0.5; the deterministic action is ``dec(s, 0)``.
``export()`` returns the module (save ``state_dict()`` with ``config()``).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch

from retrofit.adapters.torch_module import check_inputs
from retrofit.policies.vae import VAEPolicy


class VAEAdapter:
    """``PolicyAdapter`` over a ``VAEPolicy``."""

    def __init__(self, module: VAEPolicy) -> None:
        self.module = module
        self.observation_dim = module.obs_dim
        self.action_dim = module.act_dim
        self.action_low = module.action_low.detach().cpu().numpy().copy()
        self.action_high = module.action_high.detach().cpu().numpy().copy()

    @property
    def device(self) -> torch.device:
        """Device of the module."""
        return self.module.action_low.device

    def parameters(self) -> Any:
        """Encoder and decoder parameters."""
        return self.module.parameters()

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """The ELBO surrogate of ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        return self.module.elbo(obs, act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(log π(act|obs), a_s, log π(a_s|obs))``; both actions scored in one batched pass."""
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        with torch.no_grad():
            sampled = self.module.sample(obs)
        both = self.module.elbo(obs, torch.stack([act.expand_as(sampled), sampled]))
        return both[0], sampled, both[1]

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached BCQ samples ``dec(s, clip(z, ±0.5))``."""
        check_inputs(obs, None, self.observation_dim, self.action_dim)
        with torch.no_grad():
            return self.module.sample(obs)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """``dec(s, 0)`` when deterministic, else a BCQ sample."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        check_inputs(obs_t, None, self.observation_dim, self.action_dim)
        with torch.no_grad():
            out = self.module.deterministic_action(obs_t) if deterministic else self.sample(obs_t)
        return out.cpu().numpy()

    def _copy(self, train: bool) -> VAEAdapter:
        module = copy.deepcopy(self.module)
        module.train(train)
        module.requires_grad_(train)
        return VAEAdapter(module)

    def trainable_copy(self) -> VAEAdapter:
        """Independent copy in train mode with gradients on."""
        return self._copy(True)

    def frozen_copy(self) -> VAEAdapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        return self._copy(False)

    def to(self, device: torch.device | str) -> VAEAdapter:
        """Move the module to ``device``."""
        self.module.to(device)
        return self

    def train(self, mode: bool = True) -> VAEAdapter:
        """Set the module's train/eval mode."""
        self.module.train(mode)
        return self

    def export(self) -> VAEPolicy:
        """The trained module, on CPU, in eval mode."""
        return self.module.to("cpu").eval()
