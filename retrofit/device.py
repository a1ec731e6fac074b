"""Device selection and seeding in one place (as SB3's ``get_device`` / ``set_random_seed``)."""

from __future__ import annotations

import random

import numpy as np
import torch

from retrofit.errors import ConfigError


def cpu_model() -> str:
    """This machine's CPU model as ``/proc/cpuinfo`` names it (else ``platform``'s guess).

    Recorded beside every result: CPU training is reproducible to the digit on the same CPU
    model and thread count only (other vector instruction sets give other float roundings,
    which thousands of updates amplify; docs/results/retrofit-vs-scratch/summary.md)."""
    import platform

    try:
        with open("/proc/cpuinfo") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


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


MAX_SEED = 2**64 - 1
"""The largest seed torch accepts (``torch.manual_seed`` takes ``[0, 2**64 - 1]`` here)."""


def check_seed(seed: object, name: str = "seed") -> int:
    """Return ``seed`` when it is an integer in ``[0, MAX_SEED]``, else raise ``ConfigError``
    naming ``name`` (``seed``, ``--seed``) and the range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(
            f"{name}={seed!r} must be an integer from 0 to 2**64 - 1 (the range torch seeds "
            f"take), e.g. {name}=0."
        )
    return seed


DEFAULT_THREADS = 1
"""torch CPU threads of a CLI fit, demo or comparison cell. Chosen by measurement
(benchmarks/thread_default.py, table in docs/benchmarks.md): at one thread a fit beside another CPU
job keeps its speed; at torch's default (every core) it runs several times slower."""


def check_threads(threads: object, name: str = "threads") -> int:
    """Return ``threads`` when it is an integer >= 1, else raise ``ConfigError`` naming ``name``."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"{name}={threads!r} must be an integer >= 1 (torch CPU threads), "
                          f"e.g. {name}=1.")
    return threads


def set_threads(threads: object, name: str = "threads") -> int:
    """``torch.set_num_threads(threads)`` after :func:`check_threads`; return it."""
    torch.set_num_threads(check_threads(threads, name))
    return int(threads)  # type: ignore[call-overload]


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
