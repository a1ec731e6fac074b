"""The comparison run: plan the missing cells of a folder, run them, write its results table.

Layout of ``out``::

    compare.json                          the folder's settings (task, dataset sha256, steps, ...)
                                          and the union of every run's methods, κ values and seeds
    reference/seed{S}.pt, seed{S}.json   π_ref per seed (BC on high-reward episodes) and its scores
    cells/{method}__k{κ}__s{S}.json       one finished cell (its row, checkpoints, hyper-parameters)
    metrics/{method}__k{κ}__s{S}.csv      that cell's per-step training metrics (losses, log-probs)
    partial/{method}__k{κ}__s{S}/         an unfinished cell: fit checkpoint, metrics, curve so far
    results.csv, results.md, reward_cost.png, safe_fraction.png   every finished cell of the folder
    .retrofit.lock                        the PID of the run writing here (while it runs)

A cell whose JSON exists is not rerun, so an interrupted comparison resumes where it stopped. A
later run with other methods, κ values or seeds adds its cells to the same results table; a run
with another dataset (by content) or other settings is refused. Paths inside the folder are
stored relative to it, so the folder can be moved and resumed from any working directory. Each
cell runs in a fresh ``spawn``ed process by default, so its peak RSS is its own; a cell process
exits when the main process dies.

The parts, each its own module of ``retrofit.compare``: ``config`` (``CompareConfig``),
``cell_data`` (what data each method gets in a cell), ``reference`` (the dataset file and π_ref
per seed), ``manifest`` (what a resumed folder must share), ``cells`` (one cell, in this process
or a fresh one), ``batched`` (``CompareConfig.batched``: PREFINE-family cells of one κ across
seeds as one batched run), ``executors`` (where cells run) and ``report`` (results.md and the
figures).
This module ties them together and re-exports the names code imported from it (``__all__``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from retrofit.atomic import atomic_write_text
from retrofit.compare.cell_data import (
    DATA_BUILDERS,
    CellData,
    cell_data,
    data_kind,
    data_scope,
    method_hyperparameters,
)
from retrofit.compare.cells import (
    RESULT_COLUMNS,
    cell_path,
    config_to_spec,
    hardware,
    partial_path,
    run_cell,
    run_isolated,
    train_cell,
    write_cell,
)
from retrofit.compare.config import CompareConfig
from retrofit.compare.executors import CellFunctions, run_cells
from retrofit.compare.manifest import (
    MANIFEST,
    cell_settings,
    check_and_merge_manifest,
    check_reusable,
    run_settings,
)
from retrofit.compare.reference import ensure_reference, file_sha256, load_dataset, reference_path
from retrofit.errors import ConfigError

__all__ = [  # what code and tests import from here, wherever it is defined now (issue 23)
    "DATA_BUILDERS", "MANIFEST", "RESULT_COLUMNS", "CellData", "CompareConfig", "cell_data",
    "cell_path", "cell_settings", "check_methods", "data_kind", "data_scope", "ensure_reference",
    "file_sha256", "hardware", "method_hyperparameters", "partial_path", "reference_path",
    "run_cell", "run_compare", "run_settings", "train_cell", "write_cell", "write_csv",
]


def run_compare(config: CompareConfig, log: Callable[[str], None] = print) -> list[dict]:
    """Run every missing cell, then write results.csv, results.md and the PNGs; return rows.

    The results table holds every finished cell of ``config.out``: those of earlier runs with
    other methods, κ values or seeds are kept. The folder is locked while this runs.
    """
    from retrofit.outputs import check_writable, folder_lock

    config = config.named_reference()  # the deprecated spellings warned once, at construction
    if not config.methods:
        raise ConfigError("methods is empty: name at least one, e.g. --methods prefine,cpq.")
    check_methods(config)
    check_writable(config.out)
    with folder_lock(config.out, "retrofit compare"):
        return _run_compare_locked(config, log)


def check_methods(config: CompareConfig) -> None:
    """Every method is registered, has a data family and accepts its overrides: each method's
    config is built from them (type and range checks), so ``--set prefine.beta=NaN`` is refused
    here, before π_ref trains."""
    from retrofit.methods.registry import get_method

    for method in config.methods:
        spec = get_method(method)
        data_kind(method)
        _, config_cls = spec.load()
        try:
            config_cls(**method_hyperparameters(method, config, 1.0))
        except ConfigError as exc:
            raise ConfigError(
                f"overrides for {method!r} (--set {method}.FIELD=VALUE): {exc}"
            ) from None


def _run_compare_locked(config: CompareConfig, log: Callable[[str], None]) -> list[dict]:
    from retrofit.compare.report import write_reports

    out = Path(config.out)
    import torch

    torch.set_num_threads(config.threads)  # π_ref's BC runs in this process
    dataset, dataset_path = load_dataset(config)
    dataset_sha256 = file_sha256(dataset_path)
    folder = check_and_merge_manifest(config, dataset_path, dataset_sha256)
    started = hardware()
    references = {}
    for seed in config.seeds:
        references[seed] = ensure_reference(config, dataset, seed, dataset_sha256)
    del dataset
    base = {**config_to_spec(config), "dataset_path": dataset_path,
            "dataset_sha256": dataset_sha256}
    pending = []
    for seed in config.seeds:
        for cost_threshold in config.resolved_cost_thresholds():
            for method in config.methods:
                path = cell_path(out, method, cost_threshold, seed)
                if path.is_file():
                    check_reusable(path, cell_settings(config, method, dataset_sha256),
                                   dataset_path)
                    log(f"skip  {method} κ={cost_threshold:g} seed={seed} (done: {path.name})")
                    continue
                pending.append({**base, "method": method, "cost_threshold": cost_threshold,
                                "seed": seed, "reference": references[seed],
                                "isolated": config.isolate})
    if config.batched:
        from retrofit.compare.batched import plan_batches, run_batches

        pending, batches = plan_batches(pending, config, log)
        run_batches(batches, config, log)
    run_cells(pending, config, log, CellFunctions(
        train=train_cell, write=write_cell,
        run_here=run_isolated if config.isolate else run_cell, reference_file=reference_path,
    ))
    records = [json.loads(cell_path(out, m, k, s).read_text())
               for s in folder.seeds for k in folder.resolved_cost_thresholds()
               for m in folder.methods
               if cell_path(out, m, k, s).is_file()]
    present = {r["row"]["method"] for r in records}
    folder = dataclasses.replace(folder, methods=tuple(m for m in folder.methods if m in present))
    refs = []
    for seed in folder.seeds:
        ref_file = out / "reference" / f"seed{seed}.json"
        if ref_file.is_file():
            refs.append(json.loads(ref_file.read_text()))
    rows = [r["row"] for r in records]
    write_csv(out / "results.csv", rows)
    meta = {"hardware_start": started, "hardware_end": hardware(), "dataset": dataset_path,
            "dataset_sha256": dataset_sha256, "config": config_to_spec(folder),
            "references": refs}
    atomic_write_text(out / "run.json", json.dumps(meta, indent=2, default=str))
    write_reports(out, records, meta, folder)
    return rows


def write_csv(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``results.csv`` with exactly ``RESULT_COLUMNS`` (empty ``time_to_safe_s`` if never safe)."""
    import io

    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=RESULT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if row[k] is None else row[k]) for k in RESULT_COLUMNS})
    atomic_write_text(path, buffer.getvalue())
