"""Offline estimates of a policy's episode cost and reward, checkpoint selection and the
per-run safety report (docs/offline-estimate.md).

Imports are lazy: ``import retrofit.estimate`` loads neither torch nor matplotlib.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "FQEConfig": "retrofit.estimate.config",
    "CheckpointSelection": "retrofit.estimate.checkpoints",
    "SelectedCheckpoint": "retrofit.estimate.checkpoints",
    "Interval": "retrofit.estimate.offline",
    "OfflineEstimate": "retrofit.estimate.offline",
    "estimate_policy": "retrofit.estimate.offline",
    "estimate_policies": "retrofit.estimate.offline",
    "nonpreferred_log_likelihood": "retrofit.estimate.likelihood",
    "Selection": "retrofit.estimate.selection",
    "select_checkpoint": "retrofit.estimate.selection",
    "within_limit": "retrofit.estimate.selection",
    "SafetyReport": "retrofit.estimate.report",
    "safety_report": "retrofit.estimate.report",
    "write_safety_report": "retrofit.estimate.report",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'retrofit.estimate' has no attribute {name!r}")
