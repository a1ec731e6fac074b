"""Device selection and seeding in one place (as SB3's ``get_device`` / ``set_random_seed``)."""

from __future__ import annotations

import random

import numpy as np
import torch


def get_device(device: str | torch.device = "auto") -> torch.device:
    """Return ``torch.device``; ``"auto"`` means CUDA when available, else CPU."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


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
