"""Device selection and seeding in one place (as SB3's ``get_device`` / ``set_random_seed``)."""

from __future__ import annotations

import random

import numpy as np
import torch

from retrofit.errors import ConfigError


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return ``torch.device``; ``"auto"`` means CUDA when available, else CPU.

    A device that does not exist here (``"cuda"`` without a GPU, a typo) is a ``ConfigError``
    before anything is built.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        out = device if isinstance(device, torch.device) else torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(
            f"device={device!r} is not a device: use 'auto', 'cpu' or 'cuda'."
        ) from exc
    if out.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(
            f"device={device!r}, but no CUDA GPU is available here: use device='auto' or 'cpu'."
        )
    if out.type not in ("cpu", "cuda"):
        raise ConfigError(f"device={device!r}: retrofit trains on 'cpu' or 'cuda'.")
    return out


def set_random_seed(seed: int) -> None:
    """Seed Python, numpy and torch (all devices) with one number."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels on ``device`` (a no-op on CPU), for honest wall-clock timing."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_adam(params: list[torch.nn.Parameter], lr: float) -> torch.optim.Adam:
    """Adam with the fused kernel (one call for all parameters, CPU and CUDA alike)."""
    return torch.optim.Adam(params, lr=lr, fused=True)
