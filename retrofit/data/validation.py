"""Checks every :class:`~retrofit.data.TrajectoryDataset` constructor runs on its arrays.

Each failure raises :class:`~retrofit.errors.DataError` naming the field, the value or shape found
and the fix. Data are never clipped, dropped or reordered: the only changes are the dtype casts the
``dsrl`` loader does (observations, next observations, actions, rewards and costs to ``float32``),
squeezing ``(N, 1)`` per-step columns to ``(N,)`` as ``dsrl`` does, and 0/1 flags to ``bool``.
"""

from __future__ import annotations

import functools
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from retrofit.errors import DataError, RetrofitError

#: DSRL's keys, in the order its files list them.
DSRL_KEYS: tuple[str, ...] = (
    "observations",
    "next_observations",
    "actions",
    "rewards",
    "costs",
    "terminals",
    "timeouts",
)
FLOAT_KEYS: tuple[str, ...] = ("observations", "next_observations", "actions", "rewards", "costs")
FLAG_KEYS: tuple[str, ...] = ("terminals", "timeouts")
_MATRIX_KEYS = ("observations", "next_observations", "actions")
_COLUMN_KEYS = ("rewards", "costs", "terminals", "timeouts")


@dataclass(frozen=True)
class EnvSpec:
    """Observation/action shapes and action bounds of a task's real environment."""

    obs_shape: tuple[int, ...]
    act_shape: tuple[int, ...]
    action_low: np.ndarray
    action_high: np.ndarray


@functools.cache
def env_spec(task: str) -> EnvSpec:
    """Build the task's environment once, read its spaces, close it, and cache the result."""
    from retrofit.envs import make_env

    env = make_env(task)
    try:
        obs_shape = tuple(int(d) for d in env.observation_space.shape)
        act_shape = tuple(int(d) for d in env.action_space.shape)
        low = np.asarray(env.action_space.low, dtype=np.float32).copy()
        high = np.asarray(env.action_space.high, dtype=np.float32).copy()
    finally:
        env.close()
    low.flags.writeable = False
    high.flags.writeable = False
    return EnvSpec(obs_shape, act_shape, low, high)


def canonical_task(task: str | None) -> str | None:
    """Return the DSRL env id of ``task`` (short names such as ``BallRun`` are accepted)."""
    if task is None:
        return None
    from retrofit.tasks import task_info

    if not isinstance(task, str):
        raise DataError(f"task={task!r} must be a DSRL env id string such as 'OfflineBallRun-v0'.")
    try:
        return task_info(task).env_id
    except RetrofitError as exc:
        raise DataError(f"task: {exc}") from exc


def check_metadata(metadata: Any) -> dict[str, Any]:
    """Return ``metadata`` as a dict after checking that it is JSON-serialisable."""
    if metadata is None:
        return {}
    if not isinstance(metadata, Mapping):
        raise DataError(
            f"metadata must be a dict of JSON-able values; got {type(metadata).__name__}. "
            "Pass e.g. metadata={'source': 'collected with retrofit collect'}."
        )
    try:
        json.dumps(dict(metadata), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"metadata is not JSON-serialisable ({exc}); it is saved as HDF5 attributes. "
            "Convert numpy scalars/arrays to Python numbers/lists first."
        ) from exc
    return dict(metadata)


def _as_array(key: str, value: Any) -> np.ndarray:
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{key}: could not be turned into an array ({exc}).") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise DataError(
            f"{key}: dtype {arr.dtype} is not numeric. Give a numeric array (float32 as in DSRL)."
        )
    return arr


def _check_finite(key: str, arr: np.ndarray) -> None:
    finite = np.isfinite(arr)
    if finite.all():
        return
    bad = np.flatnonzero(~finite.reshape(len(arr), -1).all(axis=1))
    first = int(bad[0])
    raise DataError(
        f"{key}: {len(bad)} row(s) contain NaN or inf (first at index {first}: {arr[first]!r}). "
        "Values larger than float32's range also become inf when cast to float32. Remove or fix "
        "those transitions before building the dataset; retrofit never drops data itself."
    )


def _check_flags(key: str, arr: np.ndarray) -> np.ndarray:
    if arr.dtype == np.bool_:
        return arr
    bad = ~np.isin(arr, (0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{key}: must hold only 0/1 or True/False; found {arr[first]!r} at index {first}. "
            "Mark the step that ends an episode with 1 (terminal: the task ended it; timeout: the "
            "time limit cut it) and every other step with 0."
        )
    return arr.astype(np.bool_)


def _check_bounds(actions: np.ndarray, low: np.ndarray, high: np.ndarray, source: str) -> None:
    below = actions < low
    above = actions > high
    if not (below.any() or above.any()):
        return
    outside = (below | above).any(axis=1)
    first = int(np.flatnonzero(outside)[0])
    raise DataError(
        f"actions: {int(outside.sum())} row(s) lie outside the action bounds ({source}: "
        f"low={low.tolist()}, high={high.tolist()}); first at index {first}: "
        f"{actions[first].tolist()}. retrofit never clips data: clip the actions yourself if the "
        "environment clips them, or pass the right action_low/action_high "
        "(-np.inf/np.inf to skip the check)."
    )


def _bounds_array(name: str, value: Any, action_dim: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    if arr.ndim == 0:
        arr = np.full(action_dim, arr, dtype=np.float32)
    if arr.shape != (action_dim,):
        raise DataError(
            f"{name}: shape {arr.shape} does not match action_dim={action_dim}. Give a scalar or "
            f"an array of shape ({action_dim},)."
        )
    if np.isnan(arr).any():
        raise DataError(f"{name}: contains NaN ({arr.tolist()}); use -np.inf/np.inf for no bound.")
    return arr


def resolve_bounds(
    task: str | None, action_low: Any, action_high: Any, action_dim: int
) -> tuple[np.ndarray | None, np.ndarray | None, str]:
    """Return ``(low, high, source)``: given bounds, else the task env's, else ``(None, None)``."""
    if action_low is not None or action_high is not None:
        low = _bounds_array("action_low", -np.inf if action_low is None else action_low, action_dim)
        high = _bounds_array("action_high", np.inf if action_high is None else action_high,
                             action_dim)
        if (low > high).any():
            raise DataError(
                f"action_low={low.tolist()} exceeds action_high={high.tolist()}; swap them."
            )
        return low, high, "action_low/action_high given"
    if task is not None:
        spec = task_env_spec(task)
        if spec is not None:
            return spec.action_low, spec.action_high, f"{task} action space"
    return None, None, "none"


def task_env_spec(task: str) -> EnvSpec | None:
    """:func:`env_spec` of ``task``, or ``None`` with a warning if its simulator is missing."""
    try:
        return env_spec(task)
    except RetrofitError as exc:
        warnings.warn(
            f"Could not build {task!r} to check the data against its spaces ({exc}); the "
            "observation/action shape and action bound checks were skipped.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def validate_arrays(
    data: Mapping[str, Any],
    task: str | None = None,
    action_low: Any = None,
    action_high: Any = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Check DSRL-format arrays; return them with DSRL dtypes and the episode start offsets.

    ``task`` must already be canonical (see :func:`canonical_task`). Keys other than DSRL's are
    ignored. Arrays already of the right dtype are returned as they are (not copied).
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
    arrays = {k: _as_array(k, data[k]) for k in DSRL_KEYS}

    n = len(arrays["observations"]) if arrays["observations"].ndim > 0 else 0
    if n == 0:
        raise DataError(
            "observations: the dataset is empty (0 transitions). Collect data first "
            "(`retrofit collect`) or check the file you loaded."
        )
    lengths = {k: (len(a) if a.ndim > 0 else 0) for k, a in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise DataError(
            f"lengths differ between keys: {lengths}. Every key must hold one row per "
            "transition; check that no array was cut or padded."
        )

    for key in _MATRIX_KEYS:
        arr = arrays[key]
        if arr.ndim != 2:
            raise DataError(
                f"{key}: expected 2 dimensions (N, dim); got shape {arr.shape}. "
                "Reshape to (N, dim), e.g. x.reshape(len(x), -1)."
            )
    for key in _COLUMN_KEYS:
        arr = arrays[key]
        if arr.ndim == 2 and arr.shape[1] == 1:  # dsrl squeezes (N, 1) columns too
            arr = arr[:, 0]
        if arr.ndim != 1:
            raise DataError(
                f"{key}: expected shape (N,) = ({n},); got {arrays[key].shape}. "
                "Give one scalar per transition."
            )
        arrays[key] = arr
    if arrays["next_observations"].shape != arrays["observations"].shape:
        raise DataError(
            f"next_observations: shape {arrays['next_observations'].shape} differs from "
            f"observations {arrays['observations'].shape}; both must be (N, observation_dim)."
        )

    for key in FLOAT_KEYS:
        with np.errstate(over="ignore"):  # overflow becomes inf, which _check_finite reports
            arrays[key] = arrays[key].astype(np.float32, copy=False)
        _check_finite(key, arrays[key])
    _check_costs(arrays["costs"])
    for key in FLAG_KEYS:
        arrays[key] = _check_flags(key, arrays[key])

    observation_dim = arrays["observations"].shape[1]
    action_dim = arrays["actions"].shape[1]
    spec = task_env_spec(task) if task is not None else None
    if spec is not None:
        if (observation_dim,) != spec.obs_shape:
            raise DataError(
                f"observations: observation_dim={observation_dim} does not match {task}'s "
                f"observation space {spec.obs_shape}. Check that the data were collected in "
                f"{task}, or pass the right task (task=None skips the check)."
            )
        if (action_dim,) != spec.act_shape:
            raise DataError(
                f"actions: action_dim={action_dim} does not match {task}'s action space "
                f"{spec.act_shape}. Check that the data were collected in {task}, or pass the "
                "right task (task=None skips the check)."
            )
    low, high, source = resolve_bounds(task, action_low, action_high, action_dim)
    if low is not None and high is not None:
        _check_bounds(arrays["actions"], low, high, source)

    done = arrays["terminals"] | arrays["timeouts"]
    if not done[-1]:
        raise DataError(
            f"terminals/timeouts: the final transition (index {n - 1}) ends no episode "
            "(terminal=False and timeout=False), so the last episode is incomplete. Set "
            f"timeouts[{n - 1}] = True if collection was cut off there, or drop the partial "
            "episode before building the dataset."
        )
    ends = np.flatnonzero(done) + 1
    episode_starts = np.concatenate(([0], ends)).astype(np.int64)
    if task is not None:
        _check_episode_lengths(episode_starts, task)
    return arrays, episode_starts


def _check_costs(costs: np.ndarray) -> None:
    """Costs count constraint violations (DSRL: 0/1 per step); a negative one is corrupt data."""
    negative = np.flatnonzero(costs < 0)
    if negative.size:
        first = int(negative[0])
        raise DataError(
            f"costs: {negative.size} value(s) are negative (first at index {first}: "
            f"{float(costs[first])!r}). A cost counts constraint violations and is >= 0 (DSRL: "
            "0 or 1 per step); a negative one would make unsafe episodes look safe. Fix the "
            "costs (e.g. a sign flip or a shaped reward stored as cost) before building the "
            "dataset."
        )


def _check_episode_lengths(episode_starts: np.ndarray, task: str) -> None:
    """No episode may be longer than the task's time limit (episode ends missing otherwise)."""
    from retrofit.tasks import task_info

    limit = task_info(task).max_episode_steps
    lengths = np.diff(episode_starts)
    too_long = np.flatnonzero(lengths > limit)
    if too_long.size:
        i = int(too_long[0])
        raise DataError(
            f"episode_lengths: {too_long.size} episode(s) are longer than {task}'s time limit "
            f"of {limit} steps (first: episode {i}, {int(lengths[i])} steps, from transition "
            f"{int(episode_starts[i])}). Episode ends are probably missing: set timeouts=True "
            "at each time-limit cut, or pass the right task (task=None skips the check)."
        )


def check_preference_sets(preferred: Any, nonpreferred: Any) -> None:
    """Raise :class:`DataError` if ``D_p`` and ``D_np`` are the same data or share an episode.

    Preference methods (PREFINE §4, Eq. 4; DPO-style losses) push ``D_p``'s likelihood up and
    ``D_np``'s down; an episode in both cancels out and ``fit(d, d)`` learns nothing while
    looking like a run. Episodes are compared by their observations and actions (a hash of
    their bytes), so copies are caught, not only the same object. Objects without DSRL arrays
    (e.g. feedback) are not checked.
    """
    if preferred is nonpreferred:
        raise DataError(
            "preferred and nonpreferred are the same object: preference methods need two "
            "different episode sets. Split the data first, e.g. "
            "preferred, nonpreferred = dataset.split_preferences(cost_threshold=...)."
        )
    digests = [_episode_digests(d) for d in (preferred, nonpreferred)]
    if digests[0] is None or digests[1] is None:
        return
    shared = set(digests[0]) & set(digests[1])
    if not shared:
        return
    first_p = next(i for i, h in enumerate(digests[0]) if h in shared)
    first_np = next(i for i, h in enumerate(digests[1]) if h in shared)
    what = (
        "identical"
        if sorted(digests[0]) == sorted(digests[1])
        else f"overlapping ({len(shared)} shared episode(s))"
    )
    raise DataError(
        f"preferred/nonpreferred: the episode sets are {what}; e.g. preferred episode "
        f"{first_p} equals nonpreferred episode {first_np}. An episode cannot be both preferred "
        "and not; build disjoint sets, e.g. with dataset.split_preferences(cost_threshold=...)."
    )


def _episode_digests(data: Any) -> list[str] | None:
    import hashlib

    starts = getattr(data, "episode_starts", None)
    obs = getattr(data, "observations", None)
    act = getattr(data, "actions", None)
    if starts is None or obs is None or act is None:
        return None
    obs = np.ascontiguousarray(obs)
    act = np.ascontiguousarray(act)
    out = []
    for lo, hi in zip(starts[:-1], starts[1:], strict=True):
        h = hashlib.sha256(obs[lo:hi].tobytes())
        h.update(act[lo:hi].tobytes())
        out.append(h.hexdigest())
    return out
