"""Checkpoints of a running fit: everything that decides the rest of the run, in one file.

What is saved is found on the trainer itself (SB3's ``get_parameters`` habit, without a list per
method): every ``nn.Module``, optimiser, tensor, ``torch.Generator`` and numpy ``Generator``
attribute, every attribute with ``state_dict``/``load_state_dict`` (the samplers), the trainable
parameters of every policy adapter, the global random states, the counters and the position in
the trainer's stages. Saved with :func:`retrofit.atomic.atomic_torch_save` as plain tensors and
numbers, loaded with ``weights_only=True``: a resumed run continues bit for bit. Attributes
named in the owner's ``derived_state`` (data tensors rebuilt from the data by ``stages``) are
left out, so a checkpoint holds state, not a second copy of the dataset.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters.base import PolicyAdapter
from retrofit.atomic import atomic_torch_save
from retrofit.errors import TrainingError

FORMAT = "retrofit-checkpoint-v1"
CHECKPOINT_NAME = "checkpoint.pt"


def _numpy_global_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"name": name, "keys": torch.as_tensor(keys.astype(np.int64)), "pos": int(pos),
            "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_numpy_global_state(state: dict[str, Any]) -> None:
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["name"], keys, state["pos"], state["has_gauss"], state["cached"]))


def _is_adapter(value: Any) -> bool:
    return isinstance(value, PolicyAdapter) and not isinstance(value, nn.Module)


def capture(owner: Any) -> dict[str, Any]:
    """The state of every stateful attribute of ``owner`` (see the module docstring)."""
    out: dict[str, Any] = {}
    skip = set(getattr(owner, "derived_state", ()))
    for name, value in vars(owner).items():
        if name in skip:
            continue
        if isinstance(value, nn.Module | torch.optim.Optimizer):
            out[name] = value.state_dict()
        elif isinstance(value, torch.Tensor):
            out[name] = value.detach().clone()
        elif isinstance(value, torch.Generator):
            out[name] = value.get_state()
        elif isinstance(value, np.random.Generator):
            out[name] = value.bit_generator.state
        elif _is_adapter(value):
            out[name] = [p.detach().clone() for p in value.parameters()]
        elif hasattr(value, "state_dict") and hasattr(value, "load_state_dict"):
            out[name] = value.state_dict()
    return out


def restore(owner: Any, state: dict[str, Any]) -> None:
    """Load ``capture``'s dict back into ``owner``'s attributes of the same names."""
    for name, saved in state.items():
        value = getattr(owner, name, None)
        if isinstance(value, nn.Module | torch.optim.Optimizer):
            value.load_state_dict(saved)
        elif isinstance(value, torch.Tensor) and value.requires_grad:
            with torch.no_grad():  # an optimiser holds this very tensor: copy in place
                value.copy_(saved)
        elif isinstance(value, torch.Tensor):
            setattr(owner, name, saved.to(value.device))
        elif isinstance(value, torch.Generator):
            value.set_state(saved)
        elif isinstance(value, np.random.Generator):
            value.bit_generator.state = saved
        elif _is_adapter(value):
            with torch.no_grad():
                for p, s in zip(value.parameters(), saved, strict=True):
                    p.copy_(s)
        elif value is not None and hasattr(value, "load_state_dict"):
            value.load_state_dict(saved)
        else:
            raise TrainingError(
                f"checkpoint holds {name!r}, which this trainer does not have: it was written by "
                "another method or version; resume with the same method and settings."
            )


def save_checkpoint(path: Path, trainer: Any, position: dict[str, Any]) -> Path:
    """Write the trainer's whole state plus ``position`` (stage, step) to ``path`` atomically."""
    payload = {
        "format": FORMAT,
        "position": position,
        "objects": capture(trainer),
        "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_global_state(),
                "python": random.getstate()},
    }
    if torch.cuda.is_available():
        payload["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    return atomic_torch_save(path, payload)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (tensors and numbers only)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: name it, do not guess
        raise TrainingError(
            f"cannot read checkpoint {path}: {exc}. Delete it to start over."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise TrainingError(f"{path} is not a retrofit checkpoint ({FORMAT}).")
    return payload


def apply_checkpoint(trainer: Any, payload: dict[str, Any]) -> None:
    """Restore the trainer's objects and the global random states from a loaded checkpoint."""
    restore(trainer, payload["objects"])
    rng = payload["rng"]
    torch.set_rng_state(rng["torch"])
    _set_numpy_global_state(rng["numpy"])
    python = rng["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
