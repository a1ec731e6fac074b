"""Cells per hour of a `retrofit compare` sweep with 1 and 2 local workers (and Ray), interleaved.

Each repeat runs the same small sweep (methods × κ × seeds, fixed steps) into a fresh folder with
each executor in turn, so machine drift hits all alike; the table gives cells/hour per executor
and the ratio to one worker, and projects the full ten-task sweep (10 tasks × 3 κ × 3 seeds ×
methods) on N nodes of the measured throughput.

    python benchmarks/sweep_throughput.py --repeats 2 [--ray] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from retrofit.compare import CompareConfig, run_compare
from retrofit.compare.harness import hardware
from retrofit.data.shipped import default_dataset_path


def sweep(out: Path, args: argparse.Namespace, **executor: object) -> float:
    config = CompareConfig(
        task="BallRun", methods=tuple(args.methods), out=out,
        dataset=str(default_dataset_path("OfflineBallRun-v0")),
        cost_thresholds=tuple(args.thresholds), seeds=tuple(range(args.seeds)),
        steps=args.steps, eval_episodes=args.episodes, checkpoint_every=0,
        bc_steps=args.bc_steps, device="cpu",
        reference_policy="tanh-gaussian",  # π_ref of the recorded runs (docs/cluster.md)
        **executor,  # type: ignore[arg-type]
    )
    tic = time.perf_counter()  # the whole sweep, π_ref's short BC per seed included
    run_compare(config, log=lambda _: None)
    return time.perf_counter() - tic


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["prefine"])
    parser.add_argument("--thresholds", nargs="+", type=float, default=[10.0, 20.0])
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--episodes", type=int, default=3)
    parser.add_argument("--bc-steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ray", action="store_true", help="also time a local Ray instance")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    executors = {"local x1": {"workers": 1}, "local x2": {"workers": 2}}
    if args.ray:
        executors["ray (2 CPUs)"] = {"executor": "ray"}
    cells = len(args.methods) * len(args.thresholds) * args.seeds
    times: dict[str, list[float]] = {name: [] for name in executors}
    for _ in range(args.repeats):
        for name, executor in executors.items():
            with tempfile.TemporaryDirectory() as folder:
                times[name].append(sweep(Path(folder) / "out", args, **executor))
    base = statistics.median(times["local x1"])
    rows = []
    for name, values in times.items():
        median = statistics.median(values)
        rows.append({"executor": name, "cells": cells, "median_s": round(median, 1),
                     "cells_per_hour": round(3600 * cells / median, 1),
                     "speedup_vs_1": round(base / median, 2)})
    full = 10 * 3 * 3 * len(args.methods)
    result = {"hardware": hardware(), "settings": vars(args), "rows": rows,
              "full_sweep_cells": full}
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"{cells} cells per sweep ({args.steps} steps each), medians of {args.repeats} repeats")
    print(f"{'executor':14s} {'median s':>9s} {'cells/h':>8s} {'vs x1':>6s}")
    for r in rows:
        print(f"{r['executor']:14s} {r['median_s']:9.1f} {r['cells_per_hour']:8.1f} "
              f"{r['speedup_vs_1']:6.2f}")


if __name__ == "__main__":
    main()
