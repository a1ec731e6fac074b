"""Runs per hour: M PREFINE runs as one batched model vs the same M runs one after another.

Setting as ``benchmarks/prefine_step.py`` (HalfCheetah shapes, 256 + 256 states per step,
[256, 256] MLP, precomputed reference): for each M in ``--runs``, time ``--steps`` updates of
(a) ``fit_prefine_batched`` over M runs (seeds 0..M-1, each its own split) and (b) M separate
``PrefineTrainer`` fits of the same runs, one after another in this process. The two are
interleaved ``--repeats`` times (the machine is shared and noisy); the table reports medians.
``runs/hour`` is at the paper's 500k updates per run.

    OMP_NUM_THREADS=2 python benchmarks/batched_runs.py --runs 1 3 9 --steps 200 --repeats 3
    python benchmarks/batched_runs.py ... --json        # one JSON line per M
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from retrofit.adapters import wrap
from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
from retrofit.methods.prefine_batched import PrefineRun, fit_prefine_batched
from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy

PAPER_STEPS = 500_000


class _Arrays:
    def __init__(self, rng: np.random.Generator, n: int, observation_dim: int,
                 action_dim: int) -> None:
        self.observations = rng.standard_normal((n, observation_dim)).astype(np.float32)
        self.actions = rng.uniform(-1.0, 1.0, (n, action_dim)).clip(-0.9, 0.9).astype(np.float32)
        self.episode_starts = np.arange(0, n + 1, 100)


def _runs(count: int, observation_dim: int, action_dim: int) -> list[PrefineRun]:
    out = []
    for seed in range(count):
        rng = np.random.default_rng(seed)
        out.append(PrefineRun(_Arrays(rng, 20_000, observation_dim, action_dim),
                              _Arrays(rng, 20_000, observation_dim, action_dim), seed))
    return out


def _time_batched(reference, runs, config) -> float:
    start = time.perf_counter()
    fit_prefine_batched(reference, runs, config, device="cpu", progress=False)
    return time.perf_counter() - start


def _time_separate(reference, runs, config) -> float:
    total = 0.0
    for run in runs:
        trainer = PrefineTrainer(reference, config, device="cpu", seed=run.seed)
        start = time.perf_counter()
        trainer.fit(run.preferred, run.nonpreferred, progress=False)
        total += time.perf_counter() - start
    return total


def main() -> None:
    """Print the table (or JSON lines)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, nargs="+", default=[1, 3, 9])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--observation-dim", type=int, default=17)
    parser.add_argument("--action-dim", type=int, default=6)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    box = (args.observation_dim, args.action_dim, -np.ones(args.action_dim),
           np.ones(args.action_dim))
    reference = wrap(ClippedGaussianPolicy(*box, hidden_sizes=(256, 256), fixed_std=0.2))
    config = PrefineConfig(steps=args.steps, batch_size=args.batch_size).resolved("bullet")
    if not args.json:
        print(f"{'runs':>5} {'batched s':>10} {'separate s':>11} {'speed-up':>9} "
              f"{'runs/h batched':>15} {'runs/h separate':>16}")
    for count in args.runs:
        runs = _runs(count, args.observation_dim, args.action_dim)
        _time_batched(reference, runs, PrefineConfig(steps=5, batch_size=args.batch_size)
                      .resolved("bullet"))  # warm-up
        batched, separate = [], []
        for _ in range(args.repeats):
            batched.append(_time_batched(reference, runs, config))
            separate.append(_time_separate(reference, runs, config))
        tb, ts = statistics.median(batched), statistics.median(separate)
        per_run_b = tb / count / args.steps * PAPER_STEPS
        per_run_s = ts / count / args.steps * PAPER_STEPS
        row = {"runs": count, "steps": args.steps, "threads": args.threads,
               "batched_s": [round(x, 2) for x in batched],
               "separate_s": [round(x, 2) for x in separate],
               "speedup_median": round(ts / tb, 2),
               "ratios": [round(s / b, 2) for s, b in zip(separate, batched, strict=True)],
               "runs_per_hour_batched": round(3600 / per_run_b, 3),
               "runs_per_hour_separate": round(3600 / per_run_s, 3)}
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            print(f"{count:>5} {tb:>10.2f} {ts:>11.2f} {ts / tb:>8.2f}x "
                  f"{row['runs_per_hour_batched']:>15.3f} {row['runs_per_hour_separate']:>16.3f}",
                  flush=True)


if __name__ == "__main__":
    main()
