"""PREFINE's D_p / D_np split: the protocol's properties, exactly, on synthetic episodes."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from retrofit.data import DSRL_KEYS, TrajectoryDataset, preference_split_indices
from retrofit.data.splits import stratified_draw
from retrofit.errors import ConfigError, DataError

COST_THRESHOLD = 20.0


def make_dataset(n_episodes: int = 600, seed: int = 0) -> TrajectoryDataset:
    """Episodes of 1-3 steps; per-step rewards are multiples of 1/4 and costs integers (exact sums).

    Cost returns run from 0 to 55; with κ = 20 there are 340 SAFE and 260 UNSAFE episodes.
    """
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 4, size=n_episodes)
    n = int(lengths.sum())
    ends = np.zeros(n, dtype=bool)
    ends[np.cumsum(lengths) - 1] = True
    rewards = rng.integers(0, 400, size=n) / 4
    return TrajectoryDataset.from_arrays(
        {
            "observations": rng.normal(size=(n, 2)),
            "next_observations": rng.normal(size=(n, 2)),
            "actions": rng.uniform(-1, 1, size=(n, 1)),
            "rewards": rewards,
            "costs": rng.integers(0, 20, size=n).astype(np.float64),
            "terminals": np.zeros(n, dtype=bool),
            "timeouts": ends,
        },
        metadata={"origin": "synthetic"},
    )


@pytest.fixture(scope="module")
def dataset() -> TrajectoryDataset:
    return make_dataset()


def ranked(indices: np.ndarray, keys: np.ndarray) -> list[int]:
    """Reference ranking, written independently: high key first, ties by lower index."""
    return sorted((int(i) for i in indices), key=lambda i: (-keys[i], i))


def chosen(ds: TrajectoryDataset) -> tuple[list[int], list[int]]:
    split = ds.metadata["split"]
    return split["preferred_indices"], split["nonpreferred_indices"]


def test_sizes_costs_and_pools(dataset: TrajectoryDataset) -> None:
    rewards, costs = dataset.episode_returns()
    d_p, d_np = dataset.split_preferences(COST_THRESHOLD)
    pref, nonpref = chosen(d_p)
    assert (d_p.n_episodes, d_np.n_episodes) == (100, 20)
    assert (len(pref), len(nonpref)) == (100, 20)
    assert len(set(pref)) == 100 and len(set(nonpref)) == 20
    assert not set(pref) & set(nonpref)
    assert pref == sorted(pref) and nonpref == sorted(nonpref)
    assert np.all(d_p.episode_returns()[1] < COST_THRESHOLD)
    assert np.all(d_np.episode_returns()[1] >= COST_THRESHOLD)
    safe = np.flatnonzero(costs < COST_THRESHOLD)
    unsafe = np.flatnonzero(costs >= COST_THRESHOLD)
    assert (len(safe), len(unsafe)) == (340, 260)  # the pools are real selections
    # the default D_p (DEFAULT_TOP_FRACTION = 0) is exactly the 100 best SAFE episodes
    assert pref == sorted(ranked(safe, rewards)[:100])
    assert set(nonpref) <= set(ranked(unsafe, costs)[:100])
    # top_fraction = 0.5 (the earlier default) draws D_p from the better half of SAFE
    half = chosen(dataset.split_preferences(COST_THRESHOLD, top_fraction=0.5)[0])[0]
    top_safe = ranked(safe, rewards)[: int(np.ceil(0.5 * len(safe)))]
    assert set(half) <= set(top_safe) and half != pref


def test_returned_episodes_are_the_chosen_originals(dataset: TrajectoryDataset) -> None:
    d_p, d_np = dataset.split_preferences(COST_THRESHOLD, seed=3)
    for part in (d_p, d_np):
        role = part.metadata["split"]["role"]
        indices = chosen(part)[0 if role == "preferred" else 1]
        for j, i in enumerate(indices):
            for key in DSRL_KEYS:
                np.testing.assert_array_equal(part.episode(j)[key], dataset.episode(i)[key])
        assert part.metadata["origin"] == "synthetic"
    assert (d_p.metadata["split"]["role"], d_np.metadata["split"]["role"]) == (
        "preferred",
        "nonpreferred",
    )


def test_deterministic_for_a_seed(dataset: TrajectoryDataset) -> None:
    a_p, a_np = dataset.split_preferences(COST_THRESHOLD, seed=7)
    b_p, b_np = dataset.split_preferences(COST_THRESHOLD, seed=7)
    assert chosen(a_p) == chosen(b_p)
    for x, y in ((a_p, b_p), (a_np, b_np)):
        for key in DSRL_KEYS:
            np.testing.assert_array_equal(getattr(x, key), getattr(y, key))


def test_different_seeds_differ(dataset: TrajectoryDataset) -> None:
    draws = [chosen(dataset.split_preferences(COST_THRESHOLD, seed=s, top_fraction=0.5)[0])
             for s in range(5)]
    for (p1, n1), (p2, n2) in itertools.combinations(draws, 2):
        assert p1 != p2 and n1 != n2


def test_the_default_d_p_is_the_same_for_every_seed_and_d_np_is_drawn(
        dataset: TrajectoryDataset) -> None:
    # the N_p best SAFE episodes leave nothing to draw: seeds vary D_np (and training) only
    draws = [chosen(dataset.split_preferences(COST_THRESHOLD, seed=s)[0]) for s in range(5)]
    for (p1, n1), (p2, n2) in itertools.combinations(draws, 2):
        assert p1 == p2 and n1 != n2


def test_top_fraction_outside_zero_to_one_is_refused(dataset: TrajectoryDataset) -> None:
    for bad in (-0.1, 1.5, float("nan"), True):
        with pytest.raises(ConfigError, match="top_fraction=.* must be a number in \\[0, 1\\]"):
            dataset.split_preferences(COST_THRESHOLD, top_fraction=bad)


def test_stratified_shares_are_equal_with_remainders_to_the_highest_bins(
    dataset: TrajectoryDataset,
) -> None:
    rewards, costs = dataset.episode_returns()
    safe = np.flatnonzero(costs < COST_THRESHOLD)
    pool = ranked(safe, rewards)[: int(np.ceil(0.5 * len(safe)))]
    d_p, d_np = dataset.split_preferences(COST_THRESHOLD, n_preferred=37, n_nonpreferred=13,
                                          n_strata=5, top_fraction=0.5)
    pref, nonpref = chosen(d_p)
    per_bin = [len(set(b.tolist()) & set(pref)) for b in np.array_split(np.array(pool), 5)]
    assert per_bin == [8, 8, 7, 7, 7]
    unsafe = np.flatnonzero(costs >= COST_THRESHOLD)
    np_pool = ranked(np.array(ranked(unsafe, costs)[:100]), rewards)
    per_bin = [len(set(b.tolist()) & set(nonpref)) for b in np.array_split(np.array(np_pool), 5)]
    assert per_bin == [3, 3, 3, 2, 2]


def test_nonpreferred_spans_the_reward_range_of_its_pool(dataset: TrajectoryDataset) -> None:
    rewards, costs = dataset.episode_returns()
    unsafe = np.flatnonzero(costs >= COST_THRESHOLD)
    np_pool = ranked(np.array(ranked(unsafe, costs)[:100]), rewards)
    _, d_np = dataset.split_preferences(COST_THRESHOLD)
    nonpref = chosen(d_np)[1]
    per_decile = [
        len(set(b.tolist()) & set(nonpref)) for b in np.array_split(np.array(np_pool), 10)
    ]
    assert per_decile == [2] * 10


def test_ties_are_resolved_by_index() -> None:
    rewards = np.ones(40)
    rewards[[3, 17]] = 2.0  # two clear winners; everything else ties
    costs = np.zeros(40)
    costs[[0, 5, 6]] = COST_THRESHOLD  # UNSAFE, so not in the SAFE ranking
    pref, _, report = preference_split_indices(
        rewards, costs, COST_THRESHOLD, n_preferred=10, n_nonpreferred=1, top_fraction=0.25,
        n_strata=1
    )
    assert report["preferred_pool_size"] == 10  # ceil(0.25 * 37)
    assert pref.tolist() == [1, 2, 3, 4, 7, 8, 9, 10, 11, 17]


def test_pool_grows_to_n_preferred_when_the_top_fraction_is_too_small() -> None:
    rewards = np.arange(150, dtype=np.float64)
    costs = np.zeros(150)
    costs[:30] = 50.0
    pref, nonpref, report = preference_split_indices(rewards, costs, COST_THRESHOLD,
                                                     n_preferred=100, top_fraction=0.5)
    assert report["preferred_pool_size"] == 100  # ceil(0.5 * 120) = 60 < 100
    assert pref.tolist() == list(range(50, 150))  # the 100 best SAFE: every one of them
    assert report["nonpreferred_pool_size"] == 30  # all UNSAFE: fewer than unsafe_pool=100
    # 10 reward bins of 3 UNSAFE episodes each (29..27, 26..24, ..., 2..0): 2 drawn from each
    per_bin = [np.isin(nonpref, np.arange(3 * b, 3 * b + 3)).sum() for b in range(10)]
    assert per_bin == [2] * 10


def test_report_is_json_and_matches_the_data(dataset: TrajectoryDataset) -> None:
    rewards, costs = dataset.episode_returns()
    d_p, d_np = dataset.split_preferences(COST_THRESHOLD, seed=2)
    report = d_p.metadata["split"]
    assert json.loads(json.dumps(report)) == report
    pref, nonpref = chosen(d_p)
    assert d_np.metadata["split"] == {**report, "role": "nonpreferred"}
    assert report["cost_threshold"] == COST_THRESHOLD and report["seed"] == 2
    assert report["n_safe"] == int((costs < COST_THRESHOLD).sum())
    assert report["n_unsafe"] == int((costs >= COST_THRESHOLD).sum())
    assert report["n_episodes"] == dataset.n_episodes
    assert report["preferred_mean_reward_return"] == pytest.approx(rewards[pref].mean(), rel=1e-15)
    assert report["preferred_mean_cost_return"] == pytest.approx(costs[pref].mean(), rel=1e-15)
    assert report["nonpreferred_mean_reward_return"] == pytest.approx(
        d_np.episode_returns()[0].mean(), rel=1e-15
    )
    assert report["nonpreferred_mean_cost_return"] == pytest.approx(
        costs[nonpref].mean(), rel=1e-15
    )
    assert (report["n_preferred"], report["n_nonpreferred"]) == (100, 20)
    assert (report["top_fraction"], report["n_strata"], report["unsafe_pool"]) == (0.0, 10, 100)
    assert "split" not in dataset.metadata  # the parent is untouched


def test_too_few_safe_or_unsafe_episodes(dataset: TrajectoryDataset) -> None:
    n_safe = int((dataset.episode_returns()[1] < COST_THRESHOLD).sum())
    with pytest.raises(DataError, match=rf"n_preferred=1000 but only {n_safe} SAFE.*< 20"):
        dataset.split_preferences(COST_THRESHOLD, n_preferred=1000)
    with pytest.raises(DataError, match=r"n_nonpreferred=20 but only 0 UNSAFE.*>= 1000.*Lower"):
        dataset.split_preferences(1000.0)
    with pytest.raises(DataError, match=r"n_preferred=100 but only 0 SAFE"):
        dataset.split_preferences(0.0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"top_fraction": -0.5}, "top_fraction=-0.5 must be a number in"),
        ({"top_fraction": 1.5}, "top_fraction=1.5 must be a number in"),
        ({"n_strata": 0}, "n_strata=0 must be a positive integer"),
        ({"n_preferred": 2.5}, "n_preferred=2.5 must be a positive integer"),
        ({"unsafe_pool": 10}, "unsafe_pool=10 is smaller than n_nonpreferred=20"),
        ({"cost_threshold": float("nan")}, "cost_threshold=nan must be a finite number"),
        ({"seed": None}, "seed=None must be a non-negative integer"),
    ],
)
def test_bad_parameters(dataset: TrajectoryDataset, kwargs: dict, pattern: str) -> None:
    args = {"cost_threshold": COST_THRESHOLD, **kwargs}
    with pytest.raises(ConfigError, match=pattern):
        dataset.split_preferences(**args)


def test_stratified_draw_never_overfills_a_bin() -> None:
    rng = np.random.default_rng(0)
    for pool_size in range(1, 40):
        pool = np.arange(pool_size)
        for n in range(1, pool_size + 1):
            for k in (1, 3, 10):
                out = stratified_draw(pool, n, k, rng)
                assert len(out) == n and len(set(out.tolist())) == n
                bins = np.array_split(pool, min(k, pool_size))
                counts = [len(set(b.tolist()) & set(out.tolist())) for b in bins]
                assert max(counts) - min(counts) <= 1
                assert counts == sorted(counts, reverse=True)
    with pytest.raises(DataError, match="cannot draw 5 episodes from a pool of 4"):
        stratified_draw(np.arange(4), 5, 2, rng)


def test_lowest_cost_pool_draws_the_unsafe_episodes_nearest_the_threshold() -> None:
    # 40 unsafe episodes with costs 20, 21, ..., 59 (κ = 20: 20 is the first UNSAFE cost).
    costs = np.concatenate([np.arange(20, 60, dtype=float), np.zeros(30)])
    rewards = np.arange(70, dtype=float)
    kwargs = dict(n_preferred=10, n_nonpreferred=5, unsafe_pool=10, seed=3)
    _, highest, report_high = preference_split_indices(rewards, costs, 20.0, **kwargs)
    _, lowest, report_low = preference_split_indices(
        rewards, costs, 20.0, nonpreferred_pool="lowest-cost", **kwargs)
    assert set(costs[highest]) <= set(range(50, 60))  # the ten costliest: 50..59
    assert set(costs[lowest]) <= set(range(20, 30))  # the ten least costly: 20..29
    assert "nonpreferred_pool" not in report_high  # the default leaves old reports unchanged
    assert report_low["nonpreferred_pool"] == "lowest-cost"
    with pytest.raises(ConfigError, match="nonpreferred_pool='middle'"):
        preference_split_indices(rewards, costs, 20.0, nonpreferred_pool="middle", **kwargs)
