"""What a checkpointed run was trained with, so that a resume can refuse a changed run.

A run record is a JSON-able dict: the method's registered name, the seed, every resolved
setting, and sha256 fingerprints of the starting policy's parameters and of the training data.
It is saved in each checkpoint; :func:`changed_fields` lists what a resume would change. Only
``steps`` may change on a resume (a run is often continued for longer): the caller records it.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import torch

RESUMABLE_CHANGES = ("steps",)
"""Fields a resume may change; every other difference refuses the resume."""

_DATASET_ARRAYS = ("observations", "next_observations", "actions", "rewards", "costs",
                   "terminals", "timeouts", "episode_starts")
_FEEDBACK_ARRAYS = ("starts", "safety")


def _update(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    array = np.ascontiguousarray(np.asarray(value))
    digest.update(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.tobytes())


def policy_fingerprint(policy: Any) -> str:
    """sha256 (hex) of a policy adapter's parameters, in order."""
    digest = hashlib.sha256()
    for parameter in policy.parameters():
        _update(digest, parameter)
    return digest.hexdigest()


def data_fingerprint(*data: Any) -> str:
    """sha256 (hex) of the training data: DSRL arrays of datasets, pairs and labels of feedback.

    Objects of other kinds contribute their array attributes (tensors and numpy arrays).
    """
    digest = hashlib.sha256()
    for item in data:
        digest.update(type(item).__name__.encode())
        if item is None:
            continue
        dataset = getattr(item, "dataset", None)
        if dataset is not None and hasattr(item, "starts"):  # segment feedback
            digest.update(data_fingerprint(dataset).encode())
            digest.update(str(getattr(item, "segment_length", "")).encode())
            names: tuple[str, ...] = _FEEDBACK_ARRAYS
        elif all(hasattr(item, name) for name in ("observations", "actions", "episode_starts")):
            names = _DATASET_ARRAYS
        else:
            names = tuple(sorted(name for name, value in vars(item).items()
                                 if isinstance(value, np.ndarray | torch.Tensor)))
        for name in names:
            value = getattr(item, name, None)
            if value is not None:
                digest.update(name.encode())
                _update(digest, value)
    return digest.hexdigest()


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    out = {key: value for key, value in record.items() if key != "hyperparameters"}
    out.update(record.get("hyperparameters", {}))
    return out


def _shown(name: str, value: Any) -> str:
    if name in ("policy", "data") and isinstance(value, str):
        return f"sha256 {value[:12]}..."
    return json.dumps(value)


def changed_fields(saved: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``'name: old -> new'`` for each field that differs, except :data:`RESUMABLE_CHANGES`."""
    old_flat, new_flat = _flat(saved), _flat(new)
    changes = []
    for name in sorted(set(old_flat) | set(new_flat)):
        if name in RESUMABLE_CHANGES:
            continue
        old, value = old_flat.get(name), new_flat.get(name)
        if json.dumps(old, sort_keys=True) != json.dumps(value, sort_keys=True):
            changes.append(f"{name}: {_shown(name, old)} -> {_shown(name, value)}")
    return changes
