"""One cell of a comparison: train and evaluate a (method, κ, seed), write its file.

A cell gets a JSON-able spec (the config's fields plus the cell's method, κ, seed, dataset and
π_ref record), so it can cross a process boundary or a network; ``run_isolated`` runs it in a
fresh process, ``train_cell`` anywhere (a pool or Ray worker), and only ``write_cell`` writes.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import resource
import subprocess
import threading
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.compare.cell_data import CellData, cell_data, data_kind, method_hyperparameters
from retrofit.compare.config import CompareConfig
from retrofit.compare.executors import exit_with_parent
from retrofit.compare.manifest import cell_settings
from retrofit.compare.reference import load_dataset, reference_path
from retrofit.data.splits import PAPER_TOP_FRACTION
from retrofit.thresholds import is_safe_on_average

# results.csv's columns: the keys of a cell record's "row", in this order (train_cell).
RESULT_COLUMNS = (
    "method", "task", "cost_threshold", "seed", "normalized_reward", "normalized_cost",
    "train_wall_clock_s", "updates", "updates_per_s", "time_to_safe_s", "peak_rss_mb", "device",
)


# ---------------------------------------------------------------------------- files
def cell_path(out: Path, method: str, cost_threshold: float, seed: int) -> Path:
    """Where a finished cell's JSON lives."""
    return Path(out) / "cells" / f"{method}__k{cost_threshold:g}__s{seed}.json"


def hardware() -> dict[str, Any]:
    """CPU model, cores, GPU (if any), torch version, git commit and load average."""
    import torch

    from retrofit.device import cpu_model

    cpu = cpu_model()
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "cpu": cpu, "cpu_count": os.cpu_count(), "gpu": gpu, "torch": torch.__version__,
        "python": platform.python_version(), "platform": platform.platform(),
        "git_commit": commit, "load_average": [round(x, 2) for x in os.getloadavg()],
    }


# ---------------------------------------------------------------------------- one cell
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (method, κ, seed) cell; write and return its record."""
    return write_cell(Path(spec["out"]), train_cell(spec))


def write_cell(out: Path, record: dict[str, Any]) -> dict[str, Any]:
    """Write a finished cell's record to its file in ``out`` (atomically), keep its per-step
    training metrics as ``metrics_path(...)``, then drop the cell's partial folder (its fit
    checkpoint); return the record."""
    import shutil

    row = record["row"]
    method, cost_threshold, seed = row["method"], float(row["cost_threshold"]), int(row["seed"])
    atomic_write_text(cell_path(out, method, cost_threshold, seed),
                      json.dumps(record, indent=2, default=str))
    partial = partial_path(out, method, cost_threshold, seed)
    metrics = partial / "metrics.csv"
    if metrics.is_file():
        kept = metrics_path(out, method, cost_threshold, seed)
        kept.parent.mkdir(parents=True, exist_ok=True)
        os.replace(metrics, kept)  # same file system: atomic; never lost on a crash
    shutil.rmtree(partial, ignore_errors=True)
    return record


def metrics_path(out: Path, method: str, cost_threshold: float, seed: int) -> Path:
    """Where a finished cell's per-step training metrics (the fit's ``metrics.csv``) are kept."""
    return Path(out) / "metrics" / f"{cell_path(out, method, cost_threshold, seed).stem}.csv"


def partial_path(out: Path, method: str, cost_threshold: float, seed: int) -> Path:
    """The folder of an unfinished cell: its fit checkpoint, metrics and curve so far."""
    return Path(out) / "partial" / cell_path(out, method, cost_threshold, seed).stem


@dataclasses.dataclass
class CellRun:
    """What one cell trains on and where its unfinished files go (``prepare_cell``)."""

    config: CompareConfig
    method: str
    cost_threshold: float
    seed: int
    dataset: Any
    data: tuple[Any, ...]
    reference: Any
    target: float
    partial: Path
    checkpoints: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    first_safe: dict[str, Any] = dataclasses.field(default_factory=dict)


def prepare_cell(spec: dict[str, Any], dataset: Any = None) -> CellRun:
    """A cell's data (its D_p / D_np split in its method's shape), π_ref, reward target and
    partial folder; ``dataset``: the cell's dataset if already loaded (batched cells share it)."""
    from retrofit.device import get_device
    from retrofit.policies.io import load_policy

    config = config_from_spec(spec)
    method, cost_threshold, seed = spec["method"], float(spec["cost_threshold"]), int(spec["seed"])
    if dataset is None:
        dataset, _ = load_dataset(dataclasses.replace(config, dataset=spec["dataset_path"]))
    preferred, nonpreferred = dataset.split_preferences(
        cost_threshold, n_preferred=config.n_preferred, n_nonpreferred=config.n_nonpreferred,
        seed=seed, nonpreferred_pool=config.nonpreferred_pool, top_fraction=config.top_fraction,
    )
    cell = CellData(dataset, preferred, nonpreferred, cost_threshold, seed)
    data = cell_data(method, cell)
    reference = load_policy(reference_path(config.out, seed), device=get_device(config.device))
    target = config.safe_reward_fraction * float(spec["reference"]["normalized_reward"])
    partial = partial_path(config.out, method, cost_threshold, seed)
    return CellRun(config, method, cost_threshold, seed, dataset, data, reference, target,
                   partial)


def load_curve(run: CellRun, done: int | None) -> None:
    """Resuming from step ``done`` (None: a fresh start): the checkpoint evaluations saved up to
    it and the first safe one."""
    checkpoints: list[dict[str, Any]] = []
    if done is not None:
        curve_file = run.partial / "curve.json"
        saved = json.loads(curve_file.read_text()) if curve_file.is_file() else []
        checkpoints = [c for c in saved if int(c["step"]) <= done]
    run.checkpoints = checkpoints
    run.first_safe = next(
        ({"step": c["step"], "time": c["train_wall_clock_s"]} for c in checkpoints
         if c["safe_and_rewarding"]), {})


def checkpoint_callback(run: CellRun) -> Any:
    """The off-the-clock checkpoint evaluation ``callback(step, trainer)`` of a cell: evaluate
    ``trainer.policy``, append to ``run.checkpoints`` and ``curve.json``."""
    from retrofit.evaluation import evaluate

    config, dataset, seed = run.config, run.dataset, run.seed

    def checkpoint(step: int, trainer: Any) -> None:
        policy = trainer.policy
        policy.train(False)
        result = evaluate(policy, dataset.task, run.cost_threshold,
                          episodes=config.checkpoint_episodes, seed=10_000 + seed)
        policy.train(True)
        ok = bool(is_safe_on_average(result.normalized_cost)) and (
            result.normalized_reward >= run.target)
        run.checkpoints.append({
            "step": step, "train_wall_clock_s": trainer.train_wall_clock_s,
            "normalized_reward": result.normalized_reward,
            "normalized_cost": result.normalized_cost, "safe_and_rewarding": ok,
        })
        if ok and not run.first_safe:
            run.first_safe.update(step=step, time=trainer.train_wall_clock_s)
        atomic_write_text(run.partial / "curve.json", json.dumps(run.checkpoints, default=str))

    return checkpoint


def cell_record(spec: dict[str, Any], run: CellRun, trainer: Any, policy: Any,
                **extra: Any) -> dict[str, Any]:
    """Evaluate a cell's trained ``policy`` and return the cell's record (``extra`` keys are
    added to it: batched cells say so)."""
    import torch

    from retrofit.device import cpu_model
    from retrofit.evaluation import evaluate

    config, method, seed = run.config, run.method, run.seed
    peak = _peak_rss_mb()
    final = evaluate(policy, run.dataset.task, run.cost_threshold,
                     episodes=config.eval_episodes, seed=seed)
    wall = float(trainer.train_wall_clock_s)
    updates = int(trainer.steps_done)
    device = trainer.device
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu")
    row = {
        "method": method, "task": run.dataset.task, "cost_threshold": run.cost_threshold,
        "seed": seed,
        "normalized_reward": final.normalized_reward, "normalized_cost": final.normalized_cost,
        "train_wall_clock_s": wall, "updates": updates,
        "updates_per_s": updates / wall if wall > 0 else float("nan"),
        "time_to_safe_s": run.first_safe.get("time"), "peak_rss_mb": peak, "device": device_name,
    }
    record = {
        "row": row, "checkpoints": run.checkpoints, "first_safe_step": run.first_safe.get("step"),
        "reward_target": run.target, "hyperparameters": trainer.hyperparameters(),
        "eval_wall_clock_s": final.wall_clock_s,
        "data_kind": data_kind(method), "isolated": bool(spec.get("isolated", False)),
        "load_average_end": [round(x, 2) for x in os.getloadavg()], "cpu": cpu_model(),
        "settings": cell_settings(config, method, spec["dataset_sha256"]),
        **extra,
    }
    return record


def train_cell(spec: dict[str, Any]) -> dict[str, Any]:
    """Train and evaluate one (method, κ, seed) cell and return its record; writes nothing.

    ``spec`` is JSON-able (it crosses a process boundary, or a network with Ray): the config
    fields plus ``method``, ``cost_threshold``, ``seed``, ``dataset_path`` and ``reference``;
    π_ref is read from ``reference_path(out, seed)``.
    """
    import torch

    from retrofit.retrofitter import Retrofitter

    torch.set_num_threads(int(spec["threads"]))
    run = prepare_cell(spec)
    config = run.config

    # An unfinished cell keeps its fit checkpoint and its curve so far in partial/<cell>/: a
    # killed sweep resumes the cell from its last checkpoint instead of from step 0.
    resume = (run.partial / "checkpoint.pt").is_file()
    done = None
    if resume:
        from retrofit.training.checkpoint import load_checkpoint

        done = int(load_checkpoint(run.partial / "checkpoint.pt")["position"]["steps_done"])
    load_curve(run, done)
    checkpoint = checkpoint_callback(run)

    every = config.every()
    retrofitter = Retrofitter(run.reference, run.method, device=config.device, seed=run.seed,
                              progress=config.progress, log_dir=run.partial,
                              checkpoint_every=every or max(1, config.steps // 10),
                              overwrite=not resume,
                              **method_hyperparameters(run.method, config, run.cost_threshold))
    retrofitter.fit(*run.data, steps=config.steps, callback=checkpoint if every else None,
                    callback_every=every, resume=resume)
    return cell_record(spec, run, retrofitter.trainer, retrofitter.policy_)


# ---------------------------------------------------------------------------- across processes
def config_to_spec(config: CompareConfig) -> dict[str, Any]:
    """``config`` as a JSON-able dict (``out`` a string): a cell spec's config fields."""
    spec = dataclasses.asdict(config)
    spec["out"] = str(config.out)
    if not config.batched:  # so run.json and cell specs of unbatched runs are as they were
        del spec["batched"]
    return spec


def config_from_spec(spec: dict[str, Any]) -> CompareConfig:
    """The ``CompareConfig`` of a cell spec (or of ``run.json``'s ``config``); other keys are
    ignored."""
    names = {f.name for f in dataclasses.fields(CompareConfig)}
    values = {k: v for k, v in spec.items() if k in names}
    values["out"] = Path(values["out"])
    # written before CompareConfig had top_fraction: D_p came from the better half of SAFE
    values.setdefault("top_fraction", PAPER_TOP_FRACTION)
    for key in ("methods", "seeds"):
        values[key] = tuple(values[key])
    if values.get("cost_thresholds") is not None:
        values["cost_thresholds"] = tuple(values["cost_thresholds"])
    return CompareConfig(**values)


def _watched(target: Any, payload: dict[str, Any]) -> None:
    parent = payload.get("parent_pid")
    if parent is not None:  # a SIGKILLed main process must not leave this job training on
        threading.Thread(target=exit_with_parent, args=(int(parent),), daemon=True).start()
    target(payload)


def run_spawned(target: Any, payload: dict[str, Any], what: str) -> None:
    """``target(payload)`` in a fresh ``spawn``ed process that ends if this process dies; a
    failure raises here, naming ``what`` (a cell or a batch). ``target`` must be a top-level
    function (it is pickled)."""
    import multiprocessing

    payload = {**payload, "parent_pid": os.getpid()}
    process = multiprocessing.get_context("spawn").Process(target=_watched,
                                                           args=(target, payload))
    process.start()
    process.join()
    if process.exitcode != 0:
        raise RuntimeError(
            f"{what} failed (exit code {process.exitcode}); its traceback is printed above. "
            "Finished cells are kept: rerun the same command to resume."
        )


def run_isolated(spec: dict[str, Any]) -> None:
    """``run_cell(spec)`` in a fresh ``spawn``ed process (its own peak RSS), which ends if this
    process dies; a failed cell raises here, naming the cell."""
    run_spawned(run_cell, spec, f"cell {spec['method']} κ={spec['cost_threshold']:g} "
                                f"seed={spec['seed']}")
