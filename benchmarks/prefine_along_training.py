"""PREFINE along training on one cell: rollout score of the raw and of the EMA-averaged weights.

    OMP_NUM_THREADS=1 python benchmarks/prefine_along_training.py CarRun --seed 0 \\
        --out runs/retrofit-vs-scratch [--holdout 0.2] [--ema 0.999] [--json]

Uses the task's π_ref of ``--seed`` from a ``scripts/retrofit_vs_scratch.py`` folder and the
same D_p/D_np split (κ = 20). Every ``--every`` updates it rolls out the current weights and an
exponential moving average of them (``torch.optim.swa_utils``) for ``--episodes`` deterministic
episodes (seeds 10 000 + seed, as the harness's checkpoint evaluations), and, with
``--holdout``, scores the mean log-likelihood of held-out D_p / D_np trajectories (trained on
the rest). Rollouts are for reading only: nothing here selects a checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from retrofit import TrajectoryDataset, evaluate
from retrofit.adapters import wrap
from retrofit.policies.io import load_policy
from retrofit.retrofitter import Retrofitter
from retrofit.suite.runner import find_data, settings_for


def _split(data, fraction: float, seed: int):
    if fraction <= 0:
        return data, None
    rng = np.random.default_rng(seed)
    held = set(rng.choice(data.n_episodes, max(1, round(fraction * data.n_episodes)),
                          replace=False).tolist())
    keep = [i for i in range(data.n_episodes) if i not in held]
    return data.select_episodes(keep), data.select_episodes(sorted(held))


def _loglik(policy, data) -> float | None:
    if data is None:
        return None
    adapter = policy if hasattr(policy, "log_prob") else wrap(policy)
    with torch.no_grad():
        return float(adapter.log_prob(torch.as_tensor(data.observations, dtype=torch.float32),
                                      torch.as_tensor(data.actions, dtype=torch.float32)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--method", default="prefine")
    parser.add_argument("--sft-weight", type=float, default=0.3)
    parser.add_argument("--learning-rate", type=float, default=3e-4)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--every", type=int, default=2_000)
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--holdout", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=Path("runs/retrofit-vs-scratch"))
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--top-fraction", type=float, default=0.5,
                        help="D_p's pool (0.5, the better half of SAFE: the split of the "
                             "committed curves; 0: the N_p best, the library default now)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    settings = settings_for(args.task)
    data = TrajectoryDataset.from_hdf5(find_data(settings).path)
    preferred, nonpreferred = data.split_preferences(20, n_preferred=100, n_nonpreferred=20,
                                                     seed=args.seed, top_fraction=args.top_fraction)
    train_p, held_p = _split(preferred, args.holdout, 123)
    train_n, held_n = _split(nonpreferred, args.holdout, 123)
    reference = load_policy(args.out / args.task / "reference" / f"seed{args.seed}.pt")
    state: dict[str, AveragedModel] = {}

    def callback(step: int, trainer) -> None:
        module = trainer.policy.module
        if "ema" not in state:
            state["ema"] = AveragedModel(module, multi_avg_fn=get_ema_multi_avg_fn(args.ema),
                                         use_buffers=True)
        state["ema"].update_parameters(module)
        if step % args.every:
            return
        row: dict[str, float | int | None] = {"step": step}
        for name, policy in (("raw", trainer.policy), ("ema", copy.deepcopy(trainer.policy))):
            if name == "ema":
                policy.module.load_state_dict(state["ema"].module.state_dict())
            was_training = policy.module.training
            policy.train(False)
            result = evaluate(policy, data.task, 20, episodes=args.episodes,
                              seed=10_000 + args.seed)
            row[f"{name}_reward"] = round(result.normalized_reward, 3)
            row[f"{name}_cost"] = round(result.normalized_cost, 3)
            row[f"{name}_loglik_heldout_p"] = _loglik(policy, held_p)
            row[f"{name}_loglik_heldout_np"] = _loglik(policy, held_n)
            policy.train(was_training)
        print(json.dumps(row) if args.json else "  ".join(f"{k}={v}" for k, v in row.items()),
              flush=True)

    extra = {"sft_weight": args.sft_weight} if args.method == "prefine" else {}
    fitter = Retrofitter(reference, args.method, device="cpu", seed=args.seed, progress=False,
                         learning_rate=args.learning_rate, **extra)
    fitter.fit(train_p, train_n, steps=args.steps, callback=callback, callback_every=1)


if __name__ == "__main__":
    main()
