"""Policy adapters: wrap the policies users already have behind one small contract.

``wrap(obj)`` picks the adapter for ``obj`` or raises a ``PolicyError`` naming what is supported.
Adapters for third-party libraries are registered here but import those libraries lazily.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from retrofit.adapters.base import PolicyAdapter
from retrofit.errors import PolicyError

_Matcher = Callable[[Any], bool]
_Factory = Callable[[Any], PolicyAdapter]
_REGISTRY: list[tuple[str, _Matcher, _Factory]] = []


def register_adapter(description: str, matches: _Matcher, factory: _Factory) -> None:
    """Register an adapter: ``matches(obj)`` selects it, ``factory(obj)`` builds it."""
    _REGISTRY.append((description, matches, factory))


def _is_tanh_gaussian(obj: Any) -> bool:
    from retrofit.policies.gaussian import TanhGaussianPolicy

    return isinstance(obj, TanhGaussianPolicy)


def _tanh_gaussian(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.gaussian_mlp import TanhGaussianAdapter

    return TanhGaussianAdapter(obj)


register_adapter("retrofit.policies.TanhGaussianPolicy", _is_tanh_gaussian, _tanh_gaussian)


def _is_clipped_gaussian(obj: Any) -> bool:
    from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy

    return isinstance(obj, ClippedGaussianPolicy)


def _clipped_gaussian(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.clipped_gaussian import ClippedGaussianAdapter

    return ClippedGaussianAdapter(obj)


register_adapter(
    "retrofit.policies.clipped_gaussian.ClippedGaussianPolicy", _is_clipped_gaussian,
    _clipped_gaussian,
)


def _is_vae(obj: Any) -> bool:
    from retrofit.policies.vae import VAEPolicy

    return isinstance(obj, VAEPolicy)


def _vae(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.vae import VAEAdapter

    return VAEAdapter(obj)


def _is_sb3(obj: Any) -> bool:
    """An SB3 model or policy; only true once the caller has imported stable-baselines3."""
    if "stable_baselines3" not in sys.modules:
        return False
    from stable_baselines3.common.base_class import BaseAlgorithm
    from stable_baselines3.common.policies import BasePolicy

    return isinstance(obj, BaseAlgorithm | BasePolicy)


def _sb3(obj: Any) -> PolicyAdapter:
    from stable_baselines3.common.policies import BasePolicy

    if isinstance(obj, BasePolicy):
        raise PolicyError(
            f"Got the stable-baselines3 policy module {type(obj).__name__}; pass the model itself "
            "(the PPO/SAC/TD3 object, e.g. PPO.load(path)) so the result can be exported as one."
        )
    from retrofit.adapters.sb3 import SB3Adapter

    return SB3Adapter(obj)


def _is_d3rlpy(obj: Any) -> bool:
    """A d3rlpy algorithm; only true once the caller has imported d3rlpy."""
    if "d3rlpy" not in sys.modules:
        return False
    from d3rlpy.base import LearnableBase

    return isinstance(obj, LearnableBase)


def _d3rlpy(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.d3rlpy import D3rlpyAdapter

    return D3rlpyAdapter(obj)


register_adapter("retrofit.policies.vae.VAEPolicy (BCQ-style VAE)", _is_vae, _vae)
register_adapter(
    "stable-baselines3 PPO, A2C, SAC, TD3, DDPG (Box actions)", _is_sb3, _sb3
)
register_adapter(
    "d3rlpy BC, TD3PlusBC, TD3, DDPG, ReBRAC, SAC, CQL, CalQL, BEAR, IQL, AWAC, CRR "
    "(continuous actions)",
    _is_d3rlpy,
    _d3rlpy,
)

_TORCH_MODULE = (
    "any torch.nn.Module returning an action mean or a torch.distributions.Distribution "
    "(tried last; retrofit.adapters.torch_module.TorchModuleAdapter to set bounds and sigma)"
)


def _torch_module_fallback(obj: Any) -> PolicyAdapter | None:
    """``TorchModuleAdapter(obj)`` for a ``torch.nn.Module`` that no registered adapter took."""
    torch = sys.modules.get("torch")
    if torch is None or not isinstance(obj, torch.nn.Module):
        return None
    from retrofit.adapters.torch_module import TorchModuleAdapter

    return TorchModuleAdapter(obj)


def wrap(obj: Any) -> PolicyAdapter:
    """Return a ``PolicyAdapter`` for ``obj`` (an adapter is returned unchanged).

    Registered adapters are tried in order; a ``torch.nn.Module`` that none of them takes gets
    the generic ``TorchModuleAdapter`` last.
    """
    if isinstance(obj, PolicyAdapter):
        return obj
    for _, matches, factory in _REGISTRY:
        if matches(obj):
            return factory(obj)
    fallback = _torch_module_fallback(obj)
    if fallback is not None:
        return fallback
    supported = "; ".join([desc for desc, _, _ in _REGISTRY] + [_TORCH_MODULE])
    raise PolicyError(
        f"Cannot retrofit an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
        f"Supported policies: {supported}. Wrap other differentiable policies by implementing "
        "retrofit.adapters.base.PolicyAdapter (log_prob, log_prob_and_sample, act, ...)."
    )


__all__ = ["PolicyAdapter", "register_adapter", "wrap"]


def _is_deterministic_mlp(obj: Any) -> bool:
    from retrofit.policies.deterministic import DeterministicPolicy

    return isinstance(obj, DeterministicPolicy)


def _deterministic_mlp(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.deterministic_mlp import DeterministicAdapter

    return DeterministicAdapter(obj)


register_adapter(
    "retrofit.policies.deterministic.DeterministicPolicy", _is_deterministic_mlp,
    _deterministic_mlp,
)


def _is_decision_transformer(obj: Any) -> bool:
    from retrofit.policies.decision_transformer import DecisionTransformer

    return isinstance(obj, DecisionTransformer)


def _decision_transformer(obj: Any) -> PolicyAdapter:
    from retrofit.adapters.decision_transformer import CDTAdapter

    return CDTAdapter(obj)  # type: ignore[return-value]


register_adapter(
    "retrofit.policies.decision_transformer.DecisionTransformer (CDT; a policy with memory)",
    _is_decision_transformer, _decision_transformer,
)
