"""Retrofit a BC reference policy with PREFINE on any DSRL-format dataset, over κ × seeds.

Example (the shipped BallRun data, BulletGym thresholds 10/20/40, 3 seeds):

    .venv/bin/python examples/prefine_dsrl.py --task OfflineBallRun-v0 --seeds 0 1 2
    .venv/bin/python examples/prefine_dsrl.py --small  # 26 s at OMP_NUM_THREADS=1

Without ``--dataset`` it uses the file retrofit ships for the task (BallRun, BallCircle, CarRun,
CarCircle, HopperVelocity, Walker2dVelocity); nothing is downloaded. With your own DSRL file:
``--dataset ~/.dsrl/datasets/SafetyBallRun-v0-80-940.hdf5``; make one with ``retrofit collect TASK
--out FILE``. Prints one row per (κ, seed) and the mean, and writes
``OUT/results.csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from _cli import ExampleArgs, parse

from retrofit import Retrofitter, TrajectoryDataset, evaluate
from retrofit.data.shipped import default_dataset_path
from retrofit.device import set_threads
from retrofit.pretrain import BCConfig, pretrain_reference
from retrofit.tasks import task_info


@dataclass
class Args(ExampleArgs):
    """Settings of the example (each is also a command-line flag)."""

    task: str = "OfflineBallRun-v0"
    """DSRL env id or short name of the dataset's task."""
    dataset: str | None = None
    """DSRL-format HDF5 file; default: the dataset retrofit ships for the task."""
    thresholds: list[float] = field(default_factory=list)
    """Cost thresholds κ; default: the task's DSRL set (BulletGym 10/20/40, SafetyGym 20/40/80)."""
    seeds: list[int] = field(default_factory=lambda: [0])
    """Seeds; each draws its own D_p / D_np and training randomness (PREFINE: 5 seeds)."""
    bc_steps: int = 20_000
    """BC steps of the reference policy (one reference per seed, shared across κ)."""
    steps: int = 20_000
    """PREFINE steps per (κ, seed) (paper: 500k on a V100)."""
    episodes: int = 20
    """Evaluation episodes per policy."""
    out: str = "runs/prefine_dsrl"
    """Output folder."""


SMALL = {"thresholds": [20.0], "bc_steps": 5_000, "steps": 3_000, "episodes": 5}
"""``--small``: one κ (20), 5,000 BC and 3,000 PREFINE steps, 5 evaluation episodes: a check
that everything runs (PREFINE needs far more steps to lower the cost here)."""


def parse_args(args: Sequence[str] | None = None) -> Args:
    """Read ``Args`` from the command line (``args``; default ``sys.argv[1:]``)."""
    return parse(Args(), SMALL, description=__doc__, args=args)


def main(args: Args) -> None:
    """Run PREFINE over the threshold set and seeds; print and save the table."""
    # ---- threads (seeding: every call below takes the row's ``seed``)
    set_threads(args.threads)
    info = task_info(args.task)
    dataset = args.dataset or default_dataset_path(info.env_id)
    data = TrajectoryDataset.from_hdf5(dataset, task=info.env_id)
    thresholds = args.thresholds or list(info.cost_thresholds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        reference = pretrain_reference(data, BCConfig(steps=args.bc_steps), seed=seed)
        for cost_threshold in thresholds:
            before = evaluate(reference, info.env_id, cost_threshold, episodes=args.episodes,
                              seed=seed)
            preferred, nonpreferred = data.split_preferences(cost_threshold=cost_threshold,
                                                             seed=seed)
            retrofitter = Retrofitter(reference, seed=seed, progress=False)
            policy = retrofitter.fit(preferred, nonpreferred, steps=args.steps)
            after = evaluate(policy, info.env_id, cost_threshold, episodes=args.episodes, seed=seed)
            row = {
                "task": info.env_id, "cost_threshold": cost_threshold, "seed": seed,
                "ref_normalized_reward": before.normalized_reward,
                "ref_normalized_cost": before.normalized_cost,
                "normalized_reward": after.normalized_reward,
                "normalized_cost": after.normalized_cost,
                "fit_wall_clock_s": retrofitter.train_wall_clock_s,
            }
            rows.append(row)
            print(", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()), flush=True)
    with (out / "results.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    for key in ("ref_normalized_reward", "ref_normalized_cost", "normalized_reward",
                "normalized_cost"):
        print(f"mean {key}: {np.mean([r[key] for r in rows]):.3f}")


if __name__ == "__main__":
    main(parse_args())
