"""CPQ per-update time: retrofit's against OSRL's (osrl-lib 0.1.0), same data, batch and sizes.

osrl-lib pins torch 1.13, so it is no dependency of retrofit. Install it beside the project
without touching the project's environment, then point ``PYTHONPATH`` at that folder only for
this script (OSRL's CPQ imports scipy and wandb at module level):

    .venv/bin/python -m pip install --no-deps --target /tmp/osrl-site osrl-lib==0.1.0 \\
        pyrallis==0.3.1 fast-safe-rl==0.1.0 scipy==1.13.1
    .venv/bin/python -m pip install --target /tmp/osrl-site wandb
    PYTHONPATH=/tmp/osrl-site OMP_NUM_THREADS=1 .venv/bin/python benchmarks/cpq_vs_osrl.py \\
        --steps 100 --rounds 3 --json

Both train on the transitions of the shipped BallRun data (batch 512), with retrofit's CPQ
defaults mirrored in OSRL's constructor ([256, 256] actor and critics, VAE width 400, two reward
and two cost critics, 10 sampled actions; κ = 20, episode length 100). Rounds alternate the two
implementations (fresh models each round, ``--warmup`` untimed steps first); the table reports
ms/update per round, the medians and their ratio. Without osrl-lib it says how to install it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

TASK = "OfflineBallRun-v0"


def _osrl_round(data: dict[str, torch.Tensor], steps: int, warmup: int, cost_threshold: float,
                seed: int) -> float:
    """ms/update of a fresh OSRL CPQ over ``steps`` timed updates."""
    from osrl.algorithms import CPQ, CPQTrainer

    torch.manual_seed(seed)
    observation_dim, action_dim = data["obs"].shape[1], data["act"].shape[1]
    model = CPQ(observation_dim, action_dim, max_action=1.0, a_hidden_sizes=[256, 256],
                c_hidden_sizes=[256, 256], vae_hidden_sizes=400, sample_action_num=10,
                num_q=2, num_qc=2, cost_limit=int(cost_threshold), episode_len=100, device="cpu")
    trainer = CPQTrainer(model, env=None, critic_lr=1e-3, vae_lr=1e-3, reward_scale=0.1,
                         device="cpu")
    generator = torch.Generator().manual_seed(seed)
    n = len(data["obs"])

    def step() -> None:
        i = torch.randint(n, (512,), generator=generator)
        trainer.train_one_step(data["obs"][i], data["next_obs"][i], data["act"][i],
                               data["rewards"][i], data["costs"][i], data["dones"][i])

    return _ms_per_call(step, steps, warmup)


def _ms_per_call(step: Callable[[], object], steps: int, warmup: int) -> float:
    """Milliseconds per ``step()`` over ``steps`` timed calls after ``warmup`` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def _retrofit_round(dataset, steps: int, warmup: int, cost_threshold: float, seed: int) -> float:
    """ms/update of a fresh retrofit CPQ over ``steps`` timed updates (set-up excluded)."""
    from retrofit.adapters import wrap
    from retrofit.data.dataset import action_bounds
    from retrofit.methods.registry import get_method
    from retrofit.policies.gaussian import TanhGaussianPolicy

    trainer_cls, config_cls = get_method("cpq").load()
    policy = wrap(TanhGaussianPolicy(dataset.observation_dim, dataset.action_dim,
                                     *action_bounds(dataset)))
    config = config_cls(cost_threshold=cost_threshold, batch_size=512)
    trainer = trainer_cls(policy, config, device="cpu", seed=seed)
    return _ms_per_call(trainer.stages(dataset, steps=steps)[0].update, steps, warmup)


def main() -> None:
    """Print the table (or one JSON line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    try:
        import osrl.algorithms  # noqa: F401
    except ImportError as exc:
        sys.exit(f"osrl-lib is not importable ({exc}); see this script's docstring for how to "
                 "install it beside the project and set PYTHONPATH.")
    torch.set_num_threads(args.threads)
    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.data.shipped import default_dataset_path

    dataset = TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)
    ends = np.asarray(dataset.terminals, dtype=np.float32)
    data = {k: torch.as_tensor(np.asarray(v, dtype=np.float32)) for k, v in {
        "obs": dataset.observations, "next_obs": dataset.next_observations,
        "act": dataset.actions, "rewards": dataset.rewards, "costs": dataset.costs,
        "dones": ends}.items()}
    cost_threshold = 20.0
    osrl_ms, retrofit_ms = [], []
    for round_ in range(args.rounds):
        osrl_ms.append(_osrl_round(data, args.steps, args.warmup, cost_threshold, round_))
        retrofit_ms.append(_retrofit_round(dataset, args.steps, args.warmup, cost_threshold,
                                           round_))
    row = {"osrl_ms_per_update": [round(x, 1) for x in osrl_ms],
           "retrofit_ms_per_update": [round(x, 1) for x in retrofit_ms],
           "ratio_of_medians_retrofit_over_osrl": round(
               statistics.median(retrofit_ms) / statistics.median(osrl_ms), 3),
           "steps": args.steps, "rounds": args.rounds, "threads": args.threads,
           "batch_size": 512, "torch": torch.__version__}
    if args.json:
        print(json.dumps(row))
    else:
        for key, value in row.items():
            print(f"{key:<38} {value}")


if __name__ == "__main__":
    main()
