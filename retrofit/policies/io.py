"""Save and load retrofit's own policies without pickling objects.

A file holds a plain dict: format tag, library version, class name, JSON config and the state
dict. Loading uses ``torch.load(weights_only=True)``. Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from retrofit import __version__
from retrofit.errors import PolicyError
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy
from retrofit.policies.deterministic import DeterministicPolicy
from retrofit.policies.gaussian import TanhGaussianPolicy
from retrofit.policies.vae import VAEPolicy

_FORMAT = "retrofit-policy-v1"
_CLASSES: dict[str, type[torch.nn.Module]] = {
    cls.__name__: cls for cls in (
        TanhGaussianPolicy, VAEPolicy, DeterministicPolicy, ClippedGaussianPolicy
    )
}
RetrofitPolicy = TanhGaussianPolicy | VAEPolicy | DeterministicPolicy | ClippedGaussianPolicy


def save_policy(policy: RetrofitPolicy, path: str | Path) -> Path:
    """Atomically write ``policy`` (config + state dict) to ``path``; return the path."""
    if type(policy).__name__ not in _CLASSES:
        raise PolicyError(
            f"save_policy writes retrofit's own policies ({', '.join(_CLASSES)}); for a "
            f"{type(policy).__name__} use its library's own save (e.g. SB3 model.save)."
        )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": _FORMAT,
        "retrofit_version": __version__,
        "class": type(policy).__name__,
        "config": policy.config(),
        "state_dict": {k: v.detach().cpu() for k, v in policy.state_dict().items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_policy(path: str | Path, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a policy written by ``save_policy`` (``weights_only=True``: no code is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise PolicyError(f"path={str(path)!r}: no such policy file.")
    try:
        payload = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise PolicyError(
            f"{path} is not a retrofit policy file ({type(exc).__name__}). retrofit's own policies "
            "are written by save_policy; load SB3/d3rlpy models with their library and pass them "
            "to Retrofitter in Python."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise PolicyError(f"{path} is not a retrofit policy file (format tag {_FORMAT!r} missing).")
    cls = _CLASSES.get(payload["class"])
    if cls is None:
        raise PolicyError(f"{path}: unknown policy class {payload['class']!r}.")
    policy = cls(**payload["config"])
    policy.load_state_dict(payload["state_dict"])
    return policy.to(device).eval()
