"""Per-update training cost of every method on the same data, interleaved to share the load.

Each round trains a fresh trainer of every method for ``--steps`` updates on the same D_p/D_np
split (κ=20) of the dataset's task and reads the trainer's own ``train_wall_clock_s``
(evaluation-free; set-up such as CPQ's network building and SafeDICE's discriminator stage and
reward pass included).
Methods run round-robin so that a machine shared with other jobs slows them alike. Prints
ms/update, the ratio to PREFINE, and the time each method's paper-default iteration count would
take at that rate; writes the same as JSON.

    .venv/bin/python benchmarks/compare_wallclock.py --steps 200 --rounds 3 --out FILE.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
from dataclasses import dataclass
from pathlib import Path


@dataclass
class Args:
    """Command-line options.

    dataset: DSRL HDF5 (default: the shipped BallRun data). steps: updates per trainer per
    round. rounds: round-robin repetitions. bc_steps: reference BC steps. out: JSON output.
    """

    dataset: str | None
    steps: int
    rounds: int
    bc_steps: int
    out: str | None


METHODS = ("prefine", "dpo", "ppl", "safedice", "cpq", "bc-all", "bc-safe")
# iterations of each method's published defaults (docs/methods.md; SafeDICE adds 100k
# discriminator pretraining to its 1M, which steps/10 reproduces)
PAPER_UPDATES = {"prefine": 500_000, "dpo": 500_000, "ppl": 500_000, "safedice": 1_100_000,
                 "cpq": 100_000, "bc-all": 100_000, "bc-safe": 100_000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default=None)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bc-steps", type=int, default=2_000)
    parser.add_argument("--out", default=None)
    args = Args(**vars(parser.parse_args()))

    import torch

    torch.set_num_threads(1)
    from retrofit.compare.harness import CompareConfig, hardware, method_hyperparameters
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path
    from retrofit.pretrain import BCConfig, pretrain_reference
    from retrofit.retrofitter import Retrofitter

    path = args.dataset or str(default_dataset_path())
    dataset = TrajectoryDataset.from_hdf5(path)  # the task stored in the file
    # the tanh-Gaussian π_ref the recorded timings (docs/benchmarks.md) were taken with
    reference = pretrain_reference(dataset, BCConfig(steps=args.bc_steps, policy="tanh-gaussian"),
                                   device="cpu", progress=False)
    preferred, nonpreferred = dataset.split_preferences(20.0, seed=0)
    config = CompareConfig(task=str(dataset.task), methods=METHODS, out=Path("."))
    start = hardware()
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    updates: dict[str, int] = {}
    for round_ in range(args.rounds):
        for method in METHODS:
            hyper = method_hyperparameters(method, config, 20.0)
            fitter = Retrofitter(reference, method, device="cpu", seed=round_, progress=False,
                                 **hyper)
            fitter.fit(preferred, nonpreferred, steps=args.steps)
            updates[method] = fitter.trainer.steps_done
            times[method].append(fitter.train_wall_clock_s)
            print(f"round {round_} {method:9s} {fitter.train_wall_clock_s:7.2f} s "
                  f"({updates[method]} updates)", flush=True)
    per_update = {m: statistics.median(times[m]) / updates[m] for m in METHODS}
    base = per_update["prefine"]
    report = {
        "dataset": path, "task": dataset.task, "steps": args.steps, "rounds": args.rounds,
        "hardware_start": start, "load_average_end": [round(x, 2) for x in os.getloadavg()],
        "methods": {
            m: {"ms_per_update": 1000 * per_update[m], "ratio_to_prefine": per_update[m] / base,
                "updates_per_round": updates[m],
                "paper_default_updates": PAPER_UPDATES[m],
                "paper_default_hours": per_update[m] * PAPER_UPDATES[m] / 3600}
            for m in METHODS
        },
    }
    print(f"{'method':9s} {'ms/update':>10s} {'× PREFINE':>10s} {'paper iters':>12s} "
          f"{'hours at paper iters':>21s}")
    for m, r in report["methods"].items():
        print(f"{m:9s} {r['ms_per_update']:10.2f} {r['ratio_to_prefine']:10.1f} "
              f"{r['paper_default_updates']:12d} {r['paper_default_hours']:21.2f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
