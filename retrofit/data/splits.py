"""PREFINE's preferred / non-preferred episode split (PREFINE §5.1 "Dataset construction").

For a cost threshold κ the episodes are split into SAFE (cost return < κ,
:func:`retrofit.thresholds.is_safe_trajectory`) and UNSAFE (cost return ≥ κ). ``D_p`` takes
``n_preferred`` SAFE episodes by stratified sampling across the top reward quantiles; ``D_np``
takes ``n_nonpreferred`` episodes from the ``unsafe_pool`` highest-cost UNSAFE episodes, stratified
by reward so that it spans the reward range. The paper leaves the quantiles open; our documented
choices are in :func:`preference_split_indices` and ``docs/data.md``.

This module works on per-episode returns only, so it can be tested without any dataset.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from retrofit.errors import ConfigError, DataError
from retrofit.thresholds import check_cost_threshold, is_safe_trajectory

NONPREFERRED_POOLS = ("highest-cost", "lowest-cost")
DEFAULT_TOP_FRACTION = 0.0
"""D_p's pool by default: 0 keeps exactly the ``n_preferred`` best SAFE episodes (any share
≤ n_preferred / |SAFE| does). Chosen by the protocol's rule 1 on selection cells and held on report
cells (docs/protocol.md, amendment 6; docs/results/retrofit-vs-scratch/)."""
PAPER_TOP_FRACTION = 0.5
"""The better half of SAFE: our first reading of PREFINE §5.1's "top reward quantiles" (the
default until amendment 6; ``top_fraction=PAPER_TOP_FRACTION`` reruns earlier results)."""
PROTOCOL = "PREFINE §5.1 (retrofit choices: top_fraction, n_strata, unsafe_pool; docs/data.md)"


def rank_descending(indices: np.ndarray, keys: np.ndarray) -> np.ndarray:
    """Return ``indices`` ordered by ``keys[indices]`` from high to low, ties by index ascending."""
    indices = np.asarray(indices, dtype=np.int64)
    order = np.lexsort((indices, -np.asarray(keys, dtype=np.float64)[indices]))
    return indices[order]


def stratified_draw(
    ranked: np.ndarray, n: int, n_strata: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw ``n`` of ``ranked`` (best first) without replacement, an equal share per stratum.

    ``ranked`` is cut into ``min(n_strata, len(ranked))`` consecutive equal-count bins (sizes differ
    by at most one, larger bins first, as ``np.array_split``). Each bin gives ``n // k`` draws and
    the first ``n % k`` bins (the best ones) one more. Because ``n <= len(ranked)`` and both the
    larger bins and the larger quotas come first, no quota exceeds its bin.
    """
    if n > len(ranked):
        raise DataError(f"cannot draw {n} episodes from a pool of {len(ranked)}.")
    k = min(n_strata, len(ranked))
    bins = np.array_split(ranked, k)
    base, extra = divmod(n, k)
    chosen = [
        rng.choice(members, size=base + (1 if b < extra else 0), replace=False)
        for b, members in enumerate(bins)
    ]
    return np.concatenate(chosen).astype(np.int64)


def check_top_fraction(top_fraction: float) -> None:
    """Raise ``ConfigError`` unless ``top_fraction`` is a share in [0, 1]."""
    if isinstance(top_fraction, bool) or not isinstance(top_fraction, int | float | np.floating) \
            or not 0.0 <= float(top_fraction) <= 1.0:
        raise ConfigError(
            f"top_fraction={top_fraction!r} must be a number in [0, 1]: the share of SAFE "
            "episodes, best reward first, that D_p is drawn from (0, the default: exactly the "
            f"n_preferred best; {PAPER_TOP_FRACTION}: the better half, the earlier default)."
        )


def _check_params(
    seed: int,
    cost_threshold: float,
    n_preferred: int,
    n_nonpreferred: int,
    top_fraction: float,
    n_strata: int,
    unsafe_pool: int,
) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer (it fixes the draw).")
    check_cost_threshold(cost_threshold)
    for name, value in (
        ("n_preferred", n_preferred),
        ("n_nonpreferred", n_nonpreferred),
        ("n_strata", n_strata),
        ("unsafe_pool", unsafe_pool),
    ):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ConfigError(f"{name}={value!r} must be a positive integer.")
    check_top_fraction(top_fraction)
    if unsafe_pool < n_nonpreferred:
        raise ConfigError(
            f"unsafe_pool={unsafe_pool} is smaller than n_nonpreferred={n_nonpreferred}; D_np is "
            "drawn from the unsafe_pool highest-cost UNSAFE episodes. Raise unsafe_pool."
        )


def preference_split_indices(
    reward_returns: np.ndarray,
    cost_returns: np.ndarray,
    cost_threshold: float,
    *,
    n_preferred: int = 100,
    n_nonpreferred: int = 20,
    seed: int = 0,
    top_fraction: float = DEFAULT_TOP_FRACTION,
    n_strata: int = 10,
    unsafe_pool: int = 100,
    nonpreferred_pool: str = "highest-cost",
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """Choose the episodes of ``D_p`` and ``D_np``; return ``(preferred, nonpreferred, report)``.

    The index arrays are sorted ascending. Protocol (one ``np.random.default_rng(seed)``, drawing
    ``D_p`` first, then ``D_np``):

    * SAFE = episodes with cost return ``< cost_threshold``
      (:func:`retrofit.thresholds.is_safe_trajectory`); UNSAFE = the rest.
    * ``D_p``: rank SAFE by reward return, high to low (stable; ties by episode index); keep the
      top ``max(ceil(top_fraction * |SAFE|), n_preferred)``; cut them into ``n_strata``
      equal-count reward bins and draw an equal share from each without replacement, remainders to
      the highest-reward bins (:func:`stratified_draw`). With the default ``top_fraction = 0``
      the pool is the ``n_preferred`` best SAFE episodes, so D_p is exactly them
      (``DEFAULT_TOP_FRACTION``; ``PAPER_TOP_FRACTION`` = 0.5 was the default before).
    * ``D_np``: rank UNSAFE by cost return, high to low (ties by index); keep the top
      ``unsafe_pool`` (all of UNSAFE if fewer); rank those by reward and draw ``n_nonpreferred``
      the same stratified way, so ``D_np`` spans their reward range.
      ``nonpreferred_pool="lowest-cost"`` keeps the ``unsafe_pool`` *least* costly UNSAFE
      episodes instead (ranked low to high, ties by index). §5.1 says "the bottom 100
      trajectories from UNSAFE (sorted by cost)", which reads either way; "highest-cost" (the
      default) matches its problem statement's "high reward and high cost" D_np, "lowest-cost"
      gives the episodes nearest the threshold (docs/protocol.md, amendment 3).

    ``report`` is JSON-able: counts, pool sizes, parameters, the chosen indices and each side's
    mean reward and cost return.
    """
    rewards = np.asarray(reward_returns, dtype=np.float64)
    costs = np.asarray(cost_returns, dtype=np.float64)
    if rewards.ndim != 1 or rewards.shape != costs.shape:
        raise DataError(
            f"reward_returns {rewards.shape} and cost_returns {costs.shape} must be 1-D arrays of "
            "the same length (one value per episode)."
        )
    _check_params(
        seed, cost_threshold, n_preferred, n_nonpreferred, top_fraction, n_strata, unsafe_pool
    )
    if nonpreferred_pool not in NONPREFERRED_POOLS:
        raise ConfigError(
            f"nonpreferred_pool={nonpreferred_pool!r}: use one of {', '.join(NONPREFERRED_POOLS)} "
            "(which end of UNSAFE, by cost return, D_np is drawn from)."
        )
    cost_threshold = float(cost_threshold)
    all_idx = np.arange(len(costs), dtype=np.int64)
    is_safe = is_safe_trajectory(costs, cost_threshold)
    safe, unsafe = all_idx[is_safe], all_idx[~is_safe]
    counts = (
        f"{len(costs)} episodes: {len(safe)} SAFE (cost return < {cost_threshold:g}), "
        f"{len(unsafe)} UNSAFE (cost return >= {cost_threshold:g})"
    )
    if len(safe) < n_preferred:
        raise DataError(
            f"n_preferred={n_preferred} but only {len(safe)} SAFE episodes; {counts}. Lower "
            "n_preferred, raise cost_threshold, or collect more safe episodes."
        )
    if len(unsafe) < n_nonpreferred:
        raise DataError(
            f"n_nonpreferred={n_nonpreferred} but only {len(unsafe)} UNSAFE episodes; {counts}. "
            "Lower n_nonpreferred, lower cost_threshold, or collect more unsafe episodes."
        )

    rng = np.random.default_rng(seed)
    top_count = math.ceil(round(top_fraction * len(safe), 9))
    preferred_pool = rank_descending(safe, rewards)[: max(top_count, n_preferred)]
    preferred = np.sort(stratified_draw(preferred_pool, n_preferred, n_strata, rng))

    by_cost = rank_descending(unsafe, costs if nonpreferred_pool == "highest-cost" else -costs)
    costly = by_cost[:unsafe_pool]
    nonpreferred_ranked = rank_descending(costly, rewards)
    nonpreferred = np.sort(stratified_draw(nonpreferred_ranked, n_nonpreferred, n_strata, rng))

    report: dict[str, Any] = {
        "protocol": PROTOCOL,
        "cost_threshold": cost_threshold,
        "seed": int(seed),
        "n_preferred": int(n_preferred),
        "n_nonpreferred": int(n_nonpreferred),
        "top_fraction": float(top_fraction),
        "n_strata": int(n_strata),
        "unsafe_pool": int(unsafe_pool),
        **({"nonpreferred_pool": nonpreferred_pool}
           if nonpreferred_pool != "highest-cost" else {}),
        "n_episodes": len(costs),
        "n_safe": len(safe),
        "n_unsafe": len(unsafe),
        "preferred_pool_size": len(preferred_pool),
        "nonpreferred_pool_size": len(nonpreferred_ranked),
        "preferred_indices": preferred.tolist(),
        "nonpreferred_indices": nonpreferred.tolist(),
        "preferred_mean_reward_return": float(rewards[preferred].mean()),
        "preferred_mean_cost_return": float(costs[preferred].mean()),
        "nonpreferred_mean_reward_return": float(rewards[nonpreferred].mean()),
        "nonpreferred_mean_cost_return": float(costs[nonpreferred].mean()),
    }
    return preferred, nonpreferred, report
