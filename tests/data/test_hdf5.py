"""HDF5 I/O: equality with dsrl's own loader on real-env data, round trips, atomic writes."""

from __future__ import annotations

import os
import pathlib

import h5py
import numpy as np
import pytest

from retrofit.data import DSRL_KEYS, TrajectoryDataset
from retrofit.envs import make_env, step_env
from retrofit.errors import DataError

TASK = "OfflineBallRun-v0"
DSRL_FILE = "SafetyBallRun-v0-80-940.hdf5"  # DSRL's own file name for this task


def collect_real(lengths: tuple[int, ...] = (12, 7, 15, 9), seed: int = 0) -> dict[str, np.ndarray]:
    """Step the real OfflineBallRun-v0 with random actions; cut episode i at lengths[i] steps."""
    env = make_env(TASK)
    env.action_space.seed(seed)
    columns: dict[str, list] = {k: [] for k in DSRL_KEYS}
    for i, length in enumerate(lengths):
        obs, _ = env.reset(seed=seed + i)
        for t in range(length):
            action = env.action_space.sample()
            next_obs, reward, cost, terminated, truncated, _ = step_env(env, action)
            cut = truncated or t == length - 1
            for key, value in zip(
                DSRL_KEYS,
                (obs, next_obs, action, reward, cost, terminated, cut and not terminated),
                strict=True,
            ):
                columns[key].append(value)
            obs = next_obs
            if terminated or cut:
                break
    env.close()
    return {k: np.asarray(v) for k, v in columns.items()}


def write_dsrl_style(path: pathlib.Path, data: dict[str, np.ndarray]) -> None:
    """Write a file the way DSRL's are laid out: seven top-level datasets, nothing else."""
    with h5py.File(path, "w") as handle:
        for key in DSRL_KEYS:
            handle.create_dataset(key, data=data[key], compression="gzip")


def dsrl_load(path: pathlib.Path) -> dict[str, np.ndarray]:
    """dsrl's own loader, ``env.get_dataset(h5path=...)``."""
    env = make_env(TASK)
    try:
        return env.unwrapped.get_dataset(h5path=str(path))
    finally:
        env.close()


def assert_same_as_dsrl(ours: TrajectoryDataset, theirs: dict[str, np.ndarray]) -> None:
    for key in DSRL_KEYS:
        mine = getattr(ours, key)
        assert mine.shape == theirs[key].shape, key
        np.testing.assert_array_equal(mine, theirs[key], err_msg=key)
        if key not in ("terminals", "timeouts"):
            assert mine.dtype == theirs[key].dtype == np.float32, key
    assert ours.terminals.dtype == np.bool_ and ours.timeouts.dtype == np.bool_


@pytest.fixture(scope="module")
def real_data() -> dict[str, np.ndarray]:
    return collect_real()


def test_real_data_shape(real_data: dict[str, np.ndarray]) -> None:
    assert real_data["observations"].shape[1] == 7 and real_data["actions"].shape[1] == 2
    assert real_data["observations"].dtype == np.float64  # the env's own dtype: DSRL casts it
    done = real_data["terminals"] | real_data["timeouts"]
    assert done.sum() == 4 and done[-1]


def test_from_hdf5_equals_dsrl_loader_on_a_dsrl_file(
    tmp_path: pathlib.Path, real_data: dict[str, np.ndarray]
) -> None:
    path = tmp_path / DSRL_FILE
    write_dsrl_style(path, real_data)
    ours = TrajectoryDataset.from_hdf5(path, task=TASK)
    assert_same_as_dsrl(ours, dsrl_load(path))
    assert ours.n_episodes == 4 and ours.task == TASK and ours.metadata == {}


def test_from_hdf5_equals_dsrl_loader_with_n_by_1_columns_and_int_flags(
    tmp_path: pathlib.Path, real_data: dict[str, np.ndarray]
) -> None:
    data = dict(real_data)
    data["rewards"] = data["rewards"][:, None]
    data["costs"] = data["costs"][:, None]
    data["terminals"] = data["terminals"].astype(np.uint8)[:, None]
    data["timeouts"] = data["timeouts"].astype(np.float32)
    path = tmp_path / "columns.hdf5"
    write_dsrl_style(path, data)
    assert_same_as_dsrl(TrajectoryDataset.from_hdf5(path), dsrl_load(path))


def test_dsrl_loader_reads_what_we_write(
    tmp_path: pathlib.Path, real_data: dict[str, np.ndarray]
) -> None:
    ds = TrajectoryDataset.from_arrays(real_data, task=TASK, metadata={"cmd": "test"})
    path = ds.to_hdf5(tmp_path / "ours.hdf5")
    theirs = dsrl_load(path)
    assert_same_as_dsrl(ds, theirs)
    assert set(theirs) == set(DSRL_KEYS)  # our extras are attributes, not datasets


def test_from_dsrl_uses_dsrl_folder_first(
    tmp_path: pathlib.Path, real_data: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DSRL_DATASET_DIR", str(tmp_path))
    with pytest.raises(DataError, match=rf"{DSRL_FILE}.*download=False.*retrofit collect"):
        TrajectoryDataset.from_dsrl("BallRun", download=False)
    write_dsrl_style(tmp_path / DSRL_FILE, real_data)
    ds = TrajectoryDataset.from_dsrl("BallRun")  # found in the folder: huggingface_hub not asked
    assert ds.task == TASK
    assert ds.metadata["source"] == str(tmp_path / DSRL_FILE)
    assert_same_as_dsrl(ds, dsrl_load(tmp_path / DSRL_FILE))
    other = tmp_path / "elsewhere.hdf5"
    write_dsrl_style(other, real_data)
    assert len(TrajectoryDataset.from_dsrl(TASK, h5path=str(other))) == len(ds)
    with pytest.raises(DataError, match="no such file"):
        TrajectoryDataset.from_dsrl(TASK, h5path=str(tmp_path / "missing.hdf5"))


@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_round_trip(tmp_path: pathlib.Path, compression: str | None) -> None:
    rng = np.random.default_rng(1)
    n = 9
    timeouts = np.zeros(n, dtype=bool)
    timeouts[[3, 8]] = True
    terminals = np.zeros(n, dtype=bool)
    terminals[5] = True
    ds = TrajectoryDataset.from_arrays(
        {
            "observations": rng.normal(size=(n, 4)),
            "next_observations": rng.normal(size=(n, 4)),
            "actions": rng.uniform(-0.5, 0.5, size=(n, 3)),
            "rewards": rng.normal(size=n),
            "costs": rng.uniform(size=n),
            "terminals": terminals,
            "timeouts": timeouts,
        },
        metadata={"command": "retrofit collect x", "nested": {"a": [1, 2.5, None]}},
        action_low=-0.5,
        action_high=[0.5, 0.5, 1.0],
    )
    path = ds.to_hdf5(tmp_path / "sub" / "d.hdf5", compression=compression)
    assert path == tmp_path / "sub" / "d.hdf5"
    assert os.listdir(tmp_path / "sub") == ["d.hdf5"]
    assert (path.stat().st_mode & 0o777) == 0o644
    back = TrajectoryDataset.from_hdf5(path)
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(back, key), getattr(ds, key))
        assert getattr(back, key).dtype == getattr(ds, key).dtype
    np.testing.assert_array_equal(back.episode_starts, ds.episode_starts)
    assert back.metadata == ds.metadata
    assert back.task is None
    np.testing.assert_array_equal(back.action_low, [-0.5, -0.5, -0.5])
    np.testing.assert_array_equal(back.action_high, [0.5, 0.5, 1.0])


def test_round_trip_keeps_task(tmp_path: pathlib.Path, real_data: dict[str, np.ndarray]) -> None:
    ds = TrajectoryDataset.from_arrays(real_data, task="BallRun")
    back = TrajectoryDataset.from_hdf5(ds.to_hdf5(tmp_path / "t.hdf5"))
    assert back.task == TASK
    with pytest.raises(DataError, match="observation_dim=7 does not match"):
        TrajectoryDataset.from_hdf5(tmp_path / "t.hdf5", task="OfflineCarCircle-v0")


def small_dataset(seed: int = 0) -> TrajectoryDataset:
    rng = np.random.default_rng(seed)
    timeouts = np.array([0, 1, 0, 0, 1], dtype=bool)
    return TrajectoryDataset.from_arrays(
        {
            "observations": rng.normal(size=(5, 2)),
            "next_observations": rng.normal(size=(5, 2)),
            "actions": rng.normal(size=(5, 1)),
            "rewards": rng.normal(size=5),
            "costs": rng.uniform(size=5),  # costs are >= 0
            "terminals": np.zeros(5, dtype=bool),
            "timeouts": timeouts,
        }
    )


def test_failed_write_of_invalid_data_leaves_the_old_file(tmp_path: pathlib.Path) -> None:
    path = small_dataset(0).to_hdf5(tmp_path / "d.hdf5")
    before = path.read_bytes()
    broken = small_dataset(1)
    broken.costs[2] = np.nan  # corrupted in place after construction
    with pytest.raises(DataError, match=r"costs: 1 row\(s\) contain NaN"):
        broken.to_hdf5(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["d.hdf5"]


def test_failure_mid_write_leaves_the_old_file(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = small_dataset(0).to_hdf5(tmp_path / "d.hdf5")
    before = path.read_bytes()
    real_create = h5py.Group.create_dataset
    written: list[str] = []

    def failing_create(self: h5py.Group, name: str, *args: object, **kwargs: object) -> object:
        if len(written) == 3:
            raise OSError("disk full")
        written.append(name)
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", failing_create)
    with pytest.raises(OSError, match="disk full"):
        small_dataset(1).to_hdf5(path)
    assert written == list(DSRL_KEYS[:3])
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["d.hdf5"]


def test_bad_compression(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="compression='zip' is not supported"):
        small_dataset().to_hdf5(tmp_path / "d.hdf5", compression="zip")
    assert os.listdir(tmp_path) == []


def test_missing_key_in_file(tmp_path: pathlib.Path) -> None:
    path = small_dataset().to_hdf5(tmp_path / "d.hdf5")
    with h5py.File(path, "a") as handle:
        del handle["timeouts"]
    with pytest.raises(DataError, match=r"lacks key\(s\) \['timeouts'\]"):
        TrajectoryDataset.from_hdf5(path)


def test_not_a_file_or_not_hdf5(tmp_path: pathlib.Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        TrajectoryDataset.from_hdf5(tmp_path / "absent.hdf5")
    text = tmp_path / "x.hdf5"
    text.write_text("not hdf5")
    with pytest.raises(DataError, match="not a readable HDF5 file"):
        TrajectoryDataset.from_hdf5(text)
