"""Environment steps per second of DSRL tasks, and what a suite collection would cost at that speed.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/env_speed.py --tasks AntRun PointGoal1 \
        --steps 1000 --csv docs/results/suite/env_speed.csv

Each task's environment is stepped with uniform random actions (seeded), resetting when an
episode ends; creation time is excluded. The lower bound of a collection's wall-clock is
``(runs × PPO steps + episodes × episode length) / steps per second`` from the task's suite
settings: PPO's own updates come on top (BallRun: 560 PPO steps/s against ≈ 1500 env steps/s).
"""

from __future__ import annotations

import argparse
import csv
import io
import time
from pathlib import Path

import numpy as np

from retrofit.atomic import atomic_write_text
from retrofit.envs import make_env, step_env
from retrofit.suite.settings import SETTINGS, settings_for
from retrofit.tasks import task_info

COLUMNS = ("task", "env_steps_per_s", "steps", "collection_env_steps", "collection_lower_bound_h")


def measure(task: str, steps: int, seed: int = 0) -> dict[str, float | str]:
    """Random-action steps per second of ``task`` and the collection lower bound in hours."""
    env = make_env(task)
    try:
        env.action_space.seed(seed)
        env.reset(seed=seed)
        tic = time.perf_counter()
        for _ in range(steps):
            _, _, _, terminated, truncated, _ = step_env(env, env.action_space.sample())
            if terminated or truncated:
                env.reset()
        rate = steps / (time.perf_counter() - tic)
    finally:
        env.close()
    s = settings_for(task)
    c = s.collection
    total = c.runs * c.train_steps + c.episodes * task_info(task).max_episode_steps
    return {"task": s.name, "env_steps_per_s": round(rate, 1), "steps": steps,
            "collection_env_steps": total,
            "collection_lower_bound_h": round(total / rate / 3600, 2)}


def main() -> None:
    """Measure the given tasks (default: all 29) and print / write a CSV."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=[s.name for s in SETTINGS.values()])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--csv", type=Path)
    args = parser.parse_args()
    rows = []
    for task in args.tasks:
        row = measure(task, args.steps)
        print(row, flush=True)
        rows.append(row)
    if args.csv is not None:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.csv, buffer.getvalue())
    print(f"median {np.median([r['env_steps_per_s'] for r in rows]):.0f} steps/s")


if __name__ == "__main__":
    main()
