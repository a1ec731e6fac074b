"""Checkpoints of a running fit: everything that decides the rest of the run, in one file.

What is saved is found on the trainer itself (SB3's ``get_parameters`` habit, without a list per
method): every ``nn.Module``, optimiser, tensor, ``torch.Generator`` and numpy ``Generator``
attribute, every attribute with ``state_dict``/``load_state_dict`` (the samplers), the trainable
parameters of every policy adapter, the global random states, the counters and the position in
the trainer's stages. Saved with :func:`retrofit.atomic.atomic_torch_save` as plain tensors and
numbers, loaded with ``weights_only=True``: a resumed run continues bit for bit. Attributes
named in the owner's ``derived_state`` (data tensors rebuilt from the data by ``stages``) are
left out, so a checkpoint holds state, not a second copy of the dataset.

The payload is serialised once, and the file holds those bytes with their sha256 digest (plus an
unverified copy of the position for a quick look): :func:`load_checkpoint` refuses bytes that
differ from the digest with :class:`CheckpointError`, naming the previous checkpoint
(``checkpoint.prev.pt``, kept at every save) when that one is intact. Files of the older
``retrofit-checkpoint-v1`` format, which carry no digest, are still read.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from retrofit.adapters.base import PolicyAdapter
from retrofit.atomic import atomic_torch_save
from retrofit.errors import CheckpointError, TrainingError

FORMAT = "retrofit-checkpoint-v2"
OLD_FORMATS = ("retrofit-checkpoint-v1",)
CHECKPOINT_NAME = "checkpoint.pt"
PREVIOUS_NAME = "checkpoint.prev.pt"


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


def save_checkpoint(path: Path, trainer: Any, position: dict[str, Any],
                    run: dict[str, Any] | None = None) -> Path:
    """Write the trainer's whole state plus ``position`` (stage, step) to ``path`` atomically.

    ``run`` (JSON-able: method, seed, settings, data and policy fingerprints) is stored so that a
    resume can refuse a changed run. The file at ``path`` before this save is kept as
    ``checkpoint.prev.pt`` beside it.
    """
    payload = {
        "format": FORMAT,
        "position": position,
        "objects": capture(trainer),
        "rng": {"torch": torch.get_rng_state(), "numpy": _numpy_global_state(),
                "python": random.getstate()},
        "run": json.dumps(run or {}),
    }
    if torch.cuda.is_available():
        payload["rng"]["cuda"] = torch.cuda.get_rng_state_all()
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    body = buffer.getvalue()
    envelope = {"format": FORMAT, "position": position,
                "sha256": hashlib.sha256(body).hexdigest(),
                "payload": torch.frombuffer(bytearray(body), dtype=torch.uint8)}
    _keep_previous(Path(path))
    return atomic_torch_save(path, envelope)


def _keep_previous(path: Path) -> None:
    """Hard-link the current checkpoint to ``checkpoint.prev.pt`` (atomic; ``path`` stays)."""
    if not path.is_file():
        return
    previous = path.with_name(PREVIOUS_NAME)
    link = previous.with_name(f".{PREVIOUS_NAME}.{os.getpid()}.tmp")
    link.unlink(missing_ok=True)
    try:
        os.link(path, link)
        os.replace(link, previous)
    except OSError:  # a file system without hard links: no previous checkpoint, nothing lost
        link.unlink(missing_ok=True)


def _read(path: Path) -> dict[str, Any]:
    """The verified payload of ``path``; :class:`CheckpointError` without the advice."""
    try:
        envelope = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file: name it, do not guess
        raise CheckpointError(f"cannot read checkpoint {path} ({exc})") from exc
    if not isinstance(envelope, dict):
        raise CheckpointError(f"{path} is not a retrofit checkpoint ({FORMAT})")
    if envelope.get("format") in OLD_FORMATS:
        return envelope
    if envelope.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a retrofit checkpoint ({FORMAT})")
    body = envelope["payload"].numpy().tobytes()
    digest = hashlib.sha256(body).hexdigest()
    if digest != envelope.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its payload's sha256 is {digest[:12]}... but "
            f"{str(envelope.get('sha256'))[:12]}... was recorded when it was saved")
    try:
        payload = torch.load(io.BytesIO(body), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"cannot read checkpoint {path} ({exc})") from exc
    return payload


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read and verify a checkpoint written by :func:`save_checkpoint` (tensors and numbers only).

    A file that cannot be read or whose bytes differ from its recorded digest raises
    :class:`CheckpointError`, which names the file, the previous checkpoint if it is intact,
    and how to start fresh.
    """
    path = Path(path)
    try:
        return _read(path)
    except CheckpointError as exc:
        previous = path.with_name(PREVIOUS_NAME)
        advice = "start fresh with --overwrite (overwrite=True) or another --out / log_dir"
        if previous.is_file() and previous != path:
            try:
                step = int(_read(previous)["position"]["steps_done"])
                advice = (f"the previous checkpoint {previous} (step {step}) is intact: move it "
                          f"to {path} and resume again, or {advice}")
            except CheckpointError:
                pass
        raise CheckpointError(f"{exc}. Do not resume from it: {advice}.") from exc


def saved_run(payload: dict[str, Any]) -> dict[str, Any] | None:
    """The run record a checkpoint was saved with (``None`` for files from before records)."""
    text = payload.get("run")
    record = json.loads(text) if isinstance(text, str) else None
    return record or None


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
