"""retrofit: make pretrained RL policies safe after the fact, offline, from preferences.

The public API is small and imported lazily (``import retrofit`` does not import torch or any
simulator): ``Retrofitter``, ``TrajectoryDataset``, ``evaluate``, ``wrap`` and the method configs.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Retrofitter": "retrofit.retrofitter",
    "TrajectoryDataset": "retrofit.data.dataset",
    "evaluate": "retrofit.evaluation",
    "EvaluationResult": "retrofit.evaluation",
    "wrap": "retrofit.adapters",
    "PrefineConfig": "retrofit.methods.prefine",
    "DataError": "retrofit.errors",
    "PolicyError": "retrofit.errors",
    "ConfigError": "retrofit.errors",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrofit' has no attribute {name!r}")
