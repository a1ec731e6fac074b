"""``Feedback``: segment pairs with a reward preference and a binary safety label per segment.

The data of PreSa's Offline Safe POHF setting (PreSa §3): tuples
``(σ⁺, y⁺, σ⁻, y⁻)`` where σ⁺ is preferred to σ⁻ by reward and ``y ∈ {+1 (safe), -1 (unsafe)}``.
A segment is ``segment_length`` consecutive transitions of one episode of a trajectory dataset,
named by the row of its first transition in the dataset's flat DSRL arrays. Only indices and
labels are stored, so the same structure holds synthetic labels and real human ones.

This module knows nothing of torch or of methods; trainers read ``segment_indices()`` and the
labels.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from retrofit.errors import DataError
from retrofit.thresholds import check_cost_threshold

SAFE = 1
UNSAFE = -1


def dataset_fingerprint(dataset: Any) -> str:
    """SHA-256 of a dataset's episode boundaries, observations and actions (hex).

    Stored with feedback so that loading it against another dataset is caught.
    """
    digest = hashlib.sha256()
    for array in (
        np.asarray(dataset.episode_starts, dtype=np.int64),
        np.asarray(dataset.observations, dtype=np.float32),
        np.asarray(dataset.actions, dtype=np.float32),
    ):
        digest.update(str(array.shape).encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _check_dataset(dataset: Any) -> None:
    for field in ("observations", "actions", "episode_starts"):
        if not hasattr(dataset, field):
            raise DataError(
                f"dataset has no {field!r}: feedback indexes into a retrofit.TrajectoryDataset "
                "(load one with TrajectoryDataset.from_hdf5(path, task=...))."
            )


class Feedback:
    """Segment-pair preferences and per-segment safety labels over a trajectory dataset.

    Attributes:
        dataset: the trajectory dataset the segments come from (a ``TrajectoryDataset``).
        starts: ``(N, 2)`` int64; row ``i`` is ``(start of σ⁺, start of σ⁻)``: the preferred
            segment first. A start is the row of the segment's first transition in the dataset's
            flat arrays; the segment is rows ``start .. start + segment_length - 1``, all in one
            episode.
        safety: ``(N, 2)`` int8, ``+1`` safe / ``-1`` unsafe, for the segments in ``starts``.
        segment_length: transitions per segment (the same for every segment).
        cost_threshold: the episode-level κ the labels were made for (``None`` if unknown,
            e.g. human labels).
        metadata: JSON-able dict (how the labels were made).

    Construction validates everything (:meth:`validate`) and raises :class:`DataError` with the
    offending pair and the fix.
    """

    def __init__(
        self,
        dataset: Any,
        starts: np.ndarray,
        safety: np.ndarray,
        segment_length: int,
        *,
        cost_threshold: float | None = None,
        metadata: Mapping[str, Any] | None = None,
        require_both_classes: bool = True,
    ) -> None:
        _check_dataset(dataset)
        self.dataset = dataset
        self.starts = np.asarray(starts)
        self.safety = np.asarray(safety)
        self.segment_length = segment_length
        self.cost_threshold = (None if cost_threshold is None
                               else check_cost_threshold(cost_threshold, error=DataError))
        self.metadata: dict[str, Any] = dict(metadata or {})
        self.validate(require_both_classes=require_both_classes)
        self.starts = self.starts.astype(np.int64)
        self.safety = self.safety.astype(np.int8)

    # ------------------------------------------------------------------ validation
    def validate(self, require_both_classes: bool = True) -> None:
        """Check shapes, index ranges, episode boundaries and labels; raise ``DataError``.

        ``require_both_classes``: PreSa's class weights ``λ_s n_s / (λ_u n_u) = η`` need safe and
        unsafe segments, so feedback whose labels are all one class is an error unless this is
        False.
        """
        t = self.segment_length
        if isinstance(t, bool) or not isinstance(t, int | np.integer) or t < 1:
            raise DataError(f"segment_length={t!r} must be an integer >= 1.")
        starts, safety = self.starts, self.safety
        if starts.ndim != 2 or starts.shape[1] != 2 or starts.shape[0] < 1:
            raise DataError(
                f"starts: expected shape (n_pairs, 2) with n_pairs >= 1 (preferred start, "
                f"non-preferred start); got shape {starts.shape}."
            )
        if not np.issubdtype(starts.dtype, np.integer):
            raise DataError(f"starts: must be integers (row indices); got dtype {starts.dtype}.")
        if safety.shape != starts.shape:
            raise DataError(
                f"safety: shape {safety.shape} must equal starts' shape {starts.shape} (one label "
                "per segment: column 0 for the preferred, column 1 for the non-preferred)."
            )
        bad_labels = ~np.isin(safety, (SAFE, UNSAFE))
        if bad_labels.any():
            i, j = np.argwhere(bad_labels)[0]
            raise DataError(
                f"safety[{i}, {j}] = {safety[i, j]!r}: labels must be +1 (safe) or -1 (unsafe). "
                "Map boolean labels with np.where(is_safe, 1, -1)."
            )
        n = len(self.dataset.observations)
        out = (starts < 0) | (starts + t > n)
        if out.any():
            i, j = np.argwhere(out)[0]
            raise DataError(
                f"starts[{i}, {j}] = {starts[i, j]}: segment rows {starts[i, j]}.."
                f"{starts[i, j] + t - 1} are out of range for a dataset of {n} transitions "
                f"(valid starts 0..{n - t} for segment_length={t}). Starts index the dataset's "
                "flat transition arrays."
            )
        episode_starts = np.asarray(self.dataset.episode_starts, dtype=np.int64)
        episode = np.searchsorted(episode_starts, starts, side="right") - 1
        episode_end = episode_starts[episode + 1]
        crossing = starts + t > episode_end
        if crossing.any():
            i, j = np.argwhere(crossing)[0]
            e = int(episode[i, j])
            raise DataError(
                f"starts[{i}, {j}] = {starts[i, j]}: the segment of {t} steps crosses the end of "
                f"episode {e} (rows {episode_starts[e]}..{episode_end[i, j] - 1}). A segment must "
                f"lie inside one episode: its start must be at most {episode_end[i, j] - t}."
            )
        if require_both_classes:
            n_safe = int((safety == SAFE).sum())
            if n_safe in (0, safety.size):
                only = "safe" if n_safe else "unsafe"
                raise DataError(
                    f"safety: all {safety.size} segment labels are {only}. Safety alignment needs "
                    "both safe and unsafe segments (PreSa's class weights divide by both counts). "
                    "For synthetic feedback pick a cost_threshold between the segment costs; for "
                    "human labels add segments of the other class."
                )

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        """Number of segment pairs."""
        return int(self.starts.shape[0])

    @property
    def task(self) -> str | None:
        """The dataset's DSRL task (used to pick BulletGym / SafetyGym presets)."""
        return getattr(self.dataset, "task", None)

    @property
    def n_safe(self) -> int:
        """Number of segment labels that are safe (a segment in two pairs counts twice)."""
        return int((self.safety == SAFE).sum())

    @property
    def n_unsafe(self) -> int:
        """Number of segment labels that are unsafe."""
        return int((self.safety == UNSAFE).sum())

    def __repr__(self) -> str:
        return (
            f"Feedback(task={self.task!r}, n_pairs={len(self)}, segment_length="
            f"{self.segment_length}, n_safe={self.n_safe}, n_unsafe={self.n_unsafe})"
        )

    def segment_indices(self) -> np.ndarray:
        """``(N, 2, T)`` int64 row indices of every segment's transitions."""
        return self.starts[:, :, None] + np.arange(self.segment_length)[None, None, :]

    def segment_returns(self) -> tuple[np.ndarray, np.ndarray]:
        """``(reward_sums, cost_sums)``, each ``(N, 2)`` float64, from the dataset's ground truth.

        For diagnostics (human feedback need not agree with them).
        """
        idx = self.segment_indices()
        rewards = np.asarray(self.dataset.rewards, dtype=np.float64)[idx].sum(-1)
        costs = np.asarray(self.dataset.costs, dtype=np.float64)[idx].sum(-1)
        return rewards, costs

    def summary(self) -> dict[str, Any]:
        """Counts of pairs and labels, and how often the preferred segment is the safe one."""
        y = self.safety
        return {
            "task": self.task,
            "n_pairs": len(self),
            "segment_length": int(self.segment_length),
            "cost_threshold": self.cost_threshold,
            "n_safe_segments": self.n_safe,
            "n_unsafe_segments": self.n_unsafe,
            "pairs_both_safe": int(((y[:, 0] == SAFE) & (y[:, 1] == SAFE)).sum()),
            "pairs_both_unsafe": int(((y[:, 0] == UNSAFE) & (y[:, 1] == UNSAFE)).sum()),
            "pairs_preferred_unsafe_only": int(((y[:, 0] == UNSAFE) & (y[:, 1] == SAFE)).sum()),
            "pairs_preferred_safe_only": int(((y[:, 0] == SAFE) & (y[:, 1] == UNSAFE)).sum()),
        }

    # ------------------------------------------------------------------ variants
    def _derived(
        self, starts: np.ndarray, safety: np.ndarray, variant: str, require_both: bool = True
    ) -> Feedback:
        meta = copy.deepcopy(self.metadata)
        meta.setdefault("variants", []).append(variant)
        return Feedback(
            self.dataset, starts, safety, int(self.segment_length),
            cost_threshold=self.cost_threshold, metadata=meta,
            require_both_classes=require_both,
        )

    def select(self, pairs: np.ndarray) -> Feedback:
        """A new ``Feedback`` of the given pair indices (or boolean mask), same dataset."""
        pairs = np.asarray(pairs)
        if pairs.dtype == bool:
            pairs = np.flatnonzero(pairs)
        if pairs.size == 0:
            raise DataError("select: no pairs selected; feedback needs at least one pair.")
        return self._derived(self.starts[pairs], self.safety[pairs], "select")

    def filtered(self) -> Feedback:
        """The filtered-preference variant (paper Appendix C.4, Table 10).

        Drops pairs where both segments are unsafe and pairs where the preferred one is unsafe;
        that is, keeps the pairs whose preferred segment is safe.
        """
        keep = self.safety[:, 0] == SAFE
        if not keep.any():
            raise DataError("filtered: no pair has a safe preferred segment; nothing is left.")
        return self._derived(self.starts[keep], self.safety[keep], "filtered")

    def unified(self) -> Feedback:
        """Unified Comparison labels (paper Appendix C.3): one preference per pair.

        A safe segment is preferred to an unsafe one; between two of the same safety the
        reward preference stands. Pairs whose preferred segment is unsafe and the other safe are
        swapped. Safety labels travel with their segments.
        """
        swap = (self.safety[:, 0] == UNSAFE) & (self.safety[:, 1] == SAFE)
        starts = np.where(swap[:, None], self.starts[:, ::-1], self.starts)
        safety = np.where(swap[:, None], self.safety[:, ::-1], self.safety)
        return self._derived(starts, safety, "unified")

    def binary(self) -> Feedback:
        """Binary Alignment labels (paper §6.1): +1 iff the segment is preferred and safe.

        Every non-preferred segment becomes -1; the pairs keep their order.
        """
        safety = np.full_like(self.safety, UNSAFE)
        safety[:, 0] = np.where(self.safety[:, 0] == SAFE, SAFE, UNSAFE)
        return self._derived(self.starts.copy(), safety, "binary")

    def with_label_noise(self, fraction: float, seed: int = 0) -> Feedback:
        """Flip the safety labels of ``round(fraction · 2N)`` segments drawn without replacement.

        The paper's imperfect-safety-feedback study (Appendix C.2, Table 7).
        """
        if not 0.0 <= fraction <= 1.0:
            raise DataError(f"label_noise={fraction!r} must be a fraction in [0, 1].")
        rng = np.random.default_rng(seed)
        flat = self.safety.reshape(-1).copy()
        n_flip = int(round(fraction * flat.size))
        flip = rng.choice(flat.size, size=n_flip, replace=False)
        flat[flip] = -flat[flip]
        meta_variant = f"label_noise={fraction:g}"
        return self._derived(self.starts.copy(), flat.reshape(self.safety.shape), meta_variant)
