"""BC on all transitions vs. BC weighted as segment feedback covers them: does coverage matter?

PreSa's π_ref is BC on all segments. A segment of length T starting uniformly where it fits in an
episode covers step t of an L-step episode ``min(t, L−T) − max(0, t−T+1) + 1`` times, so the
first (and last) T−1 steps of every episode are under-weighted: step 0 is seen once per T times a
mid-episode step is. This script trains the same deterministic [256, 256] BC actor (MSE, Adam
1e-3, batch 512; OSRL's BC-All) twice per seed on the same dataset, once sampling transitions
uniformly and once with those coverage weights, and evaluates both in the real environment.

    .venv/bin/python benchmarks/segment_coverage_bc.py \
        --dataset retrofit/data/default/SafetyBallCircle-v0-167-800.hdf5 \
        --task OfflineBallCircle-v0 --seeds 0 1 2

Prints a table (and writes it as CSV with ``--csv``): sampling, seed, MSE on all dataset
actions, MSE on the first 10 steps of each episode, normalised reward and cost.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

HEADER = "sampling,seed,mse_all,mse_first10,normalized_reward,normalized_cost,train_s"


def _csv_line(row: tuple) -> str:
    return ",".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in row)


def coverage_weights(episode_starts: np.ndarray, n: int, segment_length: int) -> np.ndarray:
    """How many length-``segment_length`` segments inside its episode cover each transition.

    Counts over exactly the starts :func:`retrofit.feedback.synthesis.valid_segment_starts` lets
    ``synthesize`` draw from, so the weights follow the feedback's own definition.
    """
    from retrofit.feedback.synthesis import valid_segment_starts

    counts = np.zeros(n)
    starts = valid_segment_starts(episode_starts, segment_length)
    np.add.at(counts, starts[:, None] + np.arange(segment_length), 1.0)
    return counts


def main() -> None:
    """Train and evaluate both samplings for every seed; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--task", required=True)
    parser.add_argument("--cost-threshold", type=float, default=20.0)
    parser.add_argument("--segment-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)

    from retrofit.data.dataset import TrajectoryDataset
    from retrofit.device import set_random_seed
    from retrofit.evaluation import evaluate
    from retrofit.policies.deterministic import DeterministicPolicy
    from retrofit.pretrain import action_bounds

    data = TrajectoryDataset.from_hdf5(args.dataset, task=args.task)
    obs, act = torch.as_tensor(data.observations), torch.as_tensor(data.actions)
    low, high = action_bounds(data)
    weights = {
        "uniform": torch.ones(len(obs)),
        "segment-coverage": torch.as_tensor(
            coverage_weights(data.episode_starts, len(obs), args.segment_length),
            dtype=torch.float32,
        ),
    }
    step_in_episode = np.arange(len(obs)) - np.repeat(
        data.episode_starts, np.diff([*data.episode_starts, len(obs)])
    )
    early = torch.as_tensor(step_in_episode < 10)
    rows = []
    print(HEADER)
    for seed in args.seeds:
        for name, w in weights.items():
            set_random_seed(seed)
            policy = DeterministicPolicy(obs.shape[1], act.shape[1], low, high)
            policy.set_observation_normalizer(data.observations.mean(0), data.observations.std(0))
            optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
            generator = torch.Generator().manual_seed(seed)
            start = time.perf_counter()
            for _ in range(args.steps):
                idx = torch.multinomial(w, args.batch_size, replacement=True, generator=generator)
                loss = (policy(obs[idx]) - act[idx]).square().sum(-1).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
            train_s = time.perf_counter() - start
            policy.eval()
            with torch.no_grad():
                err = (policy(obs) - act).square().mean(-1)
            res = evaluate(policy, args.task, args.cost_threshold, episodes=args.episodes,
                           seed=1000 + seed)
            row = (name, seed, float(err.mean()), float(err[early].mean()),
                   res.normalized_reward, res.normalized_cost, train_s)
            rows.append(row)
            print(_csv_line(row), flush=True)
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.csv.with_suffix(".csv.tmp")
        tmp.write_text("\n".join([HEADER, *map(_csv_line, rows)]) + "\n")
        tmp.replace(args.csv)  # atomic: a stopped run never leaves half a table


if __name__ == "__main__":
    main()
