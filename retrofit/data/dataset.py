"""``TrajectoryDataset``: DSRL-format transitions grouped into episodes.

The arrays are flat over N transitions exactly as in DSRL files (``observations``,
``next_observations``, ``actions``, ``rewards``, ``costs``, ``terminals``, ``timeouts``); an episode
ends at every step where ``terminals | timeouts``. Every constructor validates the data
(:mod:`retrofit.data.validation`) and never clips, drops or reorders transitions.
"""

from __future__ import annotations

import copy
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from retrofit.data import hdf5
from retrofit.data.splits import DEFAULT_TOP_FRACTION, preference_split_indices
from retrofit.data.validation import (
    DSRL_KEYS,
    canonical_task,
    check_metadata,
    validate_arrays,
)
from retrofit.errors import DataError


class TrajectoryDataset:
    """Offline safe-RL transitions in DSRL's format, with episode boundaries.

    Attributes are the seven DSRL arrays (``float32`` except the ``bool`` flags), ``episode_starts``
    (``int64`` offsets, episode ``i`` is ``[starts[i], starts[i + 1])``), ``task`` (DSRL env id or
    ``None``), ``metadata`` (JSON-able dict, saved as HDF5 attributes) and ``action_low`` /
    ``action_high`` (the bounds given by the caller, else ``None``; a task's own bounds are taken
    from its environment when needed). The dataset owns its arrays: ``from_arrays`` copies its
    input.
    """

    observations: np.ndarray
    next_observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    costs: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray
    episode_starts: np.ndarray
    task: str | None
    metadata: dict[str, Any]
    action_low: np.ndarray | None
    action_high: np.ndarray | None

    def __init__(
        self,
        observations: np.ndarray,
        next_observations: np.ndarray,
        actions: np.ndarray,
        rewards: np.ndarray,
        costs: np.ndarray,
        terminals: np.ndarray,
        timeouts: np.ndarray,
        *,
        task: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        action_low: np.ndarray | float | None = None,
        action_high: np.ndarray | float | None = None,
    ) -> None:
        self.task = canonical_task(task)
        self.metadata = check_metadata(metadata)
        data = {
            "observations": observations,
            "next_observations": next_observations,
            "actions": actions,
            "rewards": rewards,
            "costs": costs,
            "terminals": terminals,
            "timeouts": timeouts,
        }
        arrays, starts = validate_arrays(data, self.task, action_low, action_high)
        for key, value in arrays.items():
            setattr(self, key, value)
        self.episode_starts = starts
        self.action_low = _optional_bounds(action_low, self.action_dim)
        self.action_high = _optional_bounds(action_high, self.action_dim)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_arrays(
        cls,
        data: Mapping[str, np.ndarray],
        task: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        action_low: np.ndarray | float | None = None,
        action_high: np.ndarray | float | None = None,
    ) -> TrajectoryDataset:
        """Build a dataset from a mapping with DSRL's keys (a copy; keys beyond DSRL's are ignored).

        ``env.get_dataset()``'s dict from ``dsrl`` is accepted as it is. The constructor itself
        (``TrajectoryDataset(observations, ...)``) keeps arrays of the right dtype without copying.
        """
        if not isinstance(data, Mapping):
            raise DataError(
                f"data must be a mapping of DSRL keys to arrays; got {type(data).__name__}."
            )
        missing = [k for k in DSRL_KEYS if k not in data]
        if missing:
            raise DataError(
                f"missing key(s) {missing}; found {sorted(data)}. A DSRL dataset needs all of "
                f"{list(DSRL_KEYS)} (terminals and timeouts as 0/1 flags per step)."
            )
        copied = {k: np.array(data[k], copy=True) for k in DSRL_KEYS}
        return cls(
            **copied,
            task=task,
            metadata=metadata,
            action_low=action_low,
            action_high=action_high,
        )

    @classmethod
    def from_hdf5(
        cls,
        path: str | os.PathLike[str],
        task: str | None = None,
        action_low: np.ndarray | float | None = None,
        action_high: np.ndarray | float | None = None,
    ) -> TrajectoryDataset:
        """Load a DSRL-format HDF5 file (DSRL's own or one written by :meth:`to_hdf5`).

        The arrays equal those of ``dsrl``'s ``env.get_dataset(h5path=path)`` (same float32 casts;
        the flags as ``bool``). ``task``/bounds given here override those stored in the file.
        """
        arrays, extras = hdf5.read_hdf5(path)
        return cls(
            **arrays,
            task=task if task is not None else extras["task"],
            metadata=extras["metadata"],
            action_low=action_low if action_low is not None else extras["action_low"],
            action_high=action_high if action_high is not None else extras["action_high"],
        )

    @classmethod
    def from_dsrl(
        cls,
        task: str,
        h5path: str | None = None,
        download: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> TrajectoryDataset:
        """Load DSRL's own data file for ``task`` with ``dsrl``'s loader, downloading it if needed.

        Where the file is looked for, in order: ``h5path``; DSRL's folder (``$DSRL_DATASET_DIR``,
        else ``dsrl``'s cache ``~/.dsrl/datasets``) under DSRL's file name, e.g.
        ``SafetyBallRun-v0-80-940.hdf5``; with ``download=True``, ``huggingface_hub``'s cache
        (``cache_dir``, default ``HF_HUB_CACHE``), where ``hf_hub_download`` fetches it from
        DSRL's dataset ``YYY-45/DSRL`` when it is not there yet
        (:func:`retrofit.data.dsrl_files.fetch_dsrl_file`). Offline and without the file, the
        ``DataError`` names the file, its URL and the folder to put it in. A file found by name
        is checked against its SHA-256 (:func:`retrofit.data.dsrl_files.check_dsrl_file`).
        """
        from retrofit.data import dsrl_files
        from retrofit.envs import make_env

        env_id = str(canonical_task(task))
        if h5path is None:
            entry = dsrl_files.dsrl_file(env_id)
            local = dsrl_files.dsrl_folder() / entry.filename
            if local.is_file():
                dsrl_files.check_dsrl_file(local, entry.sha256)
                h5path = str(local)
            elif download:
                h5path = str(dsrl_files.fetch_dsrl_file(env_id, cache_dir=cache_dir))
            else:
                raise DataError(
                    f"h5path={str(local)!r}: DSRL's data file for {env_id} is not there and "
                    f"download=False. Put the file there (DSRL's URL is "
                    f"{dsrl_files.dsrl_url(entry.filename)}), pass download=True or h5path=..., "
                    f"or make DSRL-format data for {env_id} with `retrofit collect`."
                )
        elif not pathlib.Path(h5path).is_file():
            raise DataError(f"h5path={h5path!r}: no such file.")
        env = make_env(env_id)
        try:
            try:
                data = env.unwrapped.get_dataset(h5path=h5path)
            except (AssertionError, KeyError, OSError) as exc:
                raise DataError(f"dsrl could not read {h5path!r}: {exc!r}") from exc
        finally:
            env.close()
        return cls.from_arrays(data, task=env_id, metadata={"source": str(h5path)})

    @classmethod
    def from_trajectories(
        cls,
        trajectories: Sequence[Mapping[str, np.ndarray]],
        task: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TrajectoryDataset:
        """Concatenate episodes, each a mapping of per-step arrays with DSRL's keys.

        Each trajectory must end an episode at its last step (terminal or timeout) and nowhere
        before, so that episode ``i`` of the result is ``trajectories[i]``.
        """
        if isinstance(trajectories, Mapping) or len(trajectories) == 0:
            raise DataError(
                "trajectories must be a non-empty sequence of dicts of per-step arrays; got "
                f"{type(trajectories).__name__} of length {len(trajectories)}."
            )
        keys = set(trajectories[0])
        missing = [k for k in DSRL_KEYS if k not in keys]
        if missing:
            raise DataError(
                f"trajectories[0]: missing key(s) {missing}; found {sorted(keys)}. Each "
                f"trajectory needs {list(DSRL_KEYS)}."
            )
        for i, traj in enumerate(trajectories):
            if set(traj) != keys:
                raise DataError(
                    f"trajectories[{i}]: keys {sorted(traj)} differ from trajectories[0]'s "
                    f"{sorted(keys)}; every trajectory must have the same keys."
                )
            lengths = {k: len(np.asarray(traj[k])) for k in DSRL_KEYS}
            if len(set(lengths.values())) != 1 or 0 in lengths.values():
                raise DataError(
                    f"trajectories[{i}]: per-key lengths {lengths} must be equal and non-zero."
                )
            done = np.asarray(traj["terminals"]).astype(bool) | np.asarray(traj["timeouts"]).astype(
                bool
            )
            done = done.reshape(len(done), -1).any(axis=1)
            if not done[-1] or done[:-1].any():
                where = np.flatnonzero(done).tolist()
                raise DataError(
                    f"trajectories[{i}]: terminals|timeouts is set at steps {where} of "
                    f"{len(done)}; it must be set at the last step only (mark a time-limit cut "
                    "with timeouts[-1] = True; split episodes that end earlier)."
                )
        data = {k: np.concatenate([np.asarray(t[k]) for t in trajectories]) for k in DSRL_KEYS}
        return cls(**data, task=task, metadata=metadata)

    # ------------------------------------------------------------------ saving
    def to_hdf5(
        self, path: str | os.PathLike[str], compression: str | None = "gzip"
    ) -> pathlib.Path:
        """Write DSRL's exact keys (readable by ``dsrl``) plus our attributes, atomically.

        The data are validated again first, so arrays corrupted in place since construction
        raise :class:`DataError` and leave an existing file untouched.
        """
        arrays, _ = validate_arrays(self.to_dict(), self.task, self.action_low, self.action_high)
        metadata = check_metadata(self.metadata)
        return hdf5.write_hdf5(
            path,
            arrays,
            task=self.task,
            metadata=metadata,
            action_low=self.action_low,
            action_high=self.action_high,
            compression=compression,
        )

    def to_dict(self) -> dict[str, np.ndarray]:
        """Return the seven DSRL arrays (the dataset's own, not copies) keyed as in DSRL."""
        return {k: getattr(self, k) for k in DSRL_KEYS}

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        """Number of transitions."""
        return int(self.observations.shape[0])

    @property
    def n_episodes(self) -> int:
        """Number of episodes."""
        return int(len(self.episode_starts) - 1)

    @property
    def observation_dim(self) -> int:
        """Observation size."""
        return int(self.observations.shape[1])

    @property
    def action_dim(self) -> int:
        """Action size."""
        return int(self.actions.shape[1])

    @property
    def episode_lengths(self) -> np.ndarray:
        """Number of transitions of each episode (``int64``)."""
        return np.diff(self.episode_starts)

    def __repr__(self) -> str:
        return (
            f"TrajectoryDataset(task={self.task!r}, n_episodes={self.n_episodes}, "
            f"n_transitions={len(self)}, observation_dim={self.observation_dim}, "
            f"action_dim={self.action_dim})"
        )

    # ------------------------------------------------------------------ episodes
    def episode_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(reward_returns, cost_returns)``, one undiscounted float64 sum per episode."""
        starts = self.episode_starts[:-1]
        rewards = np.add.reduceat(self.rewards.astype(np.float64), starts)
        costs = np.add.reduceat(self.costs.astype(np.float64), starts)
        return rewards, costs

    def episode(self, i: int) -> dict[str, np.ndarray]:
        """Return episode ``i``'s arrays as read-only views keyed as in DSRL."""
        i = self._check_episode_index(i, "i")
        lo, hi = int(self.episode_starts[i]), int(self.episode_starts[i + 1])
        out = {}
        for key in DSRL_KEYS:
            view = getattr(self, key)[lo:hi]
            view.flags.writeable = False
            out[key] = view
        return out

    def select_episodes(self, indices: Sequence[int]) -> TrajectoryDataset:
        """Return a new dataset of the given episodes, in the given order (repeats are kept).

        ``task``, the bounds and a copy of ``metadata`` carry over.
        """
        idx = np.asarray(indices)
        if idx.ndim != 1 or idx.size == 0:
            raise DataError(
                f"indices: expected a non-empty 1-D sequence of episode indices; got shape "
                f"{idx.shape}."
            )
        if not np.issubdtype(idx.dtype, np.integer):
            raise DataError(f"indices: must be integers; got dtype {idx.dtype}.")
        for i in idx:
            self._check_episode_index(int(i), "indices")
        starts = self.episode_starts
        rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in idx])
        return TrajectoryDataset(
            **{k: getattr(self, k)[rows] for k in DSRL_KEYS},
            task=self.task,
            metadata=copy.deepcopy(self.metadata),
            action_low=self.action_low,
            action_high=self.action_high,
        )

    def _check_episode_index(self, i: int, name: str) -> int:
        if isinstance(i, bool) or not isinstance(i, int | np.integer):
            raise DataError(f"{name}: episode index {i!r} must be an integer.")
        if not 0 <= i < self.n_episodes:
            raise DataError(
                f"{name}: episode index {i} is out of range; the dataset has "
                f"{self.n_episodes} episodes (valid indices 0..{self.n_episodes - 1})."
            )
        return int(i)

    def split_preferences(
        self,
        cost_threshold: float,
        n_preferred: int = 100,
        n_nonpreferred: int = 20,
        seed: int = 0,
        *,
        top_fraction: float = DEFAULT_TOP_FRACTION,
        n_strata: int = 10,
        unsafe_pool: int = 100,
        nonpreferred_pool: str = "highest-cost",
    ) -> tuple[TrajectoryDataset, TrajectoryDataset]:
        """Split into PREFINE's preferred ``D_p`` and non-preferred ``D_np`` (PREFINE §5.1).

        See :func:`retrofit.data.splits.preference_split_indices` for the protocol. Each returned
        dataset keeps its episodes in original order and carries the split report in
        ``metadata["split"]`` (with ``"role"``: ``"preferred"`` or ``"nonpreferred"``).
        """
        rewards, costs = self.episode_returns()
        preferred, nonpreferred, report = preference_split_indices(
            rewards,
            costs,
            cost_threshold,
            n_preferred=n_preferred,
            n_nonpreferred=n_nonpreferred,
            seed=seed,
            top_fraction=top_fraction,
            n_strata=n_strata,
            unsafe_pool=unsafe_pool,
            nonpreferred_pool=nonpreferred_pool,
        )
        d_p = self.select_episodes(preferred)
        d_np = self.select_episodes(nonpreferred)
        d_p.metadata["split"] = {**copy.deepcopy(report), "role": "preferred"}
        d_np.metadata["split"] = {**copy.deepcopy(report), "role": "nonpreferred"}
        return d_p, d_np

    def summary(self) -> dict[str, Any]:
        """Return counts and the mean/min/max of episode reward and cost returns and lengths."""
        rewards, costs = self.episode_returns()
        lengths = self.episode_lengths
        out: dict[str, Any] = {
            "task": self.task,
            "n_transitions": len(self),
            "n_episodes": self.n_episodes,
            "observation_dim": self.observation_dim,
            "action_dim": self.action_dim,
            "n_terminals": int(self.terminals.sum()),
            "n_timeouts": int(self.timeouts.sum()),
        }
        for name, values in (
            ("reward_return", rewards),
            ("cost_return", costs),
            ("episode_length", lengths),
        ):
            out[f"{name}_mean"] = float(values.mean())
            out[f"{name}_min"] = float(values.min())
            out[f"{name}_max"] = float(values.max())
        return out


def _optional_bounds(value: np.ndarray | float | None, action_dim: int) -> np.ndarray | None:
    if value is None:
        return None
    arr = np.asarray(value, dtype=np.float32)
    return np.full(action_dim, arr, dtype=np.float32) if arr.ndim == 0 else arr.copy()


BOUND_TOLERANCE = 1e-6  # within this share of the half range of a bound counts as "on" it


def share_on_bounds(actions: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of action components lying on a bound of the box ``[low, high]`` (within
    ``BOUND_TOLERANCE`` half-ranges; 0 for no actions). Clipped exploration noise puts 16–33 %
    of the collected components there (docs/prefine.md)."""
    acts = np.asarray(actions, dtype=np.float64).reshape(-1, len(low))
    if acts.size == 0:
        return 0.0
    low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
    tol = BOUND_TOLERANCE * (high - low) / 2
    return float(((acts <= low + tol) | (acts >= high - tol)).mean())


def action_bounds(dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """The action box of the dataset's task (from the real environment)."""
    task = getattr(dataset, "task", None)
    if not task:
        raise DataError(
            "The dataset has no task, so the action bounds are unknown: pass action_low and "
            "action_high, or load the dataset with task='OfflineBallRun-v0' (for example)."
        )
    from retrofit.envs import make_env

    env = make_env(task)
    try:
        return env.action_space.low.astype(np.float32), env.action_space.high.astype(np.float32)
    finally:
        env.close()
