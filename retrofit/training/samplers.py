"""Minibatches of (state, action) pairs from two trajectory sets, kept on the training device.

Two documented sampling schemes (spec/methods.md, PREFINE step 1):
- ``"transitions"``: ``B`` pairs uniformly from each side (default; the same estimator as the
  paper's, with a fixed batch shape).
- ``"trajectories"``: ``k`` whole trajectories from each side and all their steps (Algorithm 1).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch

from retrofit.errors import DataError

Sampling = Literal["transitions", "trajectories"]


def _as_arrays(data: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for field in ("observations", "actions"):
        if not hasattr(data, field):
            raise DataError(
                f"{name} has no {field!r}: pass a retrofit.TrajectoryDataset (or an object with "
                "observations, actions and episode_starts arrays)."
            )
    obs = np.asarray(data.observations, dtype=np.float32)
    act = np.asarray(data.actions, dtype=np.float32)
    if len(obs) == 0:
        raise DataError(f"{name} is empty: it needs at least one transition.")
    starts = np.asarray(getattr(data, "episode_starts", np.array([0, len(obs)])), dtype=np.int64)
    return obs, act, starts


class PairedBatcher:
    """Draws a preferred and a non-preferred minibatch as one concatenated tensor pair."""

    def __init__(
        self,
        preferred: Any,
        nonpreferred: Any,
        batch_size: int,
        device: torch.device,
        seed: int = 0,
        sampling: Sampling = "transitions",
    ) -> None:
        obs_p, act_p, starts_p = _as_arrays(preferred, "preferred")
        obs_n, act_n, starts_n = _as_arrays(nonpreferred, "nonpreferred")
        if obs_p.shape[1:] != obs_n.shape[1:] or act_p.shape[1:] != act_n.shape[1:]:
            raise DataError(
                f"preferred and nonpreferred disagree on shapes: observations {obs_p.shape[1:]} vs "
                f"{obs_n.shape[1:]}, actions {act_p.shape[1:]} vs {act_n.shape[1:]}."
            )
        if sampling not in ("transitions", "trajectories"):
            raise DataError(f"sampling={sampling!r}: use 'transitions' or 'trajectories'.")
        self.batch_size = batch_size
        self.sampling = sampling
        self.device = device
        self.n_preferred = len(obs_p)
        self.n_nonpreferred = len(obs_n)
        self.obs = torch.as_tensor(np.concatenate([obs_p, obs_n]), device=device)
        self.act = torch.as_tensor(np.concatenate([act_p, act_n]), device=device)
        self._starts = (starts_p, starts_n + len(obs_p))
        self._generator = torch.Generator(device=device)
        self._generator.manual_seed(seed)
        self._rng = np.random.default_rng(seed)

    def _transition_index(self) -> tuple[torch.Tensor, int]:
        b = self.batch_size
        gen, dev = self._generator, self.device
        idx_p = torch.randint(self.n_preferred, (b,), generator=gen, device=dev)
        idx_n = torch.randint(self.n_nonpreferred, (b,), generator=gen, device=dev)
        return torch.cat([idx_p, idx_n + self.n_preferred]), b

    def _trajectory_index(self) -> tuple[torch.Tensor, int]:
        parts = []
        for starts in self._starts:
            episodes = self._rng.integers(0, len(starts) - 1, size=self.batch_size)
            parts.append(np.concatenate([np.arange(starts[e], starts[e + 1]) for e in episodes]))
        index = torch.as_tensor(np.concatenate(parts), device=self.device)
        return index, len(parts[0])

    def sample(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        """Return ``(obs, actions, n_preferred_rows)``: preferred rows first, then non-preferred."""
        if self.sampling == "transitions":
            index, n_pref = self._transition_index()
        else:
            index, n_pref = self._trajectory_index()
        return self.obs[index], self.act[index], n_pref
