"""Per-step training metrics to Weights & Biases (``--log wandb``, ``log="wandb"``), beside the
CSV and TensorBoard loggers of :mod:`retrofit.metrics_log`. wandb is optional: the extra
``retrofit-rl[wandb]`` installs it.

wandb's own environment variables say where a run goes: ``WANDB_MODE=offline`` keeps it in local
files (``wandb sync DIR`` uploads them later), ``WANDB_PROJECT`` (default here: ``retrofit``),
``WANDB_ENTITY``, ``WANDB_DIR`` (default here: the fit's log folder, so the run's files are in
``LOG_DIR/wandb/``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.errors import ConfigError
from retrofit.metrics_log import BufferedLogger

RUN_FILE = "wandb_run.json"
"""File in the log folder naming the fit's W&B run (its id) and the last step sent to it."""

DEFAULT_PROJECT = "retrofit"
"""W&B project of a run when ``WANDB_PROJECT`` is not set."""


def import_wandb() -> ModuleType:
    """The ``wandb`` module, or a ``ConfigError`` naming the extra that installs it."""
    try:
        import wandb
    except ImportError:
        raise ConfigError(
            "log='wandb' (--log wandb) needs the wandb package, which is not installed: "
            "pip install 'retrofit-rl[wandb]' (the wandb extra), or use --log csv / tensorboard."
        ) from None
    return wandb


class WandbLogger(BufferedLogger):
    """Each metric as a W&B metric at its training step, and the run's settings
    (``write_params``: method, seed, steps and every config field) as the W&B run config.

    One W&B run per fit, named after ``log_dir``; its id is kept in ``log_dir/wandb_run.json``.
    ``resume_step``: continue that W&B run (wandb's ``resume="allow"``). W&B cannot delete what a
    run logged, so the steps the interrupted run had already sent (up to the last step recorded
    in ``wandb_run.json``, at or after its checkpoint) are not sent again: each step is in the run
    once. Without it, a folder that names a W&B run already is refused unless
    ``overwrite=True``, which starts a new W&B run (W&B keeps the old one).
    """

    def __init__(self, log_dir: str | Path, flush_every: int = 200, *,
                 resume_step: int | None = None, overwrite: bool = False) -> None:
        super().__init__(flush_every)
        wandb = import_wandb()
        log_dir = Path(log_dir)
        self._record_path = log_dir / RUN_FILE
        saved = self._read_record()
        if resume_step is None and saved is not None and not overwrite:
            raise ConfigError(
                f"{log_dir} already holds the W&B run {saved['id']!r} of an earlier run "
                f"({RUN_FILE}): resume it, choose another folder, or pass overwrite=True "
                "(--overwrite) to start a new W&B run."
            )
        resuming = resume_step is not None and saved is not None
        log_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._run = wandb.init(
                project=None if os.environ.get("WANDB_PROJECT") else DEFAULT_PROJECT,
                dir=os.environ.get("WANDB_DIR") or str(log_dir), name=log_dir.name,
                id=saved["id"] if resuming else None, resume="allow" if resuming else None,
                reinit="create_new", settings=wandb.Settings(console="off"),
            )
        except (wandb.errors.Error, ValueError) as exc:  # not logged in, a bad WANDB_* value
            message = " ".join(str(exc).split())
            raise ConfigError(
                f"--log wandb: wandb could not start a run ({message}). Log in with `wandb "
                "login`, or set WANDB_MODE=offline to keep the run in local files."
            ) from exc
        self._sent_to = int(saved["last_step"]) if resuming else 0
        self._record = {"id": self._run.id, "project": self._run.project,
                        "last_step": self._sent_to}
        atomic_write_text(self._record_path, json.dumps(self._record, indent=2))

    def _read_record(self) -> dict[str, Any] | None:
        """The ``wandb_run.json`` of an earlier run in the folder (None: there is none)."""
        try:
            record = json.loads(self._record_path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise ConfigError(f"{self._record_path} is not valid JSON ({exc}): remove it to "
                              "start a new W&B run.") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str):
            raise ConfigError(f"{self._record_path} names no W&B run id: remove it to start a "
                              "new W&B run.")
        record.setdefault("last_step", 0)
        return record

    def write_params(self, params: dict[str, object]) -> None:
        """Write the run's settings as the W&B run config."""
        self._run.config.update(params, allow_val_change=True)

    def _write(self, rows: list[tuple[int, dict[str, float]]]) -> None:
        for step, metrics in rows:
            if step > self._sent_to:
                self._run.log(metrics, step=step)
        last = rows[-1][0]
        if last > self._record["last_step"]:
            self._record["last_step"] = last
            atomic_write_text(self._record_path, json.dumps(self._record, indent=2))

    def close(self) -> None:
        """Send what is buffered and finish the W&B run. wandb's service may still be writing
        the run's files when this returns; they are complete once it ends (at process exit, or
        ``wandb.teardown()``)."""
        self.flush()
        self._run.finish()
