"""Flat transitions (s, a, r, c, s', d) of one or more trajectory sets, kept on the device.

Used by the baselines that learn from transitions (CPQ, SafeDICE, BC-All, BC-Safe). Datasets are
``TrajectoryDataset``-like: the seven DSRL arrays plus ``episode_starts``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from retrofit.errors import DataError

_FIELDS = ("observations", "next_observations", "actions", "rewards", "costs", "terminals")


def _concat(datasets: tuple[Any, ...], name: str) -> dict[str, np.ndarray]:
    if not datasets:
        raise DataError(f"{name}: no data; pass at least one TrajectoryDataset.")
    out: dict[str, list[np.ndarray]] = {k: [] for k in (*_FIELDS, "first")}
    for i, data in enumerate(datasets):
        missing = [k for k in (*_FIELDS, "episode_starts") if not hasattr(data, k)]
        if missing:
            raise DataError(
                f"{name}[{i}] ({type(data).__name__}) has no {missing}: pass a "
                "retrofit.TrajectoryDataset (DSRL arrays with rewards, costs and terminals)."
            )
        n = len(data.observations)
        if n == 0:
            raise DataError(f"{name}[{i}] is empty.")
        for key in _FIELDS:
            out[key].append(np.asarray(getattr(data, key)))
        first = np.zeros(n, dtype=bool)
        first[np.asarray(data.episode_starts)[:-1]] = True
        out["first"].append(first)
    return {k: np.concatenate(v) for k, v in out.items()}


class Transitions:
    """Tensors of all transitions of ``datasets`` on ``device`` with a seeded uniform sampler.

    ``obs``, ``next_obs``, ``act`` ``(N, ·)``; ``rewards``, ``costs``, ``dones`` ``(N,)`` float;
    ``initial_obs`` the first observation of every episode. ``obs_mean``/``obs_std`` are numpy
    statistics of ``obs`` (for network normalisers).
    """

    def __init__(self, *datasets: Any, device: torch.device, seed: int = 0,
                 name: str = "data") -> None:
        arrays = _concat(datasets, name)
        self.device = device
        self.obs_mean = arrays["observations"].mean(axis=0)
        self.obs_std = arrays["observations"].std(axis=0)

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x, dtype=np.float32), device=device)

        self.obs = tensor(arrays["observations"])
        self.next_obs = tensor(arrays["next_observations"])
        self.act = tensor(arrays["actions"])
        self.rewards = tensor(arrays["rewards"])
        self.costs = tensor(arrays["costs"])
        self.dones = tensor(arrays["terminals"])
        self.initial_obs = self.obs[torch.as_tensor(arrays["first"], device=device)]
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(seed)

    def __len__(self) -> int:
        return int(self.obs.shape[0])

    def index(self, batch_size: int, n: int | None = None) -> torch.Tensor:
        """``batch_size`` uniform indices in ``[0, n)`` (default: all transitions)."""
        n = len(self) if n is None else n
        return torch.randint(n, (batch_size,), generator=self._generator, device=self.device)


def episodes_within_cost(datasets: tuple[Any, ...], cost_limit: float) -> tuple[Any, ...]:
    """The episodes of ``datasets`` whose cost return is ``≤ cost_limit`` (OSRL's BC-Safe filter).

    Datasets left with no such episode are dropped; it is an error if none has any.
    """
    kept, lowest = [], float("inf")
    for data in datasets:
        _, costs = data.episode_returns()
        keep = np.flatnonzero(np.asarray(costs) <= cost_limit)
        lowest = min(lowest, float(np.min(costs)))
        if keep.size:
            kept.append(data.select_episodes(keep.tolist()))
    if not kept:
        raise DataError(
            f"no episode has cost return <= cost_limit={cost_limit} (lowest: {lowest:.2f}); "
            "raise cost_limit or use bc-all."
        )
    return tuple(kept)
