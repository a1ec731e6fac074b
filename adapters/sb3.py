"""Adapter for stable-baselines3 models: PPO/A2C, SAC, TD3/DDPG (continuous ``Box`` actions).

``log π(a|s)`` is of ``a`` in the environment's units — the action the environment receives —
for the raw (un-normalised) observation ``s`` of the dataset:

- **Observations.** When the model was trained under ``VecNormalize`` (given as ``vec_normalize=``
  or found on ``model.get_env()``), the adapter applies its frozen statistics,
  ``clip((s - mean) / sqrt(var + ε), ±clip_obs)``, in float64 as SB3 does. SB3's own
  preprocessing (``preprocess_obs``) then runs inside the policy as usual.
- **PPO / A2C** (``ActorCriticPolicy``, state-independent log-std): the Gaussian acts in env units
  and SB3 *clips* its sample into the box before stepping the env. ``log π`` is the pre-clip
  Gaussian's log-density at the received action, ``Σ log N(a; μ(s), σ)`` — exactly SB3's
  ``evaluate_actions`` — not the censored likelihood (no probability mass is put on the bounds).
  Samples are clipped like SB3's and scored the same way. With gSDE and ``squash_output=True``
  the policy is a tanh-squashed Gaussian in ``[-1, 1]`` and is handled like SAC.
- **SAC** (squashed Gaussian in ``[-1, 1]``, rescaled to the box): with ``y = 2(a - low)/(high -
  low) - 1`` and ``u = atanh(y)``, ``log π(a) = log N(u; μ, σ) - Σ log(1 - y² + 1e-6)
  - Σ log((high - low)/2)``: SB3's ``SquashedDiagGaussianDistribution.log_prob`` (its epsilons)
  plus the Jacobian of the rescaling (zero for a ``[-1, 1]`` box).
- **TD3 / DDPG** (deterministic): the fixed-variance Gaussian ``-||μ(s) - a||² / (2 σ²)`` with
  ``μ(s)`` the action ``predict`` returns and ``σ = sigma`` in env units (default 0.1);
  sampling draws ``clip(μ(s) + σ·ε)``.

``export()`` returns a new model of the same class (the original is untouched) holding the
retrofitted weights; ``.save()`` it and ``PPO.load`` / ``SAC.load`` it anywhere, without retrofit.
Only the actor is trained; the critic and value function are returned unchanged, and a TD3/DDPG
target actor is set to the retrofitted actor. ``VecNormalize`` statistics are not part of an SB3
model: keep using the ones the policy was trained with.
"""

from __future__ import annotations

import copy
import io
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters.distribution_adapter import DistributionAdapter
from retrofit.adapters.registry import register_adapter
from retrofit.adapters.torch_module import (
    DEFAULT_SIGMA,
    as_sigma,
    check_inputs,
    clip_to,
    fixed_sigma_log_prob,
    fixed_sigma_sample,
)
from retrofit.errors import PolicyError

_GAUSSIAN, _SQUASHED, _DETERMINISTIC = "gaussian", "squashed", "deterministic"


class _ObsNormalizer(nn.Module):
    """Frozen ``VecNormalize`` observation statistics, applied in float64 as SB3 does."""

    def __init__(self, vec_normalize: Any | None) -> None:
        super().__init__()
        self.active = bool(vec_normalize is not None and vec_normalize.norm_obs)
        if self.active:
            rms = vec_normalize.obs_rms
            if isinstance(rms, dict):
                raise PolicyError(
                    "VecNormalize over a Dict observation space is not supported: retrofit needs a "
                    "flat Box observation."
                )
            self.register_buffer("mean", torch.as_tensor(np.asarray(rms.mean, dtype=np.float64)))
            self.register_buffer("var", torch.as_tensor(np.asarray(rms.var, dtype=np.float64)))
            self.epsilon = float(vec_normalize.epsilon)
            self.clip_obs = float(vec_normalize.clip_obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised float32 observations (identity without statistics)."""
        if not self.active:
            return obs.float()
        out = (obs.double() - self.mean) / torch.sqrt(self.var + self.epsilon)
        return out.clamp(-self.clip_obs, self.clip_obs).float()


def _kind(policy: Any) -> str:
    from stable_baselines3.common.distributions import (
        DiagGaussianDistribution,
        StateDependentNoiseDistribution,
    )
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.sac.policies import SACPolicy
    from stable_baselines3.td3.policies import TD3Policy

    if isinstance(policy, SACPolicy):
        return _SQUASHED
    if isinstance(policy, TD3Policy):
        return _DETERMINISTIC
    if isinstance(policy, ActorCriticPolicy) and isinstance(
        policy.action_dist, DiagGaussianDistribution | StateDependentNoiseDistribution
    ):
        return _SQUASHED if policy.squash_output else _GAUSSIAN
    raise PolicyError(
        f"stable-baselines3 policy {type(policy).__name__} is not supported: retrofit handles "
        "PPO/A2C (ActorCriticPolicy with a Gaussian), SAC and TD3/DDPG. Recurrent and "
        "sb3-contrib policies need a custom retrofit.adapters.base.PolicyAdapter."
    )


def _actor_parameters(policy: Any) -> list[nn.Parameter]:
    """Parameters that shape the action distribution (SAC/TD3 actor; PPO minus value head)."""
    actor = getattr(policy, "actor", None)
    if isinstance(actor, nn.Module):
        return list(actor.parameters())
    skip = ("value_net.", "mlp_extractor.value_net.", "vf_features_extractor.")
    return [p for name, p in policy.named_parameters() if not name.startswith(skip)]


def _drop_graph_state(policy: nn.Module) -> None:
    """Detach what SB3's stateful ``Distribution`` objects keep from the last forward pass.

    ``proba_distribution`` stores its parameters on the distribution object; while they hold an
    autograd graph the policy cannot be deep-copied. Nothing else reads them before the next
    forward pass overwrites them.
    """
    from stable_baselines3.common.distributions import Distribution

    for module in policy.modules():
        dist = getattr(module, "action_dist", None)
        if not isinstance(dist, Distribution):
            continue
        for name, value in list(vars(dist).items()):
            if isinstance(value, torch.Tensor) and not value.is_leaf:
                setattr(dist, name, value.detach())
            elif isinstance(value, torch.distributions.Distribution):
                setattr(dist, name, None)


def _check_spaces(model: Any) -> None:
    from gymnasium import spaces

    act_space, obs_space = model.action_space, model.observation_space
    if not isinstance(act_space, spaces.Box):
        raise PolicyError(
            f"{type(model).__name__} acts in {act_space}: a discrete-action policy. retrofit "
            "fine-tunes continuous (Box) action policies: PPO/A2C/SAC/TD3/DDPG on a Box env."
        )
    if not isinstance(obs_space, spaces.Box) or len(obs_space.shape) != 1:
        raise PolicyError(
            f"{type(model).__name__} observes {obs_space}; retrofit's datasets hold flat vector "
            "observations, so the policy needs a 1-D Box observation space (flatten Dict or "
            "image observations with a wrapper before training)."
        )


def _find_vec_normalize(model: Any) -> Any | None:
    from stable_baselines3.common.vec_env import unwrap_vec_normalize

    env = model.get_env()
    return None if env is None else unwrap_vec_normalize(env)


class SB3Adapter(DistributionAdapter):
    """``PolicyAdapter`` over a stable-baselines3 ``PPO``/``A2C``/``SAC``/``TD3``/``DDPG`` model.

    Args:
        model: the trained SB3 model (``BaseAlgorithm``) with a ``Box`` action space.
        vec_normalize: the ``VecNormalize`` the model was trained under; its observation
            statistics are applied to raw observations. Default: the one on ``model.get_env()``,
            if any. Pass ``False`` to feed observations unchanged.
        sigma: σ_fixed of TD3/DDPG's fixed-variance Gaussian (scalar or per dimension, in env
            units; default 0.1; ``1/√2`` gives ``log π = -||μ(s) - a||²``). Unused by
            stochastic models.
    """

    def __init__(
        self,
        model: Any,
        *,
        vec_normalize: Any | None = None,
        sigma: float | Sequence[float] | np.ndarray = DEFAULT_SIGMA,
        _policy: Any | None = None,
        _normalizer: _ObsNormalizer | None = None,
    ) -> None:
        from stable_baselines3.common.base_class import BaseAlgorithm

        if not isinstance(model, BaseAlgorithm):
            raise PolicyError(
                f"SB3Adapter needs a stable-baselines3 model (PPO, SAC, ...); got "
                f"{type(model).__name__}. Pass the model, not model.policy."
            )
        _check_spaces(model)
        self.model = model
        self.policy = model.policy if _policy is None else _policy
        self.kind = _kind(self.policy)
        if _normalizer is None:
            if vec_normalize is None:
                vec_normalize = _find_vec_normalize(model)
            _normalizer = _ObsNormalizer(vec_normalize or None)
        self.normalizer = _normalizer.to(self.device)
        self.observation_dim = int(model.observation_space.shape[0])
        self.action_dim = int(model.action_space.shape[0])
        self.action_low = np.asarray(model.action_space.low, dtype=np.float32).copy()
        self.action_high = np.asarray(model.action_space.high, dtype=np.float32).copy()
        if not (np.all(np.isfinite(self.action_low)) and np.all(np.isfinite(self.action_high))):
            if self.kind != _GAUSSIAN:
                raise PolicyError(
                    f"{type(model).__name__} has an unbounded action space {model.action_space}; "
                    "SAC/TD3 rescale actions into the box, so it must be finite."
                )
        self.sigma_setting = sigma
        self.sigma = as_sigma(sigma, self.action_dim).to(self.device)
        self._low = torch.as_tensor(self.action_low, device=self.device)
        self._high = torch.as_tensor(self.action_high, device=self.device)
        half = (self.action_high.astype(np.float64) - self.action_low) / 2
        # log|dy/da| of the rescaling a -> y in [-1, 1] (SAC, TD3, squashed PPO)
        self._log_jacobian = float(-np.log(half).sum()) if self.kind == _SQUASHED else 0.0

    # -------------------------------------------------------------------- space conversions
    def _scale(self, act: torch.Tensor) -> torch.Tensor:
        """Env action -> SB3's ``[-1, 1]`` (``BasePolicy.scale_action``)."""
        return 2.0 * ((act - self._low) / (self._high - self._low)) - 1.0

    def _unscale(self, y: torch.Tensor) -> torch.Tensor:
        """SB3's ``[-1, 1]`` -> env action (``BasePolicy.unscale_action``)."""
        return self._low + (0.5 * (y + 1.0) * (self._high - self._low))

    # -------------------------------------------------------------------- forward pass
    def _params(self, obs: torch.Tensor, act: torch.Tensor | None) -> Any:
        """One forward pass: the SB3 distribution (stochastic) or ``μ(s)`` in env units."""
        check_inputs(obs, act, self.observation_dim, self.action_dim)
        obs_n = self.normalizer(obs)
        if self.kind == _DETERMINISTIC:
            return self._unscale(self.policy.actor(obs_n))
        if self.kind == _SQUASHED and hasattr(self.policy, "actor"):  # SAC
            actor = self.policy.actor
            mean, log_std, kwargs = actor.get_action_dist_params(obs_n)
            return actor.action_dist.proba_distribution(mean, log_std, **kwargs)
        return self.policy.get_distribution(obs_n)  # PPO / A2C

    def _score(self, params: Any, act: torch.Tensor) -> torch.Tensor:
        """``log π(act)`` from ``_params``; ``act`` may carry leading sample dims."""
        if self.kind == _DETERMINISTIC:
            return fixed_sigma_log_prob(params, act, self.sigma)
        normal = params.distribution
        if self.kind == _GAUSSIAN:
            return normal.log_prob(act).sum(-1)
        from stable_baselines3.common.distributions import TanhBijector

        y = self._scale(act)
        u = TanhBijector.inverse(y)
        bijector = getattr(params, "bijector", None)
        if bijector is not None:  # gSDE with squash_output (StateDependentNoiseDistribution)
            correction = bijector.log_prob_correction(u)
        else:  # SquashedDiagGaussianDistribution.log_prob
            correction = torch.log(1 - y**2 + params.epsilon)
        # summed as SB3 sums (Σ log N - Σ correction), so the float32 results agree bit for bit
        return normal.log_prob(u).sum(-1) - correction.sum(-1) + self._log_jacobian

    def _draw(self, params: Any) -> torch.Tensor:
        """Detached env actions drawn from ``_params``."""
        if self.kind == _DETERMINISTIC:
            return fixed_sigma_sample(params, self.sigma, self._low, self._high)
        u = params.distribution.sample()
        if self.kind == _GAUSSIAN:
            return clip_to(u, self._low, self._high)
        return self._unscale(torch.tanh(u))

    # -------------------------------------------------------------------- contract
    @property
    def device(self) -> torch.device:
        """Device of the SB3 policy."""
        return self.policy.device

    def parameters(self) -> Any:
        """The actor's parameters (the critic / value function is not trained)."""
        return iter(_actor_parameters(self.policy))

    def _mean(self, params: Any) -> torch.Tensor:
        """The deterministic env action from ``_params``, before any clipping."""
        if self.kind == _DETERMINISTIC:
            return params
        mode = params.distribution.mean
        return mode if self.kind == _GAUSSIAN else self._unscale(torch.tanh(mode))

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """What ``model.predict(normalised obs, deterministic)`` returns, from raw observations."""
        obs_t = torch.as_tensor(np.asarray(obs), device=self.device)
        with torch.no_grad():
            params = self._params(obs_t, None)
            if not deterministic:
                return self._draw(params).cpu().numpy()
            mean = self._mean(params)
            if self.kind == _GAUSSIAN:
                mean = clip_to(mean, self._low, self._high)
            return mean.cpu().numpy()

    def _copy(self, train: bool) -> SB3Adapter:
        _drop_graph_state(self.policy)
        policy = copy.deepcopy(self.policy)
        policy.set_training_mode(train)
        policy.requires_grad_(False)
        if train:
            for param in _actor_parameters(policy):
                param.requires_grad_(True)
        return SB3Adapter(
            self.model, sigma=self.sigma_setting, _policy=policy,
            _normalizer=copy.deepcopy(self.normalizer),
        )

    def trainable_copy(self) -> SB3Adapter:
        """Independent copy (of the policy) in train mode with the actor's gradients on."""
        return self._copy(True)

    def frozen_copy(self) -> SB3Adapter:
        """Independent copy in eval mode with ``requires_grad_(False)``."""
        return self._copy(False)

    def to(self, device: torch.device | str) -> SB3Adapter:
        """Move the policy, statistics and bounds to ``device``."""
        self.policy.to(device)
        self.normalizer.to(device)
        self.sigma = self.sigma.to(device)
        self._low, self._high = self._low.to(device), self._high.to(device)
        return self

    def train(self, mode: bool = True) -> SB3Adapter:
        """SB3's ``set_training_mode(mode)``."""
        self.policy.set_training_mode(mode)
        return self

    def export(self) -> Any:
        """A new model of the original's class with the retrofitted policy weights.

        Built by SB3's own ``save``/``load`` of the original (in memory; environment and replay
        buffer are not carried over: ``set_env`` to train further), then loading this policy's
        ``state_dict``.
        """
        buffer = io.BytesIO()
        self.model.save(buffer)
        buffer.seek(0)
        out = type(self.model).load(buffer, device=self.model.device)
        out.policy.load_state_dict(self.policy.state_dict())
        if self.kind == _DETERMINISTIC and hasattr(out, "actor_target"):
            out.actor_target.load_state_dict(out.actor.state_dict())
        out.policy.set_training_mode(False)
        return out


def _is_sb3(obj: Any) -> bool:
    """An SB3 model or policy; only true once the caller has imported stable-baselines3."""
    if "stable_baselines3" not in sys.modules:
        return False
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import BasePolicy

    return isinstance(obj, BaseAlgorithm | BasePolicy)


def _sb3(obj: Any) -> SB3Adapter:
    from stable_baselines3.common.policies import BasePolicy

    if isinstance(obj, BasePolicy):
        raise PolicyError(
            f"Got the stable-baselines3 policy module {type(obj).__name__}; pass the model itself "
            "(the PPO/SAC/TD3 object, e.g. PPO.load(path)) so the result can be exported as one."
        )
    return SB3Adapter(obj)


register_adapter("stable-baselines3 PPO, A2C, SAC, TD3, DDPG (Box actions)", _is_sb3, _sb3)
