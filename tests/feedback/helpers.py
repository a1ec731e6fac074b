"""A small trajectory dataset whose per-step rewards and costs make segment sums easy to check."""

from __future__ import annotations

import numpy as np

from retrofit.data.dataset import TrajectoryDataset


def make_dataset(lengths=(12, 5, 10, 12), seed: int = 0) -> TrajectoryDataset:
    """Episodes of the given lengths; episode e has cost 1 per step iff e is odd.

    Rewards are integers (exact float sums); actions in [-0.9, 0.9].
    """
    rng = np.random.default_rng(seed)
    trajectories = []
    for e, n in enumerate(lengths):
        end = np.zeros(n, dtype=bool)
        end[-1] = True
        trajectories.append({
            "observations": rng.normal(size=(n, 3)).astype(np.float32),
            "next_observations": rng.normal(size=(n, 3)).astype(np.float32),
            "actions": rng.uniform(-0.9, 0.9, size=(n, 2)).astype(np.float32),
            "rewards": rng.integers(0, 10, size=n).astype(np.float32),
            "costs": np.full(n, float(e % 2), dtype=np.float32),
            "terminals": np.zeros(n, dtype=bool),
            "timeouts": end,
        })
    return TrajectoryDataset.from_trajectories(trajectories)
