"""``BaseTrainer``: the template every method's trainer fills in (SB3's ``BaseAlgorithm.learn``
calling ``_setup_model``/``train``; d3rlpy's one ``fitter``).

The base owns what every method shares: config validation, device, seeding, counters, the
stages of a fit (e.g. SafeDICE's discriminator then its main stage; PreSa's optional BC
pretraining then alignment), the one loop with its finite-value guard, timing, callbacks,
checkpoints and resume, the training/evaluation mode switch and the final parameter check.
A method says how to set itself up (``setup``), which data it takes (``data_kind``) and which
stages a fit runs (``stages``), each stage a function that takes one step and returns metrics.
"""

from __future__ import annotations

import signal
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from retrofit.adapters.base import PolicyAdapter
from retrofit.data.validation import check_preference_sets
from retrofit.device import check_seed, get_device, make_adam, set_random_seed, synchronize
from retrofit.errors import ConfigError, TrainingError
from retrofit.metrics_log import MetricsLogger, NullLogger
from retrofit.policies.io import check_policy_matches_data
from retrofit.training.checkpoint import (
    CHECKPOINT_NAME,
    apply_checkpoint,
    load_checkpoint,
    save_checkpoint,
    saved_run,
)
from retrofit.training.config import TrainerConfig
from retrofit.training.guard import FiniteGuard, check_parameters
from retrofit.training.loop import Callback, Update, run_steps
from retrofit.training.run_record import changed_fields, data_fingerprint, policy_fingerprint

DataKind = Literal["pairs", "feedback", "transitions"]
"""What ``fit`` takes: ``pairs`` = (preferred, nonpreferred) trajectory sets; ``feedback`` = one
segment-feedback object; ``transitions`` = one or more trajectory datasets (ground-truth costs)."""


@dataclass
class Stage:
    """One phase of a fit: ``steps`` calls of ``update``.

    ``prepare`` runs once on the clock before the stage (set-up that belongs to training, e.g.
    PreSa's reference scores, SafeDICE's rewards from the trained discriminator), also when a
    resumed run starts inside or after the stage. ``callbacks``: whether user callbacks run in it
    (not while a discriminator is pretrained: the policy does not change then).
    """

    name: str
    steps: int
    update: Update
    prepare: Callable[[], None] | None = None
    callbacks: bool = True


REGISTERED_NAMES: dict[tuple[type, type], str] = {}
"""(trainer class, config class) -> registered method name; filled by
``retrofit.methods.registry.register_method`` (the registry sits above this layer, so it writes
here rather than being imported from here)."""


class BaseTrainer(ABC):
    """Trains a copy of a policy with one method; ``fit(*data)`` returns the trained adapter.

    Subclasses set ``config_class`` and ``data_kind``, implement ``setup`` (build the trainable
    policy, frozen reference, networks and optimisers; the global seed is set just before) and
    ``stages`` (check the data, build samplers, return the stages).
    """

    config_class: ClassVar[type[TrainerConfig]]
    data_kind: ClassVar[DataKind]
    method_name: ClassVar[str] = ""
    distinct_sets: ClassVar[bool] = False
    """True where ``fit(preferred, nonpreferred)`` must get two disjoint episode sets."""

    def __init__(
        self,
        policy: PolicyAdapter,
        config: TrainerConfig | None = None,
        device: str | torch.device = "auto",
        seed: int = 0,
        **setup_kwargs: Any,
    ) -> None:
        config = self.config_class() if config is None else config
        if not isinstance(config, TrainerConfig):
            raise ConfigError(f"config must be a {self.config_class.__name__}, got "
                              f"{type(config).__name__}.")
        config = config.resolved(None)
        config.validate()
        config.check_complete()
        check_seed(seed)
        self.config = config
        self.device = get_device(device)
        self.seed = seed
        self.steps_done = 0
        self.train_wall_clock_s = 0.0
        self._checked_data: tuple[Any, ...] | None = None  # what check_data last passed
        self._policy_sha256 = policy_fingerprint(policy)  # the starting weights, for resumes
        set_random_seed(seed)
        self.setup(policy, **setup_kwargs)

    # ------------------------------------------------------------------ what a method fills in
    @abstractmethod
    def setup(self, policy: PolicyAdapter, **kwargs: Any) -> None:
        """Build ``self.policy`` (and networks, optimisers) from ``policy``."""

    @abstractmethod
    def stages(self, *data: Any, steps: int) -> list[Stage]:
        """Check ``data`` (``DataError`` before any step), build samplers, return the stages;
        ``steps`` is the length of the main stage."""

    def finish(self) -> None:
        """Runs once after the last step of a fit that was not interrupted (before the final
        parameter check): e.g. PREFINE's averaged weights replace the last ones. None here."""
        return None

    # ------------------------------------------------------------------ helpers for setup
    def fine_tuning_copies(
        self, policy: PolicyAdapter, reference: PolicyAdapter | None = None,
        frozen: bool = True,
    ) -> None:
        """``self.reference`` = frozen copy of ``reference or policy`` (if ``frozen``) and
        ``self.policy`` = trainable copy of ``policy``; error if nothing is trainable."""
        if frozen:
            self.reference = (reference or policy).frozen_copy().to(self.device)
        self.policy = policy.trainable_copy().to(self.device)
        if not self.trainable_parameters():
            raise ConfigError("The policy has no trainable parameters: nothing to fine-tune.")

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        """The policy's parameters that require gradients."""
        return [p for p in self.policy.parameters() if p.requires_grad]

    def adam(self, params: list[torch.Tensor], learning_rate: float) -> torch.optim.Adam:
        """The optimiser every method uses (fused Adam)."""
        return make_adam(params, learning_rate)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the template
    def fit(
        self,
        *data: Any,
        steps: int | None = None,
        logger: MetricsLogger | None = None,
        progress: bool = True,
        callback: Callback | None = None,
        callback_every: int = 0,
        checkpoint_dir: str | Path | None = None,
        checkpoint_every: int = 0,
        resume: bool = False,
    ) -> PolicyAdapter:
        """Run the method's stages; return the trained adapter (evaluation mode).

        ``callback(step, trainer)`` runs every ``callback_every`` steps off the clock (its time
        is excluded from ``train_wall_clock_s``); returning True stops training. With
        ``checkpoint_dir``, the whole state is saved there every ``checkpoint_every`` steps and on
        SIGINT/SIGTERM (then ``TrainingError`` says how to resume); ``resume=True`` continues from
        the checkpoint found there, ending where an uninterrupted run ends; it is refused
        (``ConfigError``) when the method, a setting, the seed, the data or the starting policy
        differ from the checkpoint's (``steps`` may change).
        """
        steps = self.config.steps if steps is None else steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ConfigError(f"steps={steps!r} must be an integer >= 0.")
        if checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every={checkpoint_every} must be >= 0 (0: only on "
                              "interrupt).")
        if not self._already_checked(data):  # Retrofitter.fit checks before writing anything
            self.check_data(*data)
        self._checked_data = None
        logger = logger or NullLogger()
        write_params = getattr(logger, "write_params", None)
        if write_params is not None:  # e.g. TensorBoard's hparams (metrics_log.MetricsLogger)
            write_params({"method": self.registered_name(), "seed": self.seed, "steps": steps,
                          **self.config.recorded_settings()})
        plan = self.stages(*data, steps=steps)
        path = Path(checkpoint_dir) / CHECKPOINT_NAME if checkpoint_dir is not None else None
        record = self.run_record(*data, steps=steps) if path is not None else {}
        start_stage, start_step = 0, 0
        payload = None
        if resume:
            if path is None or not path.exists():
                raise ConfigError(f"resume=True needs a checkpoint at {path}; none was found.")
            payload = self.load_resumable(path, record)
            start_stage = int(payload["position"]["stage"])
            start_step = int(payload["position"]["stage_step"])
        guard = self.finite_guard()
        self.policy.train(True)
        try:
            with _interrupt_flag() as interrupted:
                for index, stage in enumerate(plan):
                    if index < start_stage:  # finished before the checkpoint: set-up only
                        if stage.prepare is not None:
                            stage.prepare()
                        continue
                    if stage.prepare is not None:
                        self._timed(stage.prepare)
                    done = 0
                    if payload is not None:  # the stage the checkpoint was taken in
                        apply_checkpoint(self, payload)
                        self.steps_done = int(payload["position"]["steps_done"])
                        self.train_wall_clock_s = float(payload["position"]["train_wall_clock_s"])
                        done = start_step
                        payload = None
                    stage_base = self.steps_done - done

                    def checkpoint(step: int, index: int = index, base: int = stage_base) -> None:
                        assert path is not None
                        logger_flush = getattr(logger, "flush", None)
                        if logger_flush is not None:
                            logger_flush()
                        save_checkpoint(path, self, {
                            "stage": index, "stage_step": step - base, "steps_done": step,
                            "train_wall_clock_s": self.train_wall_clock_s,
                            "method": record["method"], "stages": len(plan),
                        }, run=record)

                    stopped = run_steps(
                        self, stage.update, stage.steps - done, desc=stage.name, logger=logger,
                        progress=progress, callback=callback if stage.callbacks else None,
                        callback_every=callback_every,
                        checkpoint=checkpoint if path is not None else None,
                        checkpoint_every=checkpoint_every, interrupted=interrupted, guard=guard,
                    )
                    if interrupted():
                        where = f"; checkpoint saved in {path.parent}" if path else ""
                        raise TrainingError(
                            f"training interrupted at step {self.steps_done}{where}. Resume with "
                            "fit(..., checkpoint_dir=..., resume=True) or `retrofit fit ... "
                            "--resume`." if path else
                            f"training interrupted at step {self.steps_done} (no checkpoint_dir "
                            "was given, so nothing was saved)."
                        )
                    if stopped:
                        break
                else:
                    if path is not None and plan:  # a finished run resumes to itself
                        last = len(plan) - 1
                        save_checkpoint(path, self, {
                            "stage": last, "stage_step": plan[last].steps,
                            "steps_done": self.steps_done,
                            "train_wall_clock_s": self.train_wall_clock_s,
                            "method": record["method"], "stages": len(plan),
                        }, run=record)
            self.finish()
        finally:
            logger.close()
        self.policy.train(False)
        check_parameters(self._named_policy_parameters(), f"after step {self.steps_done}")
        return self.policy

    def finite_guard(self) -> FiniteGuard:
        """The loop's finite-value guard (batched runs name their runs in it)."""
        return FiniteGuard(self.device)

    def registered_name(self) -> str:
        """The name this trainer and config class are registered under (e.g. ``'dpo'``)."""
        if self.method_name:
            return self.method_name
        return REGISTERED_NAMES.get((type(self), type(self.config)), type(self).__name__)

    def run_record(self, *data: Any, steps: int) -> dict[str, Any]:
        """What this fit trains with, saved in checkpoints (``retrofit.training.run_record``)."""
        return {"method": self.registered_name(), "seed": self.seed, "steps": steps,
                "hyperparameters": self.config.recorded_settings(), "policy": self._policy_sha256,
                "data": data_fingerprint(*data)}

    def load_resumable(self, path: Path, record: dict[str, Any]) -> dict[str, Any]:
        """Load and verify the checkpoint at ``path``; refuse (``ConfigError``) a changed run.

        ``record`` is :meth:`run_record` of the new fit. Every difference but ``steps`` is
        refused in one line; fewer steps than the checkpoint has done is refused too.
        """
        payload = load_checkpoint(path)
        saved = saved_run(payload)
        changes = changed_fields(saved, record) if saved is not None else []
        if changes:
            raise ConfigError(
                f"cannot resume from {path}: the run changed since it was saved ("
                f"{'; '.join(changes)}). Resume with the original settings, or start fresh "
                "with --overwrite (overwrite=True) or another --out / --log-dir / log_dir."
            )
        position = payload["position"]
        stages = position.get("stages")
        done = int(position["stage_step"])
        if stages is not None and int(position["stage"]) == int(stages) - 1 \
                and done > record["steps"]:
            raise ConfigError(
                f"steps={record['steps']} is fewer than the {done} steps the checkpoint {path} "
                f"has done; resume with steps >= {done}."
            )
        return payload

    def check_data(self, *data: Any) -> None:
        """Before any step: the policy's observation/action sizes equal the data's, and (for
        ``distinct_sets`` methods) D_p and D_np share no episode.

        The data that passed is remembered, so that ``fit`` on the very same objects does not
        check (and warn) a second time; a method that adds checks calls this first.
        """
        if data and data[0] is not None and (hasattr(data[0], "observation_dim")
                                             or hasattr(getattr(data[0], "dataset", None),
                                                        "observation_dim")):
            check_policy_matches_data(self.policy, data[0])
        if self.distinct_sets and len(data) >= 2 and data[1] is not None:
            check_preference_sets(data[0], data[1])
        self._checked_data = data

    def _already_checked(self, data: tuple[Any, ...]) -> bool:
        """Whether ``check_data`` last ran on these very objects (its warnings were given then)."""
        checked = self._checked_data
        return (checked is not None and len(checked) == len(data)
                and all(a is b for a, b in zip(checked, data, strict=True)))

    def _named_policy_parameters(self) -> Iterator[tuple[str, torch.Tensor]]:
        for i, p in enumerate(self.policy.parameters()):
            yield f"policy.parameters[{i}]", p

    def _timed(self, fn: Callable[[], None]) -> None:
        start = time.perf_counter()
        fn()
        synchronize(self.device)
        self.train_wall_clock_s += time.perf_counter() - start

    def hyperparameters(self) -> dict[str, Any]:
        """The resolved config as a JSON-able dict (plus what the method adds)."""
        return asdict(self.config)


@contextmanager
def _interrupt_flag() -> Iterator[Callable[[], bool]]:
    """SIGINT/SIGTERM set a flag the loop reads (main thread only); old handlers come back."""
    flag = {"set": False}
    if threading.current_thread() is not threading.main_thread():
        yield lambda: False
        return

    def handler(signum: int, frame: Any) -> None:
        flag["set"] = True

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield lambda: flag["set"]
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
