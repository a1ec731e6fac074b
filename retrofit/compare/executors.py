"""Where the cells of a comparison run: here one after another, here several at once, or on a
Ray cluster. Every executor returns each finished cell's record to this process, which writes
the cell file, so the resumable cell store and ``results.csv`` are the same whichever runs the
cells, and a resumed sweep skips the cells already written.

The harness hands in what a cell is (``CellFunctions``): this module imports nothing of it.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from retrofit.errors import ConfigError

Log = Callable[[str], None]
Record = dict[str, Any]


@dataclass(frozen=True)
class CellFunctions:
    """What running a cell means, from the harness (module-level functions, so they pickle).

    train: spec -> record (writes nothing). write: (out, record) -> record, the cell file.
    run_here: spec -> None, one cell in this machine's default way (a fresh process or this one).
    reference_file: (out, seed) -> π_ref's policy file.
    """

    train: Callable[[dict[str, Any]], Record]
    write: Callable[[Path, Record], Record]
    run_here: Callable[[dict[str, Any]], Any]
    reference_file: Callable[[Path, int], Path]


def exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """End this process as soon as its parent is gone (re-parented: ``getppid`` changes)."""
    while True:
        if os.getppid() != parent:
            os._exit(3)
        time.sleep(period_s)


def _name(spec: dict[str, Any]) -> str:
    return f"{spec['method']} κ={float(spec['cost_threshold']):g} seed={spec['seed']}"


def run_cells(specs: list[dict[str, Any]], config: Any, log: Log, cell: CellFunctions) -> None:
    """Run every pending cell with ``config.executor`` and write each record as it arrives."""
    if not specs:
        return
    if config.executor == "ray":
        _run_ray(specs, config, log, cell)
    elif config.workers > 1:
        _run_pool(specs, config, log, cell)
    else:
        for spec in specs:
            log(f"run   {_name(spec)}")
            tic = time.perf_counter()
            cell.run_here(spec)
            log(f"done  {_name(spec)} in {time.perf_counter() - tic:.1f} s")


def _pool_cell(train: Callable[[dict[str, Any]], Record], spec: dict[str, Any]) -> Record:
    """A pool worker's cell: ends with its parent (a SIGKILLed sweep leaves no worker behind)."""
    parent = spec.get("parent_pid")
    if parent is not None:
        threading.Thread(target=exit_with_parent, args=(int(parent),), daemon=True).start()
    return train(spec)


def _run_pool(specs: list[dict[str, Any]], config: Any, log: Log, cell: CellFunctions) -> None:
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=config.workers, mp_context=context,
                             max_tasks_per_child=1) as pool:
        futures = {}
        for spec in specs:
            log(f"run   {_name(spec)} (one of {config.workers} local workers)")
            futures[pool.submit(_pool_cell, cell.train, {**spec, "parent_pid": os.getpid(),
                                                         "isolated": True})] = spec
        for future in as_completed(futures):
            _finish(futures[future], future.result, config, log, cell)


def _finish(spec: dict[str, Any], result: Callable[[], Record], config: Any, log: Log,
            cell: CellFunctions) -> None:
    """Collect one cell's record (``result()`` raises the worker's error) and write it."""
    try:
        record = result()
    except Exception as exc:
        raise RuntimeError(
            f"cell {_name(spec)} failed: {exc}. Finished cells are kept: rerun the same command "
            "to resume."
        ) from exc
    cell.write(Path(config.out), record)
    log(f"done  {_name(spec)} in {record['row']['train_wall_clock_s']:.1f} s of training")


def _ray_cell(cell: CellFunctions, spec: dict[str, Any], dataset: bytes,
              reference: bytes) -> Record:
    """One cell on a Ray worker: the dataset and π_ref arrive as bytes, so the worker needs no
    shared filesystem; the record goes back to the driver."""
    with tempfile.TemporaryDirectory(prefix="retrofit-cell-") as folder:
        root = Path(folder)
        data_path = root / Path(spec["dataset_path"]).name
        data_path.write_bytes(dataset)
        ref = cell.reference_file(root / "out", int(spec["seed"]))
        ref.parent.mkdir(parents=True)
        ref.write_bytes(reference)
        return cell.train({**spec, "dataset_path": str(data_path), "out": str(root / "out"),
                           "isolated": False})


@contextmanager
def ray_session(config: Any) -> Iterator[Any]:
    """Ray for a sweep (yields the ``ray`` module); shuts down only what it started.

    A Ray already initialised in this process is used as it is. Otherwise ``config.ray_address``
    (or ``$RAY_ADDRESS``) is joined, or, when neither is set, a local instance starts with
    ``workers × threads`` CPUs, so that ``--workers`` bounds the cells at once as it does for
    the local pool (Ray's default takes every CPU of the machine).
    """
    try:
        import ray
    except ImportError as exc:  # ray is pinned in requirements; say so if it is missing
        raise ConfigError("executor='ray' needs the ray package (pip install ray).") from exc
    started_here = not ray.is_initialized()
    if started_here:
        joins = config.ray_address or os.environ.get("RAY_ADDRESS")  # a cluster sets its own
        local = {} if joins else {"num_cpus": config.workers * config.threads}
        ray.init(address=config.ray_address, include_dashboard=False, log_to_driver=False,
                 configure_logging=False, **local)
    try:
        yield ray
    finally:
        if started_here:
            ray.shutdown()


def _run_ray(specs: list[dict[str, Any]], config: Any, log: Log, cell: CellFunctions) -> None:
    with ray_session(config) as ray:
        gpus = 1 if str(config.device).startswith("cuda") else 0
        remote = ray.remote(num_cpus=config.threads, num_gpus=gpus,
                            max_retries=2)(_ray_cell)  # a lost worker's cell is retried
        dataset = ray.put(Path(specs[0]["dataset_path"]).read_bytes())
        references = {seed: ray.put(cell.reference_file(Path(config.out), seed).read_bytes())
                      for seed in {int(s["seed"]) for s in specs}}
        pending = {}
        for spec in specs:
            log(f"run   {_name(spec)} (Ray task)")
            ref = remote.remote(cell, {**spec, "isolated": False}, dataset,
                                references[int(spec["seed"])])
            pending[ref] = spec
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            _finish(pending.pop(done[0]), lambda ref=done[0]: ray.get(ref), config, log, cell)
