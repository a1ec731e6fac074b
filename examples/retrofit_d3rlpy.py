"""Retrofit a d3rlpy policy: train TD3+BC offline on BallRun for reward only, make it safe with
PREFINE from offline preferences, evaluate before and after, and save a normal d3rlpy file.

    .venv/bin/python examples/retrofit_d3rlpy.py               # about 2-4 minutes on 2 CPU cores
    .venv/bin/python examples/retrofit_d3rlpy.py --algo IQL
    .venv/bin/python examples/retrofit_d3rlpy.py --small  # 18 s at OMP_NUM_THREADS=1

The saved ``runs/examples/d3rlpy/<algo>_safe.d3`` loads with ``d3rlpy.load_learnable`` in a
process that has never imported retrofit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from _cli import ExampleArgs, parse


@dataclass
class Args(ExampleArgs):
    """Settings of the example (each is also a command-line flag)."""

    algo: str = "TD3PlusBC"
    """d3rlpy algorithm trained for reward only: TD3PlusBC, IQL, CQL or BC."""
    train_steps: int = 5_000
    """Offline gradient steps of reward-only training (costs are ignored)."""
    hidden: int = 64
    """Width of the two hidden layers of every d3rlpy network (small, for CPU)."""
    cost_threshold: float = 10.0
    """κ of DSRL's normalised cost (BulletGym uses 10, 20, 40)."""
    prefine_steps: int = 2_000
    """PREFINE gradient steps (the paper runs 500k; a few thousand show the effect here)."""
    eval_episodes: int = 20
    """Evaluation episodes before and after (100 steps each)."""
    dataset: str = ""
    """DSRL-format HDF5 with the offline data; empty: the BallRun dataset shipped with retrofit."""
    out: str = "runs/examples/d3rlpy"
    """Folder for the saved algorithms and results."""
    seed: int = 0
    """Seeds d3rlpy training, the preference split and PREFINE."""


SMALL = {"train_steps": 2_000, "eval_episodes": 5}
"""``--small``: 2,000 offline steps (PREFINE's 2,000 as by default), 5 evaluation episodes."""


def parse_args(args: Sequence[str] | None = None) -> Args:
    """Read ``Args`` from the command line (``args``; default ``sys.argv[1:]``)."""
    return parse(Args(), SMALL, description=__doc__, args=args)


def write_json(path: Path, payload: dict) -> None:
    """Write ``payload`` as JSON atomically (temp file + rename)."""
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, path)


def make_algo(args: Args, low: np.ndarray, high: np.ndarray) -> object:
    """The d3rlpy algorithm with small networks, standardised observations and env-box actions."""
    import d3rlpy

    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=[args.hidden, args.hidden])
    common = {
        "observation_scaler": d3rlpy.preprocessing.StandardObservationScaler(),
        "action_scaler": d3rlpy.preprocessing.MinMaxActionScaler(minimum=low, maximum=high),
    }
    if args.algo == "BC":
        return d3rlpy.algos.BCConfig(encoder_factory=enc, **common).create(device="cpu:0")
    nets = {"actor_encoder_factory": enc, "critic_encoder_factory": enc}
    if args.algo == "IQL":
        nets["value_encoder_factory"] = enc
    config_cls = getattr(d3rlpy.algos, f"{args.algo}Config")
    return config_cls(**nets, **common).create(device="cpu:0")


def main(args: Args) -> None:
    """Train, retrofit, evaluate and save."""
    import d3rlpy
    from d3rlpy.logging import NoopAdapterFactory

    from retrofit import Retrofitter, TrajectoryDataset, evaluate
    from retrofit.data.shipped import default_dataset_path
    from retrofit.pretrain import action_bounds

    # ---- seeding and threads (one marked block)
    torch.set_num_threads(args.threads)
    d3rlpy.seed(args.seed)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    # 1. the user's policy: offline RL on the dataset's rewards only (costs ignored)
    dataset = TrajectoryDataset.from_hdf5(args.dataset or default_dataset_path())
    low, high = action_bounds(dataset)
    mdp = d3rlpy.dataset.MDPDataset(
        dataset.observations, dataset.actions, dataset.rewards, dataset.terminals,
        timeouts=dataset.timeouts,
    )
    algo = make_algo(args, low, high)
    algo.fit(
        mdp, n_steps=args.train_steps, n_steps_per_epoch=args.train_steps, show_progress=False,
        logger_adapter=NoopAdapterFactory(),
    )
    name = args.algo.lower()
    algo.save(str(out / f"{name}.d3"))
    elapsed = time.perf_counter() - start
    print(f"trained {args.algo} for {args.train_steps} steps in {elapsed:.0f} s")

    # 2. offline preferences: safe, high-reward episodes vs unsafe ones (PREFINE §5.1)
    preferred, nonpreferred = dataset.split_preferences(args.cost_threshold, seed=args.seed)

    before = evaluate(algo, "BallRun", args.cost_threshold, args.eval_episodes, seed=args.seed)
    print("before:", before)

    # 3. retrofit: the same kind of object comes back
    retro = Retrofitter(algo, seed=args.seed, device="cpu", progress=False)
    safe = retro.fit(preferred, nonpreferred, steps=args.prefine_steps)
    print(f"PREFINE: {args.prefine_steps} steps in {retro.train_wall_clock_s:.0f} s")

    after = evaluate(safe, "BallRun", args.cost_threshold, args.eval_episodes, seed=args.seed)
    print("after: ", after)

    path = out / f"{name}_safe.d3"
    safe.save(str(path))
    write_json(out / "results.json", {"before": before.to_dict(), "after": after.to_dict()})
    print(f"saved {path} (d3rlpy.load_learnable works without retrofit); "
          f"total {time.perf_counter() - start:.0f} s")
    print(f"normalized reward {before.normalized_reward:.3f} -> {after.normalized_reward:.3f}, "
          f"normalized cost {before.normalized_cost:.3f} -> {after.normalized_cost:.3f}")


if __name__ == "__main__":
    main(parse_args())
