"""The training loop the baselines share: tqdm, per-step metrics, callbacks off the clock.

Same contract as ``PrefineTrainer.fit``: ``callback(step, trainer)`` runs every ``callback_every``
steps and its time is excluded from ``trainer.train_wall_clock_s``; returning True stops.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from retrofit.device import synchronize
from retrofit.metrics_log import MetricsLogger, NullLogger

Update = Callable[[], dict[str, torch.Tensor]]


def run_steps(
    trainer: Any,
    update: Update,
    steps: int,
    *,
    desc: str,
    logger: MetricsLogger | None = None,
    progress: bool = True,
    callback: Callable[[int, Any], bool | None] | None = None,
    callback_every: int = 0,
) -> bool:
    """Call ``update()`` ``steps`` times; advance ``trainer.steps_done`` and its wall-clock.

    Returns True when a callback asked to stop. The logger is not closed here.
    """
    logger = logger or NullLogger()
    device = trainer.device
    bar = tqdm(total=steps, disable=not progress, desc=desc, unit="step")
    start = time.perf_counter()
    stopped = False
    try:
        for _ in range(steps):
            metrics = update()
            trainer.steps_done += 1
            logger.log(trainer.steps_done, metrics)
            bar.update(1)
            if callback is not None and callback_every and trainer.steps_done % callback_every == 0:
                synchronize(device)
                trainer.train_wall_clock_s += time.perf_counter() - start
                stopped = bool(callback(trainer.steps_done, trainer))
                start = time.perf_counter()
                if stopped:
                    break
        synchronize(device)
    finally:
        trainer.train_wall_clock_s += time.perf_counter() - start
        bar.close()
    return stopped


def train_policy(
    trainer: Any,
    update: Update,
    steps: int,
    *,
    desc: str,
    logger: MetricsLogger,
    progress: bool = True,
    callback: Callable[[int, Any], bool | None] | None = None,
    callback_every: int = 0,
) -> Any:
    """:func:`run_steps` with ``trainer.policy`` in training mode; close ``logger`` at the end.

    Returns ``trainer.policy``, left in evaluation mode (what every trainer's ``fit`` returns).
    """
    trainer.policy.train(True)
    try:
        run_steps(trainer, update, steps, desc=desc, logger=logger, progress=progress,
                  callback=callback, callback_every=callback_every)
    finally:
        logger.close()
    trainer.policy.train(False)
    return trainer.policy
