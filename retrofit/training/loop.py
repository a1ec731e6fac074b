"""The one training loop: progress bar, per-step metrics, finite guard, callbacks off the clock.

``callback(step, trainer)`` runs every ``callback_every`` steps and its time is excluded from
``trainer.train_wall_clock_s``; returning True stops. ``checkpoint(step)`` runs off the clock every
``checkpoint_every`` steps and when ``interrupted()`` turns True (then the loop stops). The
trainer's ``steps_done`` counts every update.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from retrofit.device import synchronize
from retrofit.metrics_log import MetricsLogger, NullLogger
from retrofit.progress import progress_bar
from retrofit.training.guard import FiniteGuard

Update = Callable[[], dict[str, torch.Tensor]]
Callback = Callable[[int, Any], bool | None]


def run_steps(
    trainer: Any,
    update: Update,
    steps: int,
    *,
    desc: str,
    logger: MetricsLogger | None = None,
    progress: bool = True,
    callback: Callback | None = None,
    callback_every: int = 0,
    checkpoint: Callable[[int], None] | None = None,
    checkpoint_every: int = 0,
    interrupted: Callable[[], bool] | None = None,
    guard: FiniteGuard | None = None,
) -> bool:
    """Call ``update()`` ``steps`` times; advance ``trainer.steps_done`` and its wall-clock.

    Returns True when a callback asked to stop or ``interrupted()`` turned True. The logger is
    not closed here.
    A non-finite metric raises ``TrainingError`` (see :mod:`retrofit.training.guard`).
    """
    logger = logger or NullLogger()
    device = trainer.device
    guard = guard or FiniteGuard(device)
    bar = progress_bar(steps, desc, unit="step", disable=not progress)
    start = time.perf_counter()
    stopped = False
    try:
        for _ in range(steps):
            metrics = update()
            trainer.steps_done += 1
            guard.observe(trainer.steps_done, metrics, desc)
            logger.log(trainer.steps_done, metrics)
            bar.update(1)
            step = trainer.steps_done
            due = callback is not None and callback_every > 0 and step % callback_every == 0
            halt = interrupted is not None and interrupted()
            save = checkpoint is not None and (
                halt or (checkpoint_every > 0 and step % checkpoint_every == 0))
            if due or save or halt:
                synchronize(device)
                trainer.train_wall_clock_s += time.perf_counter() - start
                guard.check(desc)
                if due:
                    stopped = bool(callback(step, trainer))  # type: ignore[misc]
                if save:
                    checkpoint(step)  # type: ignore[misc]
                stopped = stopped or halt
                start = time.perf_counter()
                if stopped:
                    break
        synchronize(device)
        guard.check(desc)
    finally:
        trainer.train_wall_clock_s += time.perf_counter() - start
        bar.close()
    return stopped
