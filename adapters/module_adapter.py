"""Shared plumbing of the adapters over retrofit's own policy modules.

Those modules (``TanhGaussianPolicy``, ``DeterministicPolicy``, ``VAEPolicy``) carry their spaces
as attributes and buffers (``observation_dim``, ``action_dim``, ``action_low``, ``action_high``),
so copying, freezing, moving, evaluation-time acting and export are the same for all of them; each
subclass
only says how its policy scores and samples actions.
"""

from __future__ import annotations

import copy
from typing import Any, Self

import numpy as np
import torch


class ModuleAdapter:
    """Base of the ``PolicyAdapter``s over retrofit's modules; ``export()`` returns the module."""

    squashed = False  # True where log π is a tanh-squashed density (unbounded at the bounds)

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module
        self.observation_dim = int(module.observation_dim)
        self.action_dim = int(module.action_dim)
        self.action_low = module.action_low.detach().cpu().numpy().copy()
        self.action_high = module.action_high.detach().cpu().numpy().copy()

    @property
    def device(self) -> torch.device:
        """Device of the module's buffers and parameters."""
        return self.module.action_low.device

    def parameters(self) -> Any:
        """The module's parameters."""
        return self.module.parameters()

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions drawn from the policy."""
        raise NotImplementedError

    def deterministic_action(self, obs: torch.Tensor) -> torch.Tensor:
        """The action the policy takes when asked to act deterministically."""
        return self.module.deterministic_action(obs)

    def mean_action(self, obs: torch.Tensor) -> torch.Tensor:
        """Differentiable deterministic action ``μ(s)`` (PreSa's fixed-variance likelihood):
        the adapter's own ``deterministic_action``, which a subclass may define (BC's
        ``DeterministicPolicy`` has no method of that name)."""
        return self.deterministic_action(obs)

    def check_observations(self, obs: torch.Tensor) -> None:
        """Hook for shape checks before acting (none by default)."""

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a batch of numpy observations, as numpy."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        self.check_observations(obs_t)
        with torch.no_grad():
            out = self.deterministic_action(obs_t) if deterministic else self.sample(obs_t)
        return out.cpu().numpy()

    def _copy(self, trainable: bool) -> Self:
        module = copy.deepcopy(self.module)
        module.train(trainable)
        module.requires_grad_(trainable)
        return type(self)(module)

    def trainable_copy(self) -> Self:
        """Independent copy in train mode with gradients on."""
        return self._copy(True)

    def frozen_copy(self) -> Self:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        return self._copy(False)

    def to(self, device: torch.device | str) -> Self:
        """Move the module to ``device``."""
        self.module.to(device)
        return self

    def train(self, mode: bool = True) -> Self:
        """Set the module's train/eval mode."""
        self.module.train(mode)
        return self

    def export(self) -> torch.nn.Module:
        """The trained module, on CPU, in eval mode."""
        return self.module.to("cpu").eval()


class ParametricAdapter(ModuleAdapter):
    """An adapter over a module whose forward pass gives per-state distribution parameters
    (``module(obs) -> params``), scored by the module method named ``density`` as
    ``density(*params, act)`` and sampled by ``module.sample_from(*params)``.

    One forward pass per call, and the parameters can be computed once per state
    (``distribution_params``/``log_prob_from``: PREFINE precomputes its frozen reference so).
    """

    density: str

    def distribution_params(self, obs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """One forward pass: the per-state parameters that ``log_prob`` scores actions with."""
        return tuple(self.module(obs))

    def log_prob_from(self, params: tuple[torch.Tensor, ...], act: torch.Tensor) -> torch.Tensor:
        """``log π(act)`` from ``distribution_params``; ``act`` may carry leading sample dims."""
        return getattr(self.module, self.density)(*params, act)

    def log_prob(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        """Exact ``log π(act|obs)``; ``act`` may carry leading sample dims."""
        return self.log_prob_from(self.distribution_params(obs), act)

    def log_prob_and_sample(
        self, obs: torch.Tensor, act: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One forward: ``(log π(act|obs), a_s, log π(a_s|obs))`` with ``a_s ~ π`` detached."""
        params = self.distribution_params(obs)
        sampled, sampled_logp = self.module.sample_from(*params)
        return self.log_prob_from(params, act), sampled, sampled_logp

    def sample(self, obs: torch.Tensor) -> torch.Tensor:
        """Detached actions drawn from the policy."""
        with torch.no_grad():
            return self.module.sample_from(*self.distribution_params(obs))[0]
