"""Every validation rule of ``retrofit.data.validation`` raises a clear DataError, and only then."""

from __future__ import annotations

import numpy as np
import pytest

import retrofit.envs
from retrofit.data import TrajectoryDataset
from retrofit.data.validation import env_spec
from retrofit.errors import DataError, EnvironmentError_

FLOAT_KEYS = ("observations", "next_observations", "actions", "rewards", "costs")


def make_data(
    lengths: tuple[int, ...] = (3, 4, 3), observation_dim: int = 3, action_dim: int = 2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Synthetic DSRL arrays (float64, 0/1 int flags) whose episodes have the given lengths."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    timeouts = np.zeros(n, dtype=np.int64)
    timeouts[np.cumsum(lengths) - 1] = 1
    return {
        "observations": rng.normal(size=(n, observation_dim)),
        "next_observations": rng.normal(size=(n, observation_dim)),
        "actions": rng.uniform(-1, 1, size=(n, action_dim)),
        "rewards": rng.normal(size=n),
        "costs": rng.integers(0, 2, size=n).astype(np.float64),
        "terminals": np.zeros(n, dtype=np.int64),
        "timeouts": timeouts,
    }


def test_valid_data_gets_dsrl_dtypes_and_episode_starts() -> None:
    data = make_data()
    ds = TrajectoryDataset.from_arrays(data)
    for key in FLOAT_KEYS:
        assert getattr(ds, key).dtype == np.float32
        np.testing.assert_array_equal(getattr(ds, key), data[key].astype(np.float32))
    assert ds.terminals.dtype == np.bool_ and ds.timeouts.dtype == np.bool_
    np.testing.assert_array_equal(ds.timeouts, data["timeouts"].astype(bool))
    assert ds.episode_starts.dtype == np.int64
    np.testing.assert_array_equal(ds.episode_starts, [0, 3, 7, 10])


def test_terminal_also_ends_an_episode() -> None:
    data = make_data((3, 4, 3))
    data["terminals"][1] = 1
    assert TrajectoryDataset.from_arrays(data).episode_starts.tolist() == [0, 2, 3, 7, 10]


def test_input_is_copied_and_never_changed() -> None:
    data = make_data()
    data["actions"][0] = [5.0, -7.0]  # out of [-1, 1], but no bounds are known: kept as is
    before = {k: v.copy() for k, v in data.items()}
    ds = TrajectoryDataset.from_arrays(data)
    for key in data:
        np.testing.assert_array_equal(data[key], before[key])
    np.testing.assert_array_equal(ds.actions[0], [5.0, -7.0])
    data["observations"][:] = 0.0
    assert np.all(ds.observations == before["observations"].astype(np.float32))


def test_column_of_shape_n_by_1_is_squeezed_as_dsrl_does() -> None:
    data = make_data()
    data["rewards"] = data["rewards"][:, None]
    ds = TrajectoryDataset.from_arrays(data)
    assert ds.rewards.shape == (10,)


@pytest.mark.parametrize("key", ["observations", "costs", "timeouts"])
def test_missing_key(key: str) -> None:
    data = make_data()
    del data[key]
    with pytest.raises(DataError, match=rf"missing key\(s\) \['{key}'\]"):
        TrajectoryDataset.from_arrays(data)


def test_lengths_differ() -> None:
    data = make_data()
    data["costs"] = data["costs"][:-1]
    with pytest.raises(DataError, match=r"lengths differ.*'costs': 9"):
        TrajectoryDataset.from_arrays(data)


def test_wrong_ndim_of_observations() -> None:
    data = make_data()
    data["observations"] = data["observations"][:, 0]
    with pytest.raises(DataError, match=r"observations: expected 2 dimensions.*\(10,\)"):
        TrajectoryDataset.from_arrays(data)


def test_wrong_ndim_of_rewards() -> None:
    data = make_data()
    data["rewards"] = np.stack([data["rewards"], data["rewards"]], axis=1)
    with pytest.raises(DataError, match=r"rewards: expected shape \(N,\).*\(10, 2\)"):
        TrajectoryDataset.from_arrays(data)


def test_next_observations_shape_differs() -> None:
    data = make_data()
    data["next_observations"] = data["next_observations"][:, :2]
    with pytest.raises(DataError, match=r"next_observations: shape \(10, 2\) differs"):
        TrajectoryDataset.from_arrays(data)


@pytest.mark.parametrize("key", FLOAT_KEYS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf_in_any_float_array(key: str, bad: float) -> None:
    data = make_data()
    data[key][4] = bad
    with pytest.raises(
        DataError, match=rf"^{key}: 1 row\(s\) contain NaN or inf \(first at index 4"
    ):
        TrajectoryDataset.from_arrays(data)


def test_value_beyond_float32_range_is_reported() -> None:
    data = make_data()
    data["rewards"][2] = 1e300
    with pytest.raises(DataError, match=r"rewards: .*index 2.*float32's range"):
        TrajectoryDataset.from_arrays(data)


def test_flags_must_be_zero_or_one() -> None:
    data = make_data()
    data["terminals"][3] = 2
    with pytest.raises(DataError, match=r"terminals: must hold only 0/1.*found 2 at index 3"):
        TrajectoryDataset.from_arrays(data)


def test_non_numeric_dtype() -> None:
    data = make_data()
    data["costs"] = np.array(["a"] * 10)
    with pytest.raises(DataError, match=r"costs: dtype <U1 is not numeric"):
        TrajectoryDataset.from_arrays(data)


def test_final_transition_must_end_an_episode() -> None:
    data = make_data()
    data["timeouts"][-1] = 0
    with pytest.raises(DataError, match=r"final transition \(index 9\) ends no episode"):
        TrajectoryDataset.from_arrays(data)


def test_empty_dataset() -> None:
    data = {k: v[:0] for k, v in make_data().items()}
    with pytest.raises(DataError, match="empty"):
        TrajectoryDataset.from_arrays(data)


def test_actions_outside_given_bounds() -> None:
    data = make_data()
    data["actions"][6, 1] = 1.5
    data["actions"][8, 0] = -3.0
    with pytest.raises(DataError, match=r"actions: 2 row\(s\) lie outside.*first at index 6"):
        TrajectoryDataset.from_arrays(data, action_low=-1.0, action_high=1.0)
    # the same data pass with wider or no bounds, and a one-sided bound checks one side only
    TrajectoryDataset.from_arrays(data, action_low=[-3.0, -3.0], action_high=[3.0, 3.0])
    TrajectoryDataset.from_arrays(data, action_low=-np.inf, action_high=np.inf)
    TrajectoryDataset.from_arrays(data, action_high=2.0)
    with pytest.raises(DataError, match="outside"):
        TrajectoryDataset.from_arrays(data, action_low=-1.0)


def test_actions_on_the_bounds_pass() -> None:
    data = make_data()
    data["actions"][0] = [-1.0, 1.0]
    ds = TrajectoryDataset.from_arrays(data, action_low=-1.0, action_high=1.0)
    np.testing.assert_array_equal(ds.action_low, [-1.0, -1.0])


def test_bad_bounds() -> None:
    with pytest.raises(DataError, match=r"action_low: shape \(3,\) does not match action_dim=2"):
        TrajectoryDataset.from_arrays(make_data(), action_low=[-1, -1, -1], action_high=1.0)
    with pytest.raises(DataError, match="exceeds action_high"):
        TrajectoryDataset.from_arrays(make_data(), action_low=1.0, action_high=-1.0)


def test_task_bounds_come_from_the_real_env() -> None:
    # OfflineBallRun-v0: obs (7,), actions Box(-1, 1, (2,))
    data = make_data(observation_dim=7, action_dim=2)
    ds = TrajectoryDataset.from_arrays(data, task="BallRun")
    assert ds.task == "OfflineBallRun-v0"
    data["actions"][5, 0] = 1.25
    with pytest.raises(DataError, match=r"OfflineBallRun-v0 action space.*index 5"):
        TrajectoryDataset.from_arrays(data, task="OfflineBallRun-v0")
    # explicit bounds take precedence over the env's
    TrajectoryDataset.from_arrays(data, task="OfflineBallRun-v0", action_low=-2, action_high=2)


def test_dims_must_match_the_task_spaces() -> None:
    with pytest.raises(DataError,
                       match=r"observations: observation_dim=3 does not match .* \(7,\)"):
        TrajectoryDataset.from_arrays(make_data(observation_dim=3, action_dim=2),
                                      task="OfflineBallRun-v0")
    with pytest.raises(DataError, match=r"actions: action_dim=3 does not match .* \(2,\)"):
        TrajectoryDataset.from_arrays(make_data(observation_dim=7, action_dim=3),
                                      task="OfflineBallRun-v0")


def test_env_is_built_lazily_and_once_per_task(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []
    real_make_env = retrofit.envs.make_env

    def counting_make_env(task: str) -> object:
        calls.append(task)
        return real_make_env(task)

    monkeypatch.setattr(retrofit.envs, "make_env", counting_make_env)
    env_spec.cache_clear()
    try:
        TrajectoryDataset.from_arrays(make_data())  # no task: no environment
        assert calls == []
        for _ in range(3):
            TrajectoryDataset.from_arrays(make_data(observation_dim=7), task="OfflineBallRun-v0")
        assert calls == ["OfflineBallRun-v0"]
    finally:
        env_spec.cache_clear()


def test_missing_simulator_warns_and_skips_env_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken_make_env(task: str) -> object:
        raise EnvironmentError_("no simulator here")

    monkeypatch.setattr(retrofit.envs, "make_env", broken_make_env)
    env_spec.cache_clear()
    try:
        with pytest.warns(RuntimeWarning, match="no simulator here"):
            ds = TrajectoryDataset.from_arrays(make_data(observation_dim=3),
                                               task="OfflineBallRun-v0")
        assert ds.observation_dim == 3
    finally:
        env_spec.cache_clear()


def test_unknown_task() -> None:
    with pytest.raises(DataError, match=r"task: task='NoSuchTask' is not a DSRL task"):
        TrajectoryDataset.from_arrays(make_data(), task="NoSuchTask")


def test_metadata_must_be_json_able() -> None:
    with pytest.raises(DataError, match="metadata is not JSON-serialisable"):
        TrajectoryDataset.from_arrays(make_data(), metadata={"x": np.arange(3)})
    with pytest.raises(DataError, match="metadata must be a dict"):
        TrajectoryDataset.from_arrays(make_data(), metadata=[1, 2])  # type: ignore[arg-type]
