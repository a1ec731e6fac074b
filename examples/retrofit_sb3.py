"""Retrofit a stable-baselines3 policy: train PPO on BallRun for reward only, make it safe with
PREFINE from offline preferences, evaluate before and after, and save a normal SB3 model.

    .venv/bin/python examples/retrofit_sb3.py                  # about 2-4 minutes on 2 CPU cores
    .venv/bin/python examples/retrofit_sb3.py --algo SAC --train-steps 10000
    .venv/bin/python examples/retrofit_sb3.py --small  # 15 s at OMP_NUM_THREADS=1

The saved ``runs/examples/sb3/<algo>_safe.zip`` loads with ``PPO.load`` (``SAC.load``, ...) in a
process that has never imported retrofit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from _cli import ExampleArgs, parse


@dataclass
class Args(ExampleArgs):
    """Settings of the example (each is also a command-line flag)."""

    algo: str = "PPO"
    """SB3 algorithm to train for reward only: PPO, A2C, SAC, TD3 or DDPG (off-policy ones are
    several times slower per step on CPU)."""
    train_steps: int = 20_000
    """Environment steps of reward-only training on BallRun."""
    cost_threshold: float = 10.0
    """κ of DSRL's normalised cost (BulletGym uses 10, 20, 40)."""
    prefine_steps: int = 2_000
    """PREFINE gradient steps (the paper runs 500k; a few thousand show the effect here)."""
    eval_episodes: int = 20
    """Evaluation episodes before and after (100 steps each)."""
    dataset: str = ""
    """DSRL-format HDF5 with the offline data; empty: the BallRun dataset shipped with retrofit."""
    out: str = "runs/examples/sb3"
    """Folder for the saved models and results."""
    seed: int = 0
    """Seeds SB3 training, the preference split and PREFINE."""


SMALL = {"train_steps": 10_240, "prefine_steps": 1_000, "eval_episodes": 5}
"""``--small``: five PPO rollouts (10,240 env steps), 1,000 PREFINE steps, 5 evaluation
episodes."""


def parse_args(args: Sequence[str] | None = None) -> Args:
    """Read ``Args`` from the command line (``args``; default ``sys.argv[1:]``)."""
    return parse(Args(), SMALL, description=__doc__, args=args)


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def main(args: Args) -> None:
    """Train, retrofit, evaluate and save."""
    import stable_baselines3 as sb3

    from retrofit import Retrofitter, TrajectoryDataset, evaluate
    from retrofit.data.shipped import default_dataset_path
    from retrofit.envs import make_env

    # ---- seeding and threads (one marked block)
    torch.set_num_threads(args.threads)
    sb3.common.utils.set_random_seed(args.seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    # 1. the user's policy: trained for reward only (costs are ignored by the env reward)
    cls = getattr(sb3, args.algo)
    model = cls("MlpPolicy", make_env("BallRun"), seed=args.seed, device="cpu", verbose=0)
    model.learn(args.train_steps)
    model.save(out / f"{args.algo.lower()}.zip")
    elapsed = time.perf_counter() - start
    print(f"trained {args.algo} for {args.train_steps} steps in {elapsed:.0f} s")

    # 2. offline preferences: safe, high-reward episodes vs unsafe ones (PREFINE §5.1)
    dataset = TrajectoryDataset.from_hdf5(args.dataset or default_dataset_path())
    preferred, nonpreferred = dataset.split_preferences(args.cost_threshold, seed=args.seed)

    before = evaluate(model, "BallRun", args.cost_threshold, args.eval_episodes, seed=args.seed)
    print("before:", before)

    # 3. retrofit: the same kind of object comes back
    retro = Retrofitter(model, seed=args.seed, device="cpu", progress=False)
    safe = retro.fit(preferred, nonpreferred, steps=args.prefine_steps)
    print(f"PREFINE: {args.prefine_steps} steps in {retro.train_wall_clock_s:.0f} s")

    after = evaluate(safe, "BallRun", args.cost_threshold, args.eval_episodes, seed=args.seed)
    print("after: ", after)

    path = out / f"{args.algo.lower()}_safe.zip"
    safe.save(path)
    write_json(out / "results.json", {"before": before.to_dict(), "after": after.to_dict()})
    print(f"saved {path} ({type(safe).__name__}.load works without retrofit); "
          f"total {time.perf_counter() - start:.0f} s")
    print(f"normalized reward {before.normalized_reward:.3f} -> {after.normalized_reward:.3f}, "
          f"normalized cost {before.normalized_cost:.3f} -> {after.normalized_cost:.3f}")


if __name__ == "__main__":
    main(parse_args())
