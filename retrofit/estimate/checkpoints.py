"""Pick the policy a fit returns by its offline estimate (issue 24; docs/offline-estimate.md).

``Retrofitter.fit(..., select_checkpoint=CheckpointSelection(dataset, κ))`` keeps a copy of the
policy every ``every`` steps (``CheckpointKeeper``, a training callback), estimates every kept
copy and the final policy offline (:func:`retrofit.estimate.offline.estimate_policies`), returns
the one :func:`retrofit.estimate.selection.select_checkpoint` picks and, with a ``log_dir``,
writes the safety report there. With a ``log_dir`` the kept copies are also files
(``kept/step_<N>.pt``, written atomically), so a resumed fit selects among the copies kept before
the interruption too.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from retrofit.atomic import atomic_write_bytes
from retrofit.config_base import Config
from retrofit.errors import ConfigError
from retrofit.estimate.config import FQEConfig
from retrofit.estimate.offline import OfflineEstimate, check_estimation_data, estimate_policies
from retrofit.estimate.selection import Selection, select_checkpoint
from retrofit.thresholds import check_cost_threshold

KEPT_FOLDER = "kept"
_KEPT_FILE = re.compile(r"^step_(\d+)\.pt$")


@dataclass(frozen=True)
class CheckpointSelection(Config):
    """How a fit picks the policy it returns by the offline estimate.

    dataset: a ``TrajectoryDataset`` with per-step costs and rewards (usually the whole dataset
        the preferences were split from: FQE needs every transition it can get).
    cost_threshold: κ, the episode cost limit of the selection rule.
    every: keep a copy of the policy every this many steps (the final policy is always a
        candidate).
    fqe: the estimate's settings (bootstrap size, confidence, network).
    """

    dataset: Any
    cost_threshold: float
    every: int = 2_000
    fqe: FQEConfig = field(default_factory=FQEConfig)

    def check(self) -> None:
        """A valid κ, ``every`` >= 1 and data the offline estimate can use."""
        check_cost_threshold(self.cost_threshold)
        if self.every < 1:
            raise ConfigError(f"every={self.every!r} must be a positive integer (steps between "
                              "kept copies of the policy).")
        check_estimation_data(self.dataset)


@dataclass(frozen=True)
class SelectedCheckpoint:
    """What the selection saw and chose: the estimates in training order (the final policy
    last), the selection, the chosen policy's adapter and the report files (if written)."""

    estimates: list[OfflineEstimate]
    selection: Selection
    policy: Any
    paths: dict[str, Path]


class CheckpointKeeper:
    """A training callback that keeps a frozen copy of the policy every ``every`` steps.

    ``folder`` (optional) receives each copy's parameters as ``step_<N>.pt``. A new run refuses a
    folder that already holds copies unless ``overwrite`` (then they are removed first); a
    resumed run (``resume_step``) loads the copies of steps ``≤ resume_step`` and ignores later
    ones (they are written again when training reaches them).
    """

    def __init__(self, template: Any, every: int, folder: Path | None = None, *,
                 resume_step: int | None = None, overwrite: bool = False) -> None:
        self.template = template
        self.every = every
        self.folder = folder
        self.kept: dict[int, Any] = {}
        if folder is None:
            return
        existing = self._files()
        if resume_step is not None:
            for step, path in existing.items():
                if step <= resume_step:
                    self.kept[step] = self._load(path)
        elif existing:
            if not overwrite:
                raise ConfigError(
                    f"{folder} already holds kept policies of an earlier run; use another "
                    "log_dir, resume that run, or overwrite=True to replace them."
                )
            for path in existing.values():
                path.unlink()

    def __call__(self, step: int, trainer: Any) -> None:
        """Keep the trainer's policy at ``step`` when ``step`` is a multiple of ``every``."""
        if step % self.every:
            return
        copy = trainer.policy.frozen_copy()
        self.kept[step] = copy
        if self.folder is not None:
            buffer = io.BytesIO()
            torch.save({"step": step, "parameters": [p.detach().cpu()
                                                     for p in copy.parameters()]}, buffer)
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(self.folder / f"step_{step}.pt", buffer.getvalue())

    def _files(self) -> dict[int, Path]:
        assert self.folder is not None
        if not self.folder.is_dir():
            return {}
        found = {}
        for path in self.folder.iterdir():
            match = _KEPT_FILE.match(path.name)
            if match:
                found[int(match.group(1))] = path
        return dict(sorted(found.items()))

    def _load(self, path: Path) -> Any:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        copy = self.template.frozen_copy()
        params = list(copy.parameters())
        if len(params) != len(saved["parameters"]) or any(
                p.shape != q.shape for p, q in zip(params, saved["parameters"], strict=True)):
            raise ConfigError(f"{path} holds another policy's parameters; remove the "
                              f"{path.parent} folder or start the run afresh.")
        with torch.no_grad():
            for p, q in zip(params, saved["parameters"], strict=True):
                p.copy_(q.to(p.device))
        return copy


def select_kept(
    keeper: CheckpointKeeper,
    final: Any,
    final_step: int,
    selection: CheckpointSelection,
    out_dir: Path | None,
    device: str | torch.device = "auto",
) -> SelectedCheckpoint:
    """Estimate the kept copies (steps before ``final_step``) and the final policy, select one
    and write the safety report into ``out_dir`` (when given)."""
    from retrofit.estimate.report import write_safety_report

    candidates = {f"step {s}": p for s, p in keeper.kept.items() if s < final_step}
    candidates[f"step {final_step} (final)"] = final
    estimates = estimate_policies(candidates, selection.dataset, selection.fqe, device)
    chosen = select_checkpoint(estimates, selection.cost_threshold)
    paths: dict[str, Path] = {}
    if out_dir is not None:
        dataset = selection.dataset
        extra = {"task": getattr(dataset, "task", None), "config": selection.fqe.to_dict(),
                 "dataset": {"n_episodes": int(dataset.n_episodes), "n_transitions": len(dataset)},
                 "kept_every": selection.every}
        paths = write_safety_report(out_dir, estimates, chosen, selection.cost_threshold, extra)
    return SelectedCheckpoint(estimates, chosen, list(candidates.values())[chosen.index], paths)


def chain_callbacks(fit_kwargs: dict[str, Any], keeper: CheckpointKeeper) -> dict[str, Any]:
    """``fit_kwargs`` with ``keeper`` added to the user's ``callback`` (each at its own period;
    the loop calls them every ``gcd`` of the two periods). The user's callback may still stop."""
    from math import gcd

    user = fit_kwargs.get("callback")
    user_every = int(fit_kwargs.get("callback_every", 0) or 0)
    if user is None or user_every <= 0:
        return {**fit_kwargs, "callback": keeper, "callback_every": keeper.every}

    def both(step: int, trainer: Any) -> bool | None:
        keeper(step, trainer)
        return user(step, trainer) if step % user_every == 0 else None

    return {**fit_kwargs, "callback": both, "callback_every": gcd(user_every, keeper.every)}
