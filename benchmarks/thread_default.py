"""How much a PREFINE fit slows down when another CPU job runs, by torch thread count.

Issue 25 asks for the CLI's thread default to be chosen by measurement: a fit must not run more
than 1.5× slower when one other CPU job shares the machine. Each measurement is a fresh process
that times ``--steps`` PREFINE updates (paper setting: 256 + 256 states, [256, 256] clipped
Gaussian, Adam; BallRun-sized observations and actions) after a short warm-up. It runs

* alone,
* beside a busy loop (one pure-Python process spinning on one core),
* beside another training job (the same fit at one thread, restarted until the timed run ends),

at each thread count, interleaved round by round (the machine is shared and noisy: compare the
ratios within one run, not absolute seconds across runs).

    python benchmarks/thread_default.py                 # a table
    python benchmarks/thread_default.py --json          # one JSON object
    python benchmarks/thread_default.py --threads 1,2 --repeats 3 --steps 1500
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

COMPETITORS = ("none", "busy-loop", "training-job")
BUSY_LOOP = "while True:\n    pass\n"


def worker(threads: int, steps: int, forever: bool) -> None:
    """Time ``steps`` PREFINE updates at ``threads`` torch threads; print the seconds."""
    import numpy as np
    import torch

    from retrofit.adapters import wrap
    from retrofit.methods.prefine import PrefineConfig, PrefineTrainer
    from retrofit.policies.clipped_gaussian import ClippedGaussianPolicy

    torch.set_num_threads(threads)
    observation_dim, action_dim = 7, 2  # BallRun
    rng = np.random.default_rng(0)

    class Arrays:
        def __init__(self, n: int) -> None:
            self.observations = rng.standard_normal((n, observation_dim)).astype(np.float32)
            self.actions = rng.uniform(-0.99, 0.99, (n, action_dim)).astype(np.float32)
            self.episode_starts = np.arange(0, n + 1, 100)

    policy = ClippedGaussianPolicy(observation_dim, action_dim, -np.ones(action_dim),
                                   np.ones(action_dim), (256, 256), fixed_std=0.2)
    trainer = PrefineTrainer(wrap(policy), PrefineConfig(beta=0.2, sft_weight=0.3),
                             device=torch.device("cpu"))
    preferred, nonpreferred = Arrays(10_000), Arrays(2_000)
    trainer.fit(preferred, nonpreferred, steps=50, progress=False)  # warm-up
    while True:
        trainer.train_wall_clock_s = 0.0
        trainer.fit(preferred, nonpreferred, steps=steps, progress=False)
        if not forever:
            print(f"{trainer.train_wall_clock_s:.4f}", flush=True)
            return


def _python(code_or_args: list[str]) -> list[str]:
    return [sys.executable, *code_or_args]


def measure(threads: int, competitor: str, steps: int) -> float:
    """Seconds for ``steps`` updates at ``threads`` threads beside ``competitor``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    other = None
    if competitor == "busy-loop":
        other = subprocess.Popen(_python(["-c", BUSY_LOOP]))
    elif competitor == "training-job":
        other = subprocess.Popen(
            _python([__file__, "--worker", "1", "--steps", str(steps), "--forever"]),
            env={**os.environ, "OMP_NUM_THREADS": "1"}, stdout=subprocess.DEVNULL)
    try:
        if other is not None:
            time.sleep(3.0)  # let the competitor start (imports) and occupy its core
        out = subprocess.run(
            _python([__file__, "--worker", str(threads), "--steps", str(steps)]),
            env=env, capture_output=True, text=True, check=True)
        return float(out.stdout.strip().splitlines()[-1])
    finally:
        if other is not None:
            other.kill()
            other.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", default="1,2", help="thread counts, comma-separated")
    parser.add_argument("--steps", type=int, default=1500, help="timed PREFINE updates")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (interleaved)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--forever", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        worker(args.worker, args.steps, args.forever)
        return

    thread_counts = [int(t) for t in args.threads.split(",")]
    times: dict[tuple[int, str], list[float]] = {
        (t, c): [] for t in thread_counts for c in COMPETITORS}
    for round_ in range(args.repeats):
        order = list(times)
        if round_ % 2:
            order.reverse()
        for threads, competitor in order:
            times[(threads, competitor)].append(measure(threads, competitor, args.steps))
    rows = []
    fastest_alone = min(min(times[(t, "none")]) for t in thread_counts)
    for threads in thread_counts:
        alone = statistics.median(times[(threads, "none")])
        for competitor in COMPETITORS:
            median = statistics.median(times[(threads, competitor)])
            rows.append({"threads": threads, "competitor": competitor,
                         "median_s": round(median, 2),
                         "runs_s": [round(x, 2) for x in times[(threads, competitor)]],
                         "slowdown_vs_alone": round(median / alone, 2),
                         # against the best alone run of any thread count: what the user loses
                         "vs_fastest_alone": round(median / fastest_alone, 2)})
    result = {"steps": args.steps, "repeats": args.repeats, "cpus": os.cpu_count(),
              "rows": rows}
    if args.json:
        print(json.dumps(result))
        return
    print(f"{args.steps} PREFINE updates, {args.repeats} interleaved rounds, "
          f"{os.cpu_count()} CPUs")
    print(f"{'threads':>7}  {'competitor':<13} {'median s':>9}  {'vs alone':>8}  "
          f"{'vs fastest':>10}  runs")
    for row in rows:
        print(f"{row['threads']:>7}  {row['competitor']:<13} {row['median_s']:>9.2f}  "
              f"{row['slowdown_vs_alone']:>7.2f}×  {row['vs_fastest_alone']:>9.2f}×  "
              f"{row['runs_s']}")


if __name__ == "__main__":
    main()
