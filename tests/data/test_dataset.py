"""TrajectoryDataset: trajectories in and out, episode access, selection, returns and summary."""

from __future__ import annotations

import numpy as np
import pytest

from retrofit.data import DSRL_KEYS, TrajectoryDataset
from retrofit.errors import DataError


def make_trajectory(length: int, seed: int, terminal: bool = False) -> dict[str, np.ndarray]:
    """One synthetic episode; rewards/costs are multiples of 1/4 so float sums are exact."""
    rng = np.random.default_rng(seed)
    end = np.zeros(length, dtype=bool)
    end[-1] = True
    return {
        "observations": rng.normal(size=(length, 3)).astype(np.float32),
        "next_observations": rng.normal(size=(length, 3)).astype(np.float32),
        "actions": rng.uniform(-1, 1, size=(length, 2)).astype(np.float32),
        "rewards": (rng.integers(-8, 9, size=length) / 4).astype(np.float32),
        "costs": rng.integers(0, 3, size=length).astype(np.float32),
        "terminals": end if terminal else np.zeros(length, dtype=bool),
        "timeouts": np.zeros(length, dtype=bool) if terminal else end,
    }


@pytest.fixture
def trajectories() -> list[dict[str, np.ndarray]]:
    return [make_trajectory(n, seed=i, terminal=(i == 1)) for i, n in enumerate((4, 1, 6, 3))]


@pytest.fixture
def dataset(trajectories: list[dict[str, np.ndarray]]) -> TrajectoryDataset:
    return TrajectoryDataset.from_trajectories(trajectories, metadata={"made_by": "test"})


def test_sizes(dataset: TrajectoryDataset) -> None:
    assert len(dataset) == 14
    assert dataset.n_episodes == 4
    assert (dataset.observation_dim, dataset.action_dim) == (3, 2)
    assert dataset.episode_starts.tolist() == [0, 4, 5, 11, 14]
    assert dataset.episode_lengths.tolist() == [4, 1, 6, 3]
    assert dataset.metadata == {"made_by": "test"}
    assert "n_episodes=4" in repr(dataset)


def test_episode_i_is_trajectory_i(
    dataset: TrajectoryDataset, trajectories: list[dict[str, np.ndarray]]
) -> None:
    for i, traj in enumerate(trajectories):
        episode = dataset.episode(i)
        assert set(episode) == set(DSRL_KEYS)
        for key in DSRL_KEYS:
            np.testing.assert_array_equal(episode[key], traj[key])
            assert episode[key].dtype == getattr(dataset, key).dtype


def test_episode_views_are_read_only_and_leave_the_dataset_writable(
    dataset: TrajectoryDataset,
) -> None:
    episode = dataset.episode(2)
    with pytest.raises(ValueError, match="read-only"):
        episode["rewards"][0] = 1.0
    assert dataset.rewards.flags.writeable


@pytest.mark.parametrize("bad", [4, -1, 1.0, True])
def test_episode_index_out_of_range(dataset: TrajectoryDataset, bad: object) -> None:
    with pytest.raises(DataError, match="episode index"):
        dataset.episode(bad)  # type: ignore[arg-type]


def test_from_trajectories_equals_from_arrays_of_the_concatenation(
    dataset: TrajectoryDataset, trajectories: list[dict[str, np.ndarray]]
) -> None:
    flat = {k: np.concatenate([t[k] for t in trajectories]) for k in DSRL_KEYS}
    other = TrajectoryDataset.from_arrays(flat)
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(other, key), getattr(dataset, key))
    np.testing.assert_array_equal(other.episode_starts, dataset.episode_starts)


def test_from_arrays_ignores_extra_keys(trajectories: list[dict[str, np.ndarray]]) -> None:
    flat = {k: np.concatenate([t[k] for t in trajectories]) for k in DSRL_KEYS}
    flat["infos/goal"] = np.zeros(14)
    assert len(TrajectoryDataset.from_arrays(flat)) == 14


def test_from_trajectories_rejects_a_trajectory_without_an_end() -> None:
    good = make_trajectory(3, seed=0)
    open_ended = make_trajectory(3, seed=1)
    open_ended["timeouts"][-1] = False
    with pytest.raises(
        DataError, match=r"trajectories\[1\]: terminals\|timeouts is set at steps \[\]"
    ):
        TrajectoryDataset.from_trajectories([good, open_ended])


def test_from_trajectories_rejects_an_end_before_the_last_step() -> None:
    traj = make_trajectory(4, seed=0)
    traj["terminals"][1] = True
    with pytest.raises(DataError, match=r"trajectories\[0\]: .*steps \[1, 3\] of 4"):
        TrajectoryDataset.from_trajectories([traj])


def test_from_trajectories_rejects_different_keys_and_lengths() -> None:
    a, b = make_trajectory(3, seed=0), make_trajectory(3, seed=1)
    b["extra"] = np.zeros(3)
    with pytest.raises(DataError, match=r"trajectories\[1\]: keys .* differ"):
        TrajectoryDataset.from_trajectories([a, b])
    c = make_trajectory(3, seed=2)
    c["costs"] = c["costs"][:2]
    with pytest.raises(DataError, match=r"trajectories\[0\]: per-key lengths"):
        TrajectoryDataset.from_trajectories([c])
    with pytest.raises(DataError, match="non-empty sequence"):
        TrajectoryDataset.from_trajectories([])
    d = make_trajectory(3, seed=3)
    del d["actions"]
    with pytest.raises(DataError, match=r"missing key\(s\) \['actions'\]"):
        TrajectoryDataset.from_trajectories([d])


def test_episode_returns_are_exact_float64_sums(
    dataset: TrajectoryDataset, trajectories: list[dict[str, np.ndarray]]
) -> None:
    rewards, costs = dataset.episode_returns()
    assert rewards.dtype == np.float64 and costs.dtype == np.float64
    expected_r = [float(np.sum(t["rewards"], dtype=np.float64)) for t in trajectories]
    expected_c = [float(np.sum(t["costs"], dtype=np.float64)) for t in trajectories]
    assert rewards.tolist() == expected_r
    assert costs.tolist() == expected_c


def test_select_episodes_keeps_order_and_repeats(
    dataset: TrajectoryDataset, trajectories: list[dict[str, np.ndarray]]
) -> None:
    chosen = [3, 0, 3]
    sub = dataset.select_episodes(chosen)
    assert sub.n_episodes == 3
    assert sub.episode_lengths.tolist() == [3, 4, 3]
    for j, i in enumerate(chosen):
        for key in DSRL_KEYS:
            np.testing.assert_array_equal(sub.episode(j)[key], trajectories[i][key])
    assert sub.metadata == dataset.metadata
    sub.metadata["made_by"] = "changed"
    assert dataset.metadata["made_by"] == "test"
    sub.rewards[:] = 0.0  # a copy: the parent is unchanged
    assert dataset.episode_returns()[0][3] == float(np.sum(trajectories[3]["rewards"]))


def test_select_episodes_rejects_bad_indices(dataset: TrajectoryDataset) -> None:
    with pytest.raises(DataError, match=r"episode index 4 is out of range.*4 episodes"):
        dataset.select_episodes([0, 4])
    with pytest.raises(DataError, match="non-empty 1-D"):
        dataset.select_episodes([])
    with pytest.raises(DataError, match="must be integers"):
        dataset.select_episodes([0.5])  # type: ignore[list-item]


def test_select_episodes_carries_task_and_bounds(
    trajectories: list[dict[str, np.ndarray]],
) -> None:
    ds = TrajectoryDataset.from_trajectories(trajectories)
    bounded = TrajectoryDataset.from_arrays(ds.to_dict(), action_low=-1.0, action_high=1.0)
    sub = bounded.select_episodes([1])
    np.testing.assert_array_equal(sub.action_low, [-1.0, -1.0])
    np.testing.assert_array_equal(sub.action_high, [1.0, 1.0])


def test_summary(dataset: TrajectoryDataset) -> None:
    rewards, costs = dataset.episode_returns()
    summary = dataset.summary()
    assert summary["n_transitions"] == 14
    assert summary["n_episodes"] == 4
    assert summary["n_terminals"] == 1 and summary["n_timeouts"] == 3
    assert summary["reward_return_mean"] == pytest.approx(rewards.mean(), abs=0, rel=1e-15)
    assert summary["reward_return_min"] == rewards.min()
    assert summary["reward_return_max"] == rewards.max()
    assert summary["cost_return_mean"] == pytest.approx(costs.mean(), abs=0, rel=1e-15)
    assert summary["cost_return_min"] == costs.min()
    assert summary["cost_return_max"] == costs.max()
    assert summary["episode_length_max"] == 6.0 and summary["episode_length_min"] == 1.0
    assert all(isinstance(v, int | float | str | type(None)) for v in summary.values())


def test_share_on_bounds_counts_components_on_either_bound_by_hand():
    from retrofit.data.dataset import share_on_bounds

    low, high = np.array([-1.0, 0.0]), np.array([1.0, 4.0])
    actions = np.array([[1.0, 0.0],        # both on a bound
                        [-1.0, 2.0],       # one
                        [0.999, 4.0 - 1e-7],  # second within 1e-6 half-ranges (2e-6) of high
                        [0.0, 1.0]])       # none
    assert share_on_bounds(actions, low, high) == 4 / 8
    assert share_on_bounds(np.empty((0, 2)), low, high) == 0.0
