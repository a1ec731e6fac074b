"""PREFINE's log-likelihoods when π_ref is a stable-baselines3 policy (issue 14).

For each SB3 algorithm: a fresh model on the real BallRun environment ([256, 256] MLP), its actor
behaviour-cloned on the top 30 % of the shipped BallRun episodes by reward (``sft-only`` through
the SB3 adapter, lr 1e-3, so the clone is still that SB3 model), then PREFINE from it on D_p /
D_np at κ = 20.
Reports the lowest and highest logged batch means of ``logps/dataset_{preferred,nonpreferred}``
and the implicit accuracies over the PREFINE steps, and the share of the data's action
components that lie on a bound (where a tanh-squashed density diverges).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/prefine_library_refs.py --algos SAC PPO TD3 \\
        --bc-steps 2000 --steps 1000 --json
"""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import torch

TASK = "OfflineBallRun-v0"


class _Extremes:
    """A ``MetricsLogger`` keeping min/max of the log-likelihoods and the last accuracies."""

    def __init__(self) -> None:
        self.low = {"preferred": math.inf, "nonpreferred": math.inf}
        self.high = {"preferred": -math.inf, "nonpreferred": -math.inf}
        self.accuracy: dict[str, float] = {}

    def log(self, step: int, metrics: dict[str, torch.Tensor]) -> None:
        """Record one step."""
        for side in self.low:
            value = float(metrics[f"logps/dataset_{side}"])
            self.low[side] = min(self.low[side], value)
            self.high[side] = max(self.high[side], value)
            self.accuracy[side] = float(metrics[f"accuracy/{side}"])

    def close(self) -> None:
        """Nothing to release."""


def main() -> None:
    """One JSON line (or a printed row) per SB3 algorithm."""
    import stable_baselines3 as sb3

    from retrofit import Retrofitter
    from retrofit.adapters import wrap
    from retrofit.data.dataset import TrajectoryDataset, action_bounds, share_on_bounds
    from retrofit.data.shipped import default_dataset_path
    from retrofit.envs import make_env
    from retrofit.methods.prefine import PrefineConfig, PrefineTrainer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--algos", nargs="+", default=["SAC", "PPO", "TD3"])
    parser.add_argument("--bc-steps", type=int, default=2000)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = TrajectoryDataset.from_hdf5(default_dataset_path(TASK), task=TASK)
    returns, _ = data.episode_returns()
    top = np.argsort(-returns)[: max(1, int(0.3 * data.n_episodes))]
    clone_set = data.select_episodes(sorted(int(i) for i in top))
    rest = data.select_episodes([int(np.argmin(returns))])
    preferred, nonpreferred = data.split_preferences(cost_threshold=20.0, seed=0)
    on_bound = share_on_bounds(data.actions, *action_bounds(data))
    for name in args.algos:
        cls = getattr(sb3, name)
        model = cls("MlpPolicy", make_env(TASK), seed=0, device="cpu",
                    policy_kwargs={"net_arch": [256, 256]})
        # behaviour cloning through the SB3 adapter: PREFINE's SFT term alone on the top 30 %
        # (`bc-all` would train a fresh retrofit policy, not this SB3 model); the non-preferred
        # set it requires is unused by that term
        cloned = Retrofitter(model, method="sft-only", device="cpu", seed=0,
                             progress=False, learning_rate=1e-3).fit(
            clone_set, rest, steps=args.bc_steps)
        log = _Extremes()
        config = PrefineConfig(steps=args.steps).resolved("bullet")
        PrefineTrainer(wrap(cloned), config, device="cpu", seed=0).fit(
            preferred, nonpreferred, logger=log, progress=False)
        row = {"algo": name, "bc_steps": args.bc_steps, "steps": args.steps,
               "action_components_on_a_bound": round(on_bound, 3),
               **{f"logp_{k}_min": round(v, 1) for k, v in log.low.items()},
               **{f"logp_{k}_max": round(v, 1) for k, v in log.high.items()},
               **{f"accuracy_{k}_last": round(v, 3) for k, v in log.accuracy.items()}}
        print(json.dumps(row) if args.json else row, flush=True)


if __name__ == "__main__":
    main()
