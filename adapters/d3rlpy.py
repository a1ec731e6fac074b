"""Adapter for d3rlpy 2.x continuous-action algorithms (BC, TD3+BC, TD3, DDPG, ReBRAC, SAC, CQL,
Cal-QL, BEAR, IQL, AWAC, CRR).

d3rlpy's policies work on scaled observations (``observation_scaler``) and, with an
``action_scaler``, in a ``[-1, 1]`` action space mapped to the data's range. The adapter scores
env-unit actions of raw observations, with the distribution each algorithm itself samples from:

- **Squashed Gaussian** (SAC, CQL, Cal-QL, BEAR): ``y = tanh(u)``, ``u ~ N(μ, σ)``; ``log π`` is
  d3rlpy's ``SquashedGaussianDistribution.log_prob`` (``atanh`` of ``y`` clipped to ±0.999999).
- **Gaussian on the squashed mean** (IQL, AWAC, CRR, BC with ``policy_type="stochastic"``):
  ``N(tanh(μ), σ)`` whose samples d3rlpy clamps to ``[-1, 1]``; ``log π`` is d3rlpy's
  ``GaussianDistribution.log_prob``, i.e. the pre-clamp density at the received action.
- **Deterministic** (BC, TD3+BC, TD3, DDPG, ReBRAC): the fixed-variance Gaussian
  ``-||μ(s) - a||² / (2 σ²)`` with ``μ(s)`` what ``predict`` returns and ``σ = sigma`` in env units
  (default 0.1).

With an action scaler, the density is carried to env units by the scaler's Jacobian
(``+ Σ log|∂ scaled / ∂ a|``; zero without one). The action bounds are where the policy's
``[-1, 1]`` lands: the ``MinMaxActionScaler`` range, else ``[-1, 1]``.

``export()`` returns a deep copy of the algorithm with the retrofitted policy weights (critics
unchanged; a target policy, where the algorithm has one, is set to the retrofitted policy):
``algo.save("x.d3")`` then ``d3rlpy.load_learnable("x.d3")`` gives it back without retrofit.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from retrofit.adapters.distribution_adapter import DistributionAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.adapters.torch_module import (
    DEFAULT_SIGMA,
    as_sigma,
    check_inputs,
    fixed_sigma_log_prob,
    fixed_sigma_sample,
)
from retrofit.errors import PolicyError

SQUASHED, GAUSSIAN, DETERMINISTIC = "squashed", "gaussian", "deterministic"
_KINDS = (SQUASHED, GAUSSIAN, DETERMINISTIC)


def _policy_kind(algo: Any, policy: Any) -> str:
    """Which distribution ``algo`` samples from (see the module docstring)."""
    from d3rlpy.algos.qlearning.torch.awac_impl import AWACImpl
    from d3rlpy.algos.qlearning.torch.sac_impl import SACImpl
    from d3rlpy.models.torch import DeterministicPolicy, NormalPolicy

    if isinstance(policy, DeterministicPolicy):
        return DETERMINISTIC
    if isinstance(policy, NormalPolicy):
        if isinstance(algo.impl, SACImpl) and not isinstance(algo.impl, AWACImpl):
            return SQUASHED
        return GAUSSIAN
    raise PolicyError(
        f"d3rlpy {type(algo).__name__} has a {type(policy).__name__} policy, which retrofit "
        "cannot score: supported are BC, TD3+BC, TD3, DDPG, ReBRAC (deterministic) and SAC, CQL, "
        "Cal-QL, BEAR, IQL, AWAC, CRR, stochastic BC. BCQ/PLAS-style generative policies: use "
        "retrofit.policies.vae.VAEPolicy."
    )


def _check_algo(algo: Any) -> Any:
    """Return ``algo.impl.policy`` or raise ``PolicyError`` naming the fix."""
    from d3rlpy.algos import QLearningAlgoBase
    from d3rlpy.constants import ActionSpace

    if not isinstance(algo, QLearningAlgoBase):
        raise PolicyError(
            f"D3rlpyAdapter needs a d3rlpy Q-learning algorithm (BC, TD3PlusBC, CQL, IQL, ...); "
            f"got {type(algo).__name__}. Transformer algorithms are not supported."
        )
    if algo.impl is None:
        raise PolicyError(
            f"d3rlpy {type(algo).__name__} has no networks yet: fit it, call "
            "algo.build_with_dataset(dataset) / build_with_env(env), or load a trained one with "
            "d3rlpy.load_learnable(path)."
        )
    if algo.get_action_type() != ActionSpace.CONTINUOUS:
        raise PolicyError(
            f"d3rlpy {type(algo).__name__} is a discrete-action algorithm; retrofit fine-tunes "
            "continuous-action policies only."
        )
    shape = algo.impl.observation_shape
    if not (isinstance(shape, Sequence) and len(shape) == 1 and isinstance(shape[0], int)):
        raise PolicyError(
            f"d3rlpy {type(algo).__name__} takes observations of shape {shape}; retrofit needs "
            "flat vector observations (one 1-D array per state)."
        )
    return algo.impl.policy


class D3rlpyAdapter(DistributionAdapter):
    """``PolicyAdapter`` over a built d3rlpy continuous-action algorithm.

    Args:
        algo: the trained algorithm (``algo.impl`` built).
        distribution: override the detected family, ``"squashed"``, ``"gaussian"`` or
            ``"deterministic"`` (e.g. to score a stochastic policy by its mean only).
        sigma: σ_fixed of the deterministic surrogate (scalar or per dimension, env units).
    """

    def __init__(
        self,
        algo: Any,
        *,
        distribution: str | None = None,
        sigma: float | Sequence[float] | np.ndarray = DEFAULT_SIGMA,
        _policy: Any | None = None,
        _scalers: tuple[Any, Any] | None = None,
    ) -> None:
        policy = _check_algo(algo)
        self.algo = algo
        self.policy = policy if _policy is None else _policy
        self.kind = distribution or _policy_kind(algo, self.policy)
        if self.kind not in _KINDS:
            raise PolicyError(f"distribution={distribution!r}: use one of {_KINDS}.")
        # private copies: d3rlpy scalers cache tensors on the device they were first used on
        self.observation_scaler, self.action_scaler = _scalers or (
            copy.deepcopy(algo.observation_scaler), copy.deepcopy(algo.action_scaler)
        )
        self.observation_dim = int(algo.impl.observation_shape[0])
        self.action_dim = int(algo.impl.action_size)
        self.sigma_setting = sigma
        self.sigma = as_sigma(sigma, self.action_dim)
        self._set_bounds()

    def _set_bounds(self) -> None:
        """Bounds, their tensors and the log-Jacobian of the action scaler, on ``self.device``."""
        device = self.device
        ones = torch.ones(self.action_dim, device=device)
        low = self._to_env(-ones)
        high = self._to_env(ones)
        self._low, self._high = low, high
        self.action_low = low.cpu().numpy().astype(np.float32)
        self.action_high = high.cpu().numpy().astype(np.float32)
        if self.action_scaler is None:
            self._log_jacobian = 0.0
        else:  # d3rlpy's action scalers are elementwise affine: the slope is t(1) - t(0)
            slope = self.action_scaler.transform(ones) - self.action_scaler.transform(0 * ones)
            self._log_jacobian = float(torch.log(slope.abs().double()).sum())
        self.sigma = self.sigma.to(device)

    # -------------------------------------------------------------------- conversions
    def _to_env(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.action_scaler is None else self.action_scaler.reverse_transform(y)

    def _to_policy(self, act: torch.Tensor) -> torch.Tensor:
        return act if self.action_scaler is None else self.action_scaler.transform(act)

    def _params(self, obs: torch.Tensor, act: torch.Tensor | None) -> Any:
        """One forward pass: d3rlpy's distribution, or ``μ(s)`` in env units (deterministic)."""
        from d3rlpy.models.torch import (
            build_gaussian_distribution,
            build_squashed_gaussian_distribution,
        )

        check_inputs(obs, act, self.observation_dim, self.action_dim)
        obs = obs.float()
        if self.observation_scaler is not None:
            obs = self.observation_scaler.transform(obs)
        out = self.policy(obs)
        if self.kind == DETERMINISTIC:
            return self._to_env(out.squashed_mu)
        if self.kind == SQUASHED:
            return build_squashed_gaussian_distribution(out)
        return build_gaussian_distribution(out)

    def _score(self, params: Any, act: torch.Tensor) -> torch.Tensor:
        if self.kind == DETERMINISTIC:
            return fixed_sigma_log_prob(params, act, self.sigma)
        return params.log_prob(self._to_policy(act)).squeeze(-1) + self._log_jacobian

    def _draw(self, params: Any) -> torch.Tensor:
        if self.kind == DETERMINISTIC:
            return fixed_sigma_sample(params, self.sigma, self._low, self._high)
        with torch.no_grad():
            return self._to_env(params.sample())

    # -------------------------------------------------------------------- contract
    @property
    def device(self) -> torch.device:
        """Device of the policy's parameters."""
        return next(iter(self.policy.parameters())).device

    def parameters(self) -> Any:
        """The policy's parameters (critics are not trained)."""
        return self.policy.parameters()

    def _mean(self, params: Any) -> torch.Tensor:
        return params if self.kind == DETERMINISTIC else self._to_env(params.mean)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """What ``algo.predict(obs)`` returns (deterministic), or a sample."""
        obs_t = torch.as_tensor(np.asarray(obs, dtype=np.float32), device=self.device)
        with torch.no_grad():
            params = self._params(obs_t, None)
            if not deterministic:
                return self._draw(params).cpu().numpy()
            return self._mean(params).cpu().numpy()

    def _copy(self, train: bool) -> D3rlpyAdapter:
        policy = copy.deepcopy(self.policy)
        policy.train(train)
        policy.requires_grad_(train)
        return D3rlpyAdapter(
            self.algo, distribution=self.kind, sigma=self.sigma_setting, _policy=policy,
            _scalers=copy.deepcopy((self.observation_scaler, self.action_scaler)),
        )

    def trainable_copy(self) -> D3rlpyAdapter:
        """Independent copy of the policy in train mode with gradients on."""
        return self._copy(True)

    def frozen_copy(self) -> D3rlpyAdapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        return self._copy(False)

    def to(self, device: torch.device | str) -> D3rlpyAdapter:
        """Move the policy and the scalers' cached tensors to ``device``."""
        self.policy.to(device)
        for scaler in (self.observation_scaler, self.action_scaler):
            if scaler is not None and hasattr(scaler, "_set_torch_value"):
                scaler._set_torch_value(torch.device(device))
        self._set_bounds()
        return self

    def train(self, mode: bool = True) -> D3rlpyAdapter:
        """Set the policy's train/eval mode."""
        self.policy.train(mode)
        return self

    def export(self) -> Any:
        """A deep copy of the algorithm holding the retrofitted policy weights."""
        out = copy.deepcopy(self.algo)
        state = self.policy.state_dict()
        out.impl.policy.load_state_dict(state)
        target = getattr(out.impl._modules, "targ_policy", None)
        if target is not None:
            target.load_state_dict(state)
        return out


def _is_d3rlpy(obj: Any) -> bool:
    """A d3rlpy algorithm; only true once the caller has imported d3rlpy."""
    if "d3rlpy" not in sys.modules:
        return False
    from d3rlpy.base import LearnableBase

    return isinstance(obj, LearnableBase)


register_adapter(
    "d3rlpy BC, TD3PlusBC, TD3, DDPG, ReBRAC, SAC, CQL, CalQL, BEAR, IQL, AWAC, CRR "
    "(continuous actions)",
    _is_d3rlpy,
    D3rlpyAdapter,
)
