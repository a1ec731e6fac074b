"""Policy adapters: wrap the policies users already have behind one small contract.

``wrap(obj)`` picks the adapter for ``obj`` or raises a ``PolicyError`` naming what is supported.
Each adapter module registers itself at its end with ``register_adapter`` (as methods do with
``register_method``); this package only imports the shipped modules, in the order ``wrap`` tries
them. Adapters for third-party libraries import those libraries lazily.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

from retrofit.adapters.base import PolicyAdapter
from retrofit.adapters.registry import register_adapter, registered_adapters
from retrofit.errors import PolicyError

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
    adapters = registered_adapters()
    for _, matches, factory in adapters:
        if matches(obj):
            return factory(obj)
    fallback = _torch_module_fallback(obj)
    if fallback is not None:
        return fallback
    supported = "; ".join([desc for desc, _, _ in adapters] + [_TORCH_MODULE])
    raise PolicyError(
        f"Cannot retrofit an object of type {type(obj).__module__}.{type(obj).__qualname__}. "
        f"Supported policies: {supported}. Wrap other differentiable policies by implementing "
        "retrofit.adapters.base.PolicyAdapter (log_prob, log_prob_and_sample, act, ...)."
    )


__all__ = ["PolicyAdapter", "register_adapter", "wrap"]

# The shipped adapters register themselves on import; this order is the order wrap tries them.
for _module in ("gaussian_mlp", "clipped_gaussian", "vae", "sb3", "d3rlpy", "deterministic_mlp",
                "decision_transformer"):
    importlib.import_module(f"{__name__}.{_module}")
