"""``Retrofitter``: the one entry point. Wrap a policy, fit a method, get the same kind back."""

from __future__ import annotations

import json
from contextlib import AbstractContextManager, nullcontext
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch

from retrofit.adapters import wrap
from retrofit.adapters.base import PolicyAdapter
from retrofit.atomic import atomic_write_text
from retrofit.device import check_seed
from retrofit.errors import ConfigError, DataError
from retrofit.log_formats import check_log_format, open_logger
from retrofit.methods.registry import get_method
from retrofit.metrics_log import MetricsLogger
from retrofit.training.checkpoint import CHECKPOINT_NAME
from retrofit.training.trainer import BaseTrainer

if TYPE_CHECKING:
    from retrofit.estimate.checkpoints import CheckpointSelection, SelectedCheckpoint

LogFormat = Literal["csv", "tensorboard", "wandb"]


def _domain_of(data: Any) -> str | None:
    task = getattr(data, "task", None)
    if not task:
        return None
    from retrofit.tasks import task_info

    return task_info(task).domain


class Retrofitter:
    """Make a pretrained policy safe from offline preferences.

    ``Retrofitter(policy).fit(preferred, nonpreferred)`` works with defaults alone: the method is
    PREFINE with the paper's hyper-parameters for the data's domain. Keyword arguments override
    fields of the method's config (``beta=0.2, sft_weight=1.0, steps=20_000``, ...); they are
    type- and range-checked here, before any training.

    ``log_dir`` gets ``config.json``, the per-step metrics (``log="csv"``: ``metrics.csv``;
    ``"tensorboard"``: an event file; ``"wandb"``: a Weights & Biases run, extra
    ``retrofit-rl[wandb]``, see :mod:`retrofit.wandb_log`) and a checkpoint every
    ``checkpoint_every`` steps and on SIGINT/SIGTERM; ``fit(..., resume=True)`` continues from
    it. A folder that holds an earlier run is refused unless ``overwrite=True``. A resume whose
    method, settings, seed, data or policy differ from the checkpoint's is refused; more (or
    fewer) ``steps`` is allowed and added to ``config.json``'s ``resumes`` list, whose original
    settings are kept.
    """

    def __init__(
        self,
        policy: Any,
        method: str = "prefine",
        *,
        device: str | torch.device = "auto",
        seed: int = 0,
        progress: bool = True,
        log_dir: str | Path | None = None,
        log: LogFormat = "csv",
        checkpoint_every: int = 10_000,
        overwrite: bool = False,
        **hyperparameters: Any,
    ) -> None:
        check_seed(seed)
        self.adapter: PolicyAdapter = wrap(policy)
        self.method = method
        spec = get_method(method)
        self._trainer_cls, self._config_cls = spec.load()
        valid = {f.name for f in fields(self._config_cls)}
        unknown = sorted(set(hyperparameters) - valid)
        if unknown:
            raise ConfigError(
                f"Unknown hyper-parameter(s) {unknown} for method {method!r}; "
                f"valid: {sorted(valid)}."
            )
        check_log_format(log)
        if isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int) \
                or checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every={checkpoint_every!r} must be an integer >= 0.")
        self.config = self._config_cls(**hyperparameters)
        self.device = device
        self.seed = seed
        self.progress = progress
        self.log_dir = Path(log_dir) if log_dir is not None else None
        self.log = log
        self.checkpoint_every = checkpoint_every
        self.overwrite = overwrite
        self.trainer: BaseTrainer | None = None
        self.safety_report_: SelectedCheckpoint | None = None

    def fit(self, *data: Any, steps: int | None = None, resume: bool = False,
            select_checkpoint: CheckpointSelection | None = None, **fit_kwargs: Any) -> Any:
        """Fine-tune and return the policy in the user's own format (``adapter.export()``).

        ``data`` is what the method learns from: ``(preferred, nonpreferred)`` for PREFINE-style
        methods, one feedback object for PreSa-style methods, one dataset for offline safe-RL
        baselines. The domain preset (BulletGym / SafetyGym) is taken from the data's task.
        ``resume=True`` continues the interrupted run whose checkpoint is in ``log_dir``.

        ``select_checkpoint`` (:class:`retrofit.estimate.CheckpointSelection`, experimental:
        docs/offline-estimate.md says how well the estimate ranks policies) keeps a copy of the
        policy every ``every`` steps and returns the one with the best offline-estimated reward
        among those whose estimated cost stays within κ with the stated confidence, instead of
        the last one; ``safety_report_`` holds the estimates and the choice, and with a
        ``log_dir`` ``safety_report.{json,md,png}`` and the kept copies (``kept/``) are written
        there.
        """
        if not data:
            raise DataError(
                f"method {self.method!r} needs training data: e.g. fit(preferred, nonpreferred) "
                "with the two sets from dataset.split_preferences(...)."
            )
        config = self.config.resolved(_domain_of(data[0]))
        if steps is not None:
            config = replace(config, steps=steps)
        self.trainer = self._trainer_cls(self.adapter, config, device=self.device, seed=self.seed)
        self.trainer.check_data(*data)  # before anything is written
        created = self.log_dir is not None and not self.log_dir.exists()
        try:
            with self._log_dir_lock():
                trained = self._fit_locked(data, config.steps, resume, fit_kwargs,
                                           select_checkpoint)
        except BaseException:
            if created and self.log_dir is not None and self.log_dir.is_dir() \
                    and not any(self.log_dir.iterdir()):
                self.log_dir.rmdir()  # made only for this fit, which left nothing in it
            raise
        self.policy_ = trained
        return trained.export()

    def _log_dir_lock(self) -> AbstractContextManager[Any]:
        """``log_dir``'s folder lock (``retrofit.outputs.folder_lock``): two fits writing one
        folder at once would interleave metrics and checkpoints, so the second is refused. The
        lock is re-entrant within a process (``retrofit fit`` takes it before calling this)."""
        from retrofit.outputs import folder_lock

        if self.log_dir is None:
            return nullcontext()
        return folder_lock(self.log_dir, "Retrofitter.fit", reentrant=True)

    def _fit_locked(self, data: tuple[Any, ...], steps: int, resume: bool,
                    fit_kwargs: dict[str, Any],
                    selection: CheckpointSelection | None = None) -> Any:
        assert self.trainer is not None
        before = self._files_in_log_dir()
        logger, checkpoint, resumed = self._outputs(resume, data, steps)
        keeper = None
        if selection is not None:
            from retrofit.estimate.checkpoints import KEPT_FOLDER, CheckpointKeeper, chain_callbacks

            keeper = CheckpointKeeper(
                self.trainer.policy, selection.every,
                None if self.log_dir is None else self.log_dir / KEPT_FOLDER,
                resume_step=None if resumed is None else int(resumed["steps_done"]),
                overwrite=self.overwrite)
            fit_kwargs = chain_callbacks(fit_kwargs, keeper)
        try:
            if self.log_dir is not None:
                self._write_config(resumed)
            trained = self.trainer.fit(
                *data, logger=logger, progress=self.progress, resume=resume, **checkpoint,
                **fit_kwargs,
            )
        except BaseException:
            if not resume and self.trainer.steps_done == 0:  # failed before its first step
                self._remove_new_files(before)
            raise
        if keeper is None or selection is None:
            return trained
        from retrofit.estimate.checkpoints import select_kept

        self.safety_report_ = select_kept(keeper, trained, self.trainer.steps_done, selection,
                                          self.log_dir, self.device)
        return self.safety_report_.policy

    def _files_in_log_dir(self) -> set[Path] | None:
        """The files in ``log_dir`` now (None: the folder does not exist yet)."""
        if self.log_dir is None or not self.log_dir.is_dir():
            return None
        return set(self.log_dir.iterdir())

    def _remove_new_files(self, before: set[Path] | None) -> None:
        """Remove what this fit added to ``log_dir`` (and the folder, if it made it): a fit that
        fails before its first step leaves nothing behind."""
        if self.log_dir is None or not self.log_dir.is_dir():
            return
        for path in set(self.log_dir.iterdir()) - (before or set()):
            if path.is_file():
                path.unlink()
        if before is None and not any(self.log_dir.iterdir()):
            self.log_dir.rmdir()

    def _write_config(self, resumed: dict[str, Any] | None) -> None:
        """``config.json``: the settings of a new run; on a resume, the original settings with
        this resume appended to ``resumes`` (step it continues from, steps it runs to)."""
        assert self.log_dir is not None and self.trainer is not None
        path = self.log_dir / "config.json"
        record = {"method": self.method, "seed": self.seed, **self.trainer.hyperparameters()}
        if resumed is not None:
            try:
                saved = json.loads(path.read_text())
            except (OSError, ValueError):
                saved = None
            entry = {"from_step": int(resumed["steps_done"]), "steps": record.get("steps")}
            if isinstance(saved, dict):
                record = {**saved, "resumes": [*saved.get("resumes", []), entry]}
            else:
                record["resumes"] = [entry]
        atomic_write_text(path, json.dumps(record, indent=2))

    def _outputs(self, resume: bool, data: tuple[Any, ...], steps: int) -> tuple[
            MetricsLogger | None, dict[str, Any], dict[str, Any] | None]:
        """The metrics logger, checkpoint options for ``log_dir`` and, on a resume, the
        checkpoint's position; a resume of a changed run is refused here, before any write."""
        if self.log_dir is None:
            if resume:
                raise ConfigError("resume=True needs the log_dir of the interrupted run.")
            return None, {}, None
        checkpoint = self.log_dir / CHECKPOINT_NAME
        if resume and not checkpoint.exists():
            raise ConfigError(f"resume=True: no checkpoint in {self.log_dir} to resume from.")
        if not resume and checkpoint.exists() and not self.overwrite:
            raise ConfigError(
                f"{self.log_dir} holds an earlier run (its checkpoint): fit(..., resume=True) to "
                "continue it, another log_dir, or overwrite=True to start over."
            )
        position = None
        if resume:
            assert self.trainer is not None
            record = self.trainer.run_record(*data, steps=steps)
            position = self.trainer.load_resumable(checkpoint, record)["position"]
        self.log_dir.mkdir(parents=True, exist_ok=True)
        options = {"checkpoint_dir": self.log_dir, "checkpoint_every": self.checkpoint_every}
        resume_step = None if position is None else int(position["steps_done"])
        logger = open_logger(self.log, self.log_dir, resume_step=resume_step,
                             overwrite=self.overwrite)
        return logger, options, position

    @property
    def train_wall_clock_s(self) -> float:
        """Training wall-clock of the last ``fit`` (evaluation and callbacks excluded)."""
        return 0.0 if self.trainer is None else float(self.trainer.train_wall_clock_s)
