"""Synthetic human feedback from a trajectory dataset, as PreSa's paper builds it.

PreSa §6.1 and Appendix B.2:

1. Draw random pairs of trajectory segments of ``segment_length`` steps (10,000 pairs in the
   paper). Our sampling, where the paper is silent: each segment's start is uniform over every
   position whose segment fits inside one episode (episodes shorter than ``segment_length`` give
   none), the two segments of a pair independently.
2. Preference by ground-truth cumulative (undiscounted) reward: the segment with the larger
   reward sum is σ⁺. Ties (equal sums, e.g. a segment paired with itself): ``ties="resample"``
   (default) draws the pair again so every pair carries a strict preference; ``ties="random"``
   orders a tied pair by a fair coin.
3. Safety label per segment from its ground-truth cost sum against the episode threshold κ
   rescaled by ``segment_length / max_episode_steps`` (the task's DSRL time limit):
   ``y = +1`` iff ``cost(σ) < κ · segment_length / max_episode_steps``, the one trajectory
   predicate :func:`retrofit.thresholds.is_safe_trajectory` (PREFINE §3, §5.1: safe is strictly
   below the threshold), so a segment exactly at its threshold is unsafe, as an episode exactly
   at κ is.
4. Optionally flip a fraction of the safety labels (``label_noise``, Appendix C.2).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from retrofit.errors import DataError
from retrofit.feedback.core import SAFE, UNSAFE, Feedback
from retrofit.thresholds import check_cost_threshold, is_safe_trajectory

Ties = Literal["resample", "random"]
_MAX_RESAMPLE_ROUNDS = 100


def segment_threshold(cost_threshold: float, segment_length: int, max_episode_steps: int) -> float:
    """The segment-level threshold ``κ · segment_length / max_episode_steps`` (Appendix B.2)."""
    return float(cost_threshold) * segment_length / max_episode_steps


def valid_segment_starts(episode_starts: np.ndarray, segment_length: int) -> np.ndarray:
    """Every row at which a segment of ``segment_length`` steps fits inside one episode."""
    starts = np.asarray(episode_starts, dtype=np.int64)
    parts = [
        np.arange(lo, hi - segment_length + 1)
        for lo, hi in zip(starts[:-1], starts[1:], strict=True)
        if hi - lo >= segment_length
    ]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _max_episode_steps(dataset: Any, given: int | None) -> int:
    if given is not None:
        if given < 1:
            raise DataError(f"max_episode_steps={given} must be >= 1.")
        return int(given)
    task = getattr(dataset, "task", None)
    if not task:
        raise DataError(
            "The dataset has no task, so the episode length that rescales the cost threshold is "
            "unknown: pass max_episode_steps=... (the task's time limit, e.g. 100 for BallRun)."
        )
    from retrofit.tasks import task_info

    return task_info(task).max_episode_steps


def synthesize(
    dataset: Any,
    n_pairs: int = 10_000,
    segment_length: int = 64,
    cost_threshold: float = 20.0,
    seed: int = 0,
    label_noise: float = 0.0,
    *,
    ties: Ties = "resample",
    max_episode_steps: int | None = None,
) -> Feedback:
    """Synthetic segment-pair feedback from ``dataset``'s ground-truth rewards and costs.

    Args:
        dataset: a ``TrajectoryDataset`` (its ``task`` gives ``max_episode_steps``).
        n_pairs: number of segment pairs (paper: 10,000).
        segment_length: steps per segment (paper: 32 / 64 / 128; at most the episode length).
        cost_threshold: episode-level κ (BulletGym {10, 20, 40}, SafetyGym {20, 40, 80}).
        seed: the one seed of every random draw here.
        label_noise: fraction of segment safety labels flipped at random (0 = clean labels).
        ties: ``"resample"`` or ``"random"`` (see the module docstring).
        max_episode_steps: overrides the task's DSRL time limit.

    Returns a validated :class:`Feedback`; ``metadata`` records every setting.
    """
    for name, value in (("n_pairs", n_pairs), ("segment_length", segment_length)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise DataError(f"{name}={value!r} must be an integer >= 1.")
    check_cost_threshold(cost_threshold, error=DataError)  # True is not κ = 1; NaN is refused
    if ties not in ("resample", "random"):
        raise DataError(f"ties={ties!r}: use 'resample' or 'random'.")
    horizon = _max_episode_steps(dataset, max_episode_steps)
    candidates = valid_segment_starts(dataset.episode_starts, segment_length)
    if candidates.size == 0:
        longest = int(np.diff(dataset.episode_starts).max())
        raise DataError(
            f"segment_length={segment_length} is longer than every episode (longest: {longest} "
            "steps); choose a shorter segment_length."
        )
    rewards = np.asarray(dataset.rewards, dtype=np.float64)
    costs = np.asarray(dataset.costs, dtype=np.float64)
    # prefix sums give every candidate segment's reward and cost sum in O(1)
    reward_cum = np.concatenate([[0.0], np.cumsum(rewards)])
    cost_cum = np.concatenate([[0.0], np.cumsum(costs)])

    def sums(cum: np.ndarray, starts: np.ndarray) -> np.ndarray:
        return cum[starts + segment_length] - cum[starts]

    rng = np.random.default_rng(seed)
    pairs = rng.choice(candidates, size=(n_pairs, 2))
    n_resampled = 0
    if ties == "resample":
        for _ in range(_MAX_RESAMPLE_ROUNDS):
            tied = sums(reward_cum, pairs[:, 0]) == sums(reward_cum, pairs[:, 1])
            if not tied.any():
                break
            n_resampled += int(tied.sum())
            pairs[tied] = rng.choice(candidates, size=(int(tied.sum()), 2))
        else:
            raise DataError(
                "ties='resample': segment pairs keep tying in reward (the dataset's segment "
                "rewards are nearly all equal); use ties='random' or a longer segment_length."
            )
    seg_rewards = sums(reward_cum, pairs)
    swap = seg_rewards[:, 1] > seg_rewards[:, 0]
    n_ties = 0
    if ties == "random":
        tied = seg_rewards[:, 1] == seg_rewards[:, 0]
        n_ties = int(tied.sum())
        swap |= tied & (rng.random(n_pairs) < 0.5)
    pairs = np.where(swap[:, None], pairs[:, ::-1], pairs)

    segment_cost_threshold = segment_threshold(cost_threshold, segment_length, horizon)
    seg_costs = sums(cost_cum, pairs)
    safety = np.where(is_safe_trajectory(seg_costs, segment_cost_threshold), SAFE, UNSAFE
                      ).astype(np.int8)
    n_safe = int((safety == SAFE).sum())
    if n_safe in (0, safety.size):
        only = "safe" if n_safe else "unsafe"
        raise DataError(
            f"cost_threshold={cost_threshold}: every segment is {only} (segment threshold "
            f"{segment_cost_threshold:.3g} = κ·{segment_length}/{horizon}; segment costs range "
            f"{seg_costs.min():.3g}..{seg_costs.max():.3g}). Pick a threshold inside that range."
        )
    metadata = {
        "source": "synthetic",
        "n_pairs": int(n_pairs),
        "segment_length": int(segment_length),
        "cost_threshold": float(cost_threshold),
        "segment_cost_threshold": segment_cost_threshold,
        "max_episode_steps": horizon,
        "seed": int(seed),
        "ties": ties,
        "n_tied_pairs_resampled": n_resampled,
        "n_tied_pairs_ordered_at_random": n_ties,
        "label_noise": 0.0,
    }
    feedback = Feedback(
        dataset, pairs, safety, int(segment_length), cost_threshold=cost_threshold,
        metadata=metadata,
    )
    if label_noise:
        feedback = feedback.with_label_noise(label_noise, seed=seed + 1)
        feedback.metadata["label_noise"] = float(label_noise)
    return feedback
