"""Adapter for a plain ``torch.nn.Module`` policy, and the helpers every adapter shares.

A module ``f(obs) -> out`` is accepted in two forms (docs/adapters.md, "the adapter contract"):

- ``out`` is a tensor, the policy's action ``μ(s)`` in environment units: a deterministic policy,
  scored as the fixed-variance Gaussian ``log π(a|s) = -||μ(s) - a||² / (2 σ²)`` (the constant is
  dropped). ``σ`` is ``sigma`` in action units (default 0.1, as retrofit's own
  ``DeterministicPolicy``; ``1/√2`` gives CPL's and PreSa's ``-||μ(s) - a||²``); sampling draws
  ``μ(s) + σ·ε``.
- ``out`` is a continuous ``torch.distributions.Distribution`` over actions in environment units:
  ``log π`` is its own ``log_prob`` (summed over the action dimension when it is not an event
  dimension), samples are its ``sample()``.

Samples are clipped to ``[action_low, action_high]`` (the action the environment receives) and
scored at the clipped value, as every adapter here does. Bounds default to ``±inf`` (no clipping).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters.distribution_adapter import DistributionAdapter
from retrofit.errors import PolicyError

DEFAULT_SIGMA = 0.1  # σ_fixed in action units, as retrofit.policies.deterministic

_DISCRETE = (
    torch.distributions.Categorical,
    torch.distributions.OneHotCategorical,
    torch.distributions.Bernoulli,
    torch.distributions.Binomial,
    torch.distributions.Poisson,
    torch.distributions.Geometric,
)


# ---------------------------------------------------------------------------------- shared helpers
def as_bounds(
    low: Any, high: Any, action_dim: int, default: float = math.inf
) -> tuple[np.ndarray, np.ndarray]:
    """Action bounds as two float32 arrays of length ``action_dim`` (scalars are broadcast)."""
    low_a = np.broadcast_to(
        np.asarray(-default if low is None else low, dtype=np.float32), (action_dim,)
    ).copy()
    high_a = np.broadcast_to(
        np.asarray(default if high is None else high, dtype=np.float32), (action_dim,)
    ).copy()
    if not np.all(high_a > low_a):
        raise PolicyError(
            f"action_high={high_a.tolist()} must exceed action_low={low_a.tolist()} in every "
            "dimension; pass the environment's env.action_space.low / .high."
        )
    return low_a, high_a


def as_sigma(sigma: float | Sequence[float] | np.ndarray, action_dim: int) -> torch.Tensor:
    """σ_fixed as a positive ``(action_dim,)`` float32 tensor (a scalar is broadcast)."""
    arr = np.broadcast_to(np.asarray(sigma, dtype=np.float32), (action_dim,)).copy()
    if not np.all(np.isfinite(arr) & (arr > 0)):
        raise PolicyError(f"sigma={sigma!r} must be finite and > 0 (σ_fixed, in action units).")
    return torch.as_tensor(arr)


def check_inputs(
    obs: torch.Tensor, act: torch.Tensor | None, observation_dim: int, action_dim: int
) -> None:
    """Raise ``PolicyError`` when ``obs (B, O)`` / ``act (..., B, A)`` disagree with the policy."""
    if obs.dim() != 2 or obs.shape[-1] != observation_dim:
        raise PolicyError(
            f"observations of shape {tuple(obs.shape)} do not fit the policy, which takes "
            f"(batch, {observation_dim}). The data comes from a different environment or "
            "observation layout than the policy was trained on: retrofit a policy trained on the "
            "data's task (or pass observations the policy was trained with)."
        )
    if act is not None and (
        act.dim() < 2 or act.shape[-1] != action_dim or act.shape[-2] != obs.shape[0]
    ):
        raise PolicyError(
            f"actions of shape {tuple(act.shape)} do not fit the policy, which outputs "
            f"{action_dim}-dimensional actions for a batch of {obs.shape[0]} observations. The "
            "data's action space differs from the policy's: use data of the policy's task."
        )


def fixed_sigma_log_prob(
    mean: torch.Tensor, act: torch.Tensor, sigma: torch.Tensor
) -> torch.Tensor:
    """``-Σ (μ - a)² / (2 σ²)`` over the last dim: the deterministic-policy surrogate (spec)."""
    return -((mean - act) / sigma).pow(2).sum(-1) / 2


def fixed_sigma_sample(
    mean: torch.Tensor, sigma: torch.Tensor, low: torch.Tensor, high: torch.Tensor
) -> torch.Tensor:
    """Detached ``clip(μ + σ·ε, low, high)`` with ``ε ~ N(0, I)``."""
    noise = torch.randn_like(mean)
    return torch.maximum(torch.minimum(mean.detach() + sigma * noise, high), low)


def clip_to(act: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Clip ``act`` into ``[low, high]`` elementwise (bounds broadcast over leading dims)."""
    return torch.maximum(torch.minimum(act, high), low)


def first_linear_in_features(module: nn.Module) -> int | None:
    """``in_features`` of the first ``nn.Linear`` in ``module`` (a guess at the input width)."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            return int(sub.in_features)
    return None


def distribution_mode(dist: torch.distributions.Distribution) -> torch.Tensor:
    """The distribution's mean, or ``transforms(base mean)`` for a transformed distribution."""
    if isinstance(dist, torch.distributions.TransformedDistribution):
        out = distribution_mode(dist.base_dist)
        for transform in dist.transforms:
            out = transform(out)
        return out
    if isinstance(dist, torch.distributions.Independent):
        return distribution_mode(dist.base_dist)
    return dist.mean


# ---------------------------------------------------------------------------------- the adapter
class TorchModuleAdapter(DistributionAdapter):
    """``PolicyAdapter`` over a module returning an action mean or a ``Distribution``.

    Args:
        module: ``module(obs (B, O)) -> Tensor (B, A)`` or ``-> Distribution`` over ``(B, A)``.
        observation_dim: input width; inferred from the first ``nn.Linear`` when omitted.
        action_low, action_high: the environment's action bounds (scalars or arrays); samples
            and deterministic actions are clipped into them. Default ``±inf``.
        sigma: σ_fixed of the deterministic surrogate (scalar or per-dimension, action units).
    """

    def __init__(
        self,
        module: nn.Module,
        *,
        observation_dim: int | None = None,
        action_low: Any = None,
        action_high: Any = None,
        sigma: float | Sequence[float] | np.ndarray = DEFAULT_SIGMA,
    ) -> None:
        if not isinstance(module, nn.Module):
            raise PolicyError(f"module must be a torch.nn.Module; got {type(module).__name__}.")
        observation_dim = observation_dim or first_linear_in_features(module)
        if observation_dim is None:
            raise PolicyError(
                f"Cannot infer the observation width of {type(module).__name__} (it has no "
                "nn.Linear): use TorchModuleAdapter(module, observation_dim=...)."
            )
        self.module = module
        self.observation_dim = int(observation_dim)
        self.stochastic, self.action_dim = self._probe()
        self.action_low, self.action_high = as_bounds(action_low, action_high, self.action_dim)
        self.sigma = as_sigma(sigma, self.action_dim)
        self._low = torch.as_tensor(self.action_low)
        self._high = torch.as_tensor(self.action_high)
        self._settings = {"sigma": sigma, "action_low": action_low, "action_high": action_high}

    def _probe(self) -> tuple[bool, int]:
        """Run the module once on zeros: is it stochastic, and how wide is its action?"""
        param = next(iter(self.module.parameters()), None)
        device = param.device if param is not None else torch.device("cpu")
        was_training = self.module.training
        self.module.eval()
        try:
            with torch.no_grad():
                out = self.module(torch.zeros(1, self.observation_dim, device=device))
        except Exception as exc:  # any failure of the user's forward
            raise PolicyError(
                f"{type(self.module).__name__}(obs) failed on a (1, {self.observation_dim}) "
                f"batch: {exc!r}. Pass observation_dim=... if the width was guessed wrong."
            ) from exc
        finally:
            self.module.train(was_training)
        if isinstance(out, _DISCRETE):
            raise PolicyError(
                f"{type(self.module).__name__} returns a {type(out).__name__}: a discrete-action "
                "policy. retrofit fine-tunes continuous-action policies only."
            )
        if isinstance(out, torch.distributions.Distribution):
            return True, int(out.sample().shape[-1])
        if isinstance(out, torch.Tensor) and out.dim() == 2 and out.is_floating_point():
            return False, int(out.shape[-1])
        raise PolicyError(
            f"{type(self.module).__name__}(obs) returned {type(out).__name__}; a policy module "
            "must return the action mean as a (batch, action_dim) float tensor or a "
            "torch.distributions.Distribution. Wrap other outputs in a small nn.Module."
        )

    # -------------------------------------------------------------------- contract
    @property
    def device(self) -> torch.device:
        """Device of the module's parameters (CPU when it has none)."""
        param = next(iter(self.module.parameters()), None)
        return param.device if param is not None else torch.device("cpu")

    def parameters(self) -> Any:
        """The module's parameters."""
        return self.module.parameters()

    def _params(self, obs: torch.Tensor, act: torch.Tensor | None) -> Any:
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        return self.module(obs)

    def _score(self, out: Any, act: torch.Tensor) -> torch.Tensor:
        if not self.stochastic:
            return fixed_sigma_log_prob(out, act, self.sigma)
        logp = out.log_prob(act)
        return logp.sum(-1) if logp.shape == act.shape else logp

    def _draw(self, out: Any) -> torch.Tensor:
        if not self.stochastic:
            return fixed_sigma_sample(out, self.sigma, self._low, self._high)
        return clip_to(out.sample(), self._low, self._high).detach()

    def _mean(self, out: Any) -> torch.Tensor:
        return distribution_mode(out) if self.stochastic else out

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Actions for a numpy batch: the mean (distribution mode) when deterministic, clipped."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        with torch.no_grad():
            out = self._params(obs_t, None)
            if not deterministic:
                return self._draw(out).cpu().numpy()
            return clip_to(self._mean(out), self._low, self._high).cpu().numpy()

    def _copy(self, train: bool) -> TorchModuleAdapter:
        module = copy.deepcopy(self.module)
        module.train(train)
        module.requires_grad_(train)
        out = TorchModuleAdapter(module, observation_dim=self.observation_dim, **self._settings)
        return out.to(self.device)

    def trainable_copy(self) -> TorchModuleAdapter:
        """Independent copy in train mode with gradients on."""
        return self._copy(True)

    def frozen_copy(self) -> TorchModuleAdapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        return self._copy(False)

    def to(self, device: torch.device | str) -> TorchModuleAdapter:
        """Move the module (and bounds, σ) to ``device``."""
        self.module.to(device)
        self._low, self._high = self._low.to(device), self._high.to(device)
        self.sigma = self.sigma.to(device)
        return self

    def train(self, mode: bool = True) -> TorchModuleAdapter:
        """Set the module's train/eval mode."""
        self.module.train(mode)
        return self

    def export(self) -> nn.Module:
        """The trained module, on CPU, in eval mode (``.state_dict()`` for a weights file)."""
        return self.module.to("cpu").eval()
