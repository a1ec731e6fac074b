"""Policy adapters: wrap the policies users already have behind one small contract.

``wrap(obj)`` picks the adapter for ``obj`` or raises a ``PolicyError`` naming what is supported.
Adapters for third-party libraries are registered here but import those libraries lazily.
"""

from __future__ import annotations

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


def wrap(obj: Any) -> PolicyAdapter:
    """Return a ``PolicyAdapter`` for ``obj`` (an adapter is returned unchanged)."""
    if isinstance(obj, PolicyAdapter):
        return obj
    for _, matches, factory in _REGISTRY:
        if matches(obj):
            return factory(obj)
    supported = "; ".join(desc for desc, _, _ in _REGISTRY)
    raise PolicyError(
        f"Cannot retrofit an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
        f"Supported policies: {supported}. Wrap other differentiable policies by implementing "
        "retrofit.adapters.base.PolicyAdapter (log_prob, log_prob_and_sample, act, ...)."
    )


__all__ = ["PolicyAdapter", "register_adapter", "wrap"]
