"""The metrics formats a fit can log in (``log=`` / ``--log``), each with the logger it makes:
``csv`` (the default), ``tensorboard`` (:mod:`retrofit.metrics_log`) and ``wandb``
(:mod:`retrofit.wandb_log`, optional extra ``retrofit-rl[wandb]``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrofit.errors import ConfigError
from retrofit.metrics_log import CSVLogger, MetricsLogger, TensorBoardLogger


def _csv_logger(log_dir: Path, **options: Any) -> MetricsLogger:
    return CSVLogger(log_dir / "metrics.csv", **options)


def _wandb_logger(log_dir: Path, **options: Any) -> MetricsLogger:
    from retrofit.wandb_log import WandbLogger

    return WandbLogger(log_dir, **options)


def _wandb_installed() -> None:
    from retrofit.wandb_log import import_wandb

    import_wandb()


LOGGERS: dict[str, Callable[..., MetricsLogger]] = {
    "csv": _csv_logger, "tensorboard": TensorBoardLogger, "wandb": _wandb_logger,
}
"""Each format's logger, made from a log folder and the ``resume_step`` / ``overwrite`` options."""

_REQUIREMENTS: dict[str, Callable[[], None]] = {"wandb": _wandb_installed}
"""Per format, a check that its optional package is installed (raises ``ConfigError``)."""


def check_log_format(log: object) -> str:
    """Return ``log`` when it names a format whose package is installed, else raise
    ``ConfigError`` naming the formats, or the extra to install."""
    if not isinstance(log, str) or log not in LOGGERS:
        raise ConfigError(f"log={log!r}: use {', '.join(map(repr, LOGGERS))}.")
    if log in _REQUIREMENTS:
        _REQUIREMENTS[log]()
    return log


def open_logger(log: str, log_dir: Path, *, resume_step: int | None = None,
                overwrite: bool = False) -> MetricsLogger:
    """The logger of format ``log`` writing into ``log_dir``; ``resume_step`` continues an
    interrupted run's metrics, ``overwrite`` replaces an earlier run's."""
    return LOGGERS[check_log_format(log)](log_dir, resume_step=resume_step, overwrite=overwrite)
