"""``CompareConfig.batched`` (``retrofit compare --batched``): a PREFINE-family method's missing
cells of one κ, across seeds, trained as one batched run (:mod:`retrofit.methods.prefine_batched`)
and written as the same cell files a separate run of each cell writes.

Each member is its cell: the cell's own D_p / D_np split, π_ref (``reference/seed{S}.pt``), seed,
method config (the cell's overrides and domain preset) and checkpoint evaluations
(``callback(step, trainer)`` per cell, as a separate cell's). The trained weights equal a
separate cell's up to float rounding of batched matmuls (``tests/test_prefine_batched.py``), so
the cells, ``results.csv`` and the reports are made as for separate cells and a folder may mix
both; a batched cell's record says so (``"batched": {"seeds": [...]}``) and its
``train_wall_clock_s`` is the batch's (every member trained in that time).

Files: the batch's checkpoint in ``partial/{method}__k{κ}__batch-s{S1}-{S2}…/`` (a killed batch
resumes from it when the same cells are missing again), each member's ``metrics.csv`` and
``curve.json`` in its cell's own ``partial/`` folder. What cannot be batched trains separately and
the log says why: methods other than prefine / dpo / sft-only, ``sampling="trajectories"``, a
cell that resumes from its own (unbatched) checkpoint, a group of one cell, the Ray executor.
"""

from __future__ import annotations

import dataclasses
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from retrofit.compare.cell_data import method_hyperparameters
from retrofit.compare.cells import (
    cell_record,
    checkpoint_callback,
    config_from_spec,
    load_curve,
    partial_path,
    prepare_cell,
    run_spawned,
    write_cell,
)
from retrofit.compare.config import CompareConfig
from retrofit.compare.reference import load_dataset
from retrofit.training.checkpoint import CHECKPOINT_NAME

Log = Callable[[str], None]


def batch_refusal(method: str, config: CompareConfig, cost_threshold: float,
                  runs: int) -> str | None:
    """Why ``method``'s cells of ``cost_threshold`` cannot train as one batch (None: they can)."""
    from retrofit.methods.prefine_batched import batching_refusal
    from retrofit.methods.registry import get_method

    trainer_cls, config_cls = get_method(method).load()
    method_config = config_cls(**method_hyperparameters(method, config, cost_threshold))
    reason = batching_refusal(trainer_cls, method_config)
    if reason is None and runs > 1 and not getattr(method_config, "precompute_reference", True):
        reason = ("precompute_reference=False: the cells' π_ref differ by seed, and a batch "
                  "reads each run's reference from its precomputed table")
    return reason


def batch_path(out: Path, method: str, cost_threshold: float, seeds: list[int]) -> Path:
    """The folder of an unfinished batch: its fit checkpoint."""
    return (Path(out) / "partial"
            / f"{method}__k{cost_threshold:g}__batch-s{'-'.join(str(s) for s in seeds)}")


def _name(batch: dict[str, Any]) -> str:
    seeds = ",".join(str(s) for s in batch["seeds"])
    return f"{batch['method']} κ={float(batch['cost_threshold']):g} seeds={seeds} (batched)"


def plan_batches(pending: list[dict[str, Any]], config: CompareConfig, log: Log
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split the pending cell specs into those that train separately and the batches (one per
    method and κ, two cells or more), logging why cells are not batched."""
    if config.executor == "ray":
        log("batched: the Ray executor trains every cell separately (batched runs train on this "
            "machine: use --executor local)")
        return pending, []
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for spec in pending:
        groups.setdefault((spec["method"], float(spec["cost_threshold"])), []).append(spec)
    separate: list[int] = []
    batches = []
    for (method, cost_threshold), specs in groups.items():
        reason = batch_refusal(method, config, cost_threshold, len(specs))
        if reason is not None:
            log(f"batched: {method} κ={cost_threshold:g} trains its {len(specs)} cell(s) "
                f"separately: {reason}")
            separate += [id(s) for s in specs]
            continue
        members = []
        for spec in specs:
            own = partial_path(config.out, method, cost_threshold, int(spec["seed"]))
            if (own / CHECKPOINT_NAME).is_file():
                log(f"batched: {method} κ={cost_threshold:g} seed={spec['seed']} resumes "
                    "separately from its own checkpoint")
                separate.append(id(spec))
            else:
                members.append(spec)
        if len(members) < 2:
            separate += [id(s) for s in members]
            continue
        batches.append({"method": method, "cost_threshold": cost_threshold,
                        "seeds": [int(s["seed"]) for s in members], "cells": members,
                        "out": str(config.out), "threads": config.threads,
                        "isolated": config.isolate})
    alone = set(separate)
    return [s for s in pending if id(s) in alone], batches


def train_batch(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Train and evaluate a batch's cells as one batched run; return their records (writes
    only the batch's checkpoint and the members' metrics and curves in ``partial/``)."""
    import torch

    from retrofit.adapters import wrap
    from retrofit.log_formats import open_logger
    from retrofit.methods.prefine_batched import BatchedPrefineTrainer
    from retrofit.methods.registry import get_method
    from retrofit.tasks import task_info
    from retrofit.training.checkpoint import load_checkpoint

    torch.set_num_threads(int(batch["threads"]))
    cells = batch["cells"]
    config = config_from_spec(cells[0])
    method, cost_threshold = batch["method"], float(batch["cost_threshold"])
    dataset, _ = load_dataset(dataclasses.replace(config, dataset=cells[0]["dataset_path"]))
    runs = [prepare_cell(spec, dataset) for spec in cells]
    folder = batch_path(config.out, method, cost_threshold, batch["seeds"])
    resume = (folder / CHECKPOINT_NAME).is_file()
    done = int(load_checkpoint(folder / CHECKPOINT_NAME)["position"]["steps_done"]) \
        if resume else None
    trainer_cls, config_cls = get_method(method).load()
    # the config a separate cell's Retrofitter builds: overrides, the data's domain, steps
    method_config = dataclasses.replace(
        config_cls(**method_hyperparameters(method, config, cost_threshold))
        .resolved(task_info(dataset.task).domain), steps=config.steps)
    members = [trainer_cls(wrap(run.reference), method_config, device=config.device,
                           seed=run.seed) for run in runs]
    trainer = BatchedPrefineTrainer(members)
    loggers = []
    for run in runs:
        load_curve(run, done)
        loggers.append(open_logger("csv", run.partial, resume_step=done, overwrite=True))
    folder.mkdir(parents=True, exist_ok=True)
    every = config.every()
    policies = trainer.fit_runs(
        [run.data for run in runs], steps=config.steps, loggers=loggers,
        progress=config.progress,
        callbacks=[checkpoint_callback(run) for run in runs] if every else None,
        callback_every=every, checkpoint_dir=folder,
        checkpoint_every=every or max(1, config.steps // 10), resume=resume)
    return [cell_record(spec, run, member, policy, batched={"seeds": batch["seeds"]})
            for spec, run, member, policy in zip(cells, runs, members, policies, strict=True)]


def run_batch(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """Train a batch, write its cell files, then drop its checkpoint folder."""
    records = [write_cell(Path(batch["out"]), record) for record in train_batch(batch)]
    shutil.rmtree(batch_path(Path(batch["out"]), batch["method"], float(batch["cost_threshold"]),
                             batch["seeds"]), ignore_errors=True)
    return records


def run_batch_isolated(batch: dict[str, Any]) -> None:
    """``run_batch`` in a fresh ``spawn``ed process, which ends if this process dies."""
    run_spawned(run_batch, batch, f"batch {_name(batch)}")


def run_batches(batches: list[dict[str, Any]], config: CompareConfig, log: Log) -> None:
    """Run each batch in turn (in a fresh process when ``config.isolate``)."""
    for batch in batches:
        log(f"run   {_name(batch)}")
        tic = time.perf_counter()
        (run_batch_isolated if config.isolate else run_batch)(batch)
        log(f"done  {_name(batch)} in {time.perf_counter() - tic:.1f} s")
