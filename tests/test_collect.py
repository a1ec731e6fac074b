"""Dataset collection in the real BallRun environment, at toy size (a few seconds in all)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retrofit.collect import (
    BehaviourConfig,
    CollectConfig,
    collect_dataset,
    dataset_stats,
    dsrl_filename,
    plot_dataset,
    rollout_episode,
    train_behaviour_policies,
)
from retrofit.data.dataset import TrajectoryDataset
from retrofit.data.validation import DSRL_KEYS
from retrofit.envs import make_env
from retrofit.errors import ConfigError

TINY = {
    "penalties": (0.0,),
    "budgets": (0.5,),  # one PPO-Lagrangian run with budget 0.5 x 40 = 20
    "switch_fraction": 0.5,
    "train_steps": 64,
    "checkpoints": (0.0, 1.0),
    "noise_levels": (0.0, 0.3),
    "progress": False,
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrajectoryDataset, object]:
    folder = tmp_path_factory.mktemp("collect")
    dataset = collect_dataset("BallRun", folder / "ballrun.hdf5", 4, seed=7, **TINY)
    return dataset, folder / "ballrun.hdf5"


def test_written_file_is_a_valid_dsrl_dataset(tiny: tuple) -> None:
    dataset, path = tiny
    loaded = TrajectoryDataset.from_hdf5(path)
    assert loaded.task == "OfflineBallRun-v0"
    assert loaded.n_episodes == 4
    assert len(loaded) == 400  # BallRun episodes always run to DSRL's 100-step limit
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(loaded, key), getattr(dataset, key))
    assert loaded.observations.dtype == np.float32 and loaded.actions.dtype == np.float32
    assert loaded.terminals.dtype == bool and loaded.timeouts.dtype == bool
    ends = np.flatnonzero(loaded.terminals | loaded.timeouts)
    np.testing.assert_array_equal(ends, [99, 199, 299, 399])
    assert loaded.timeouts[ends].all() and not loaded.terminals.any()
    # transitions chain within an episode
    np.testing.assert_array_equal(loaded.observations[1:100], loaded.next_observations[:99])


def test_metadata_records_provenance_and_config(tiny: tuple) -> None:
    dataset, path = tiny
    prov = dataset.metadata["provenance"]
    # episodes 1 and 3 switch policies; 0 and 2 take the first two sources (runs vary fastest)
    assert prov["budget"][0] is None and prov["budget"][2] == 20.0
    assert prov["checkpoint"][0] == prov["checkpoint"][2] == 0
    assert prov["noise"][0] == prov["noise"][2] == 0.0
    assert prov["switch"][0] is None and prov["switch"][2] is None
    for i in (1, 3):
        assert 1 <= prov["switch"][i] < 100 and prov["checkpoint"][i] == 64
        assert {prov["budget"][i], prov["switch_budget"][i]} == {None, 20.0}
    config = dataset.metadata["collect_config"]
    assert config["seed"] == 7 and config["behaviour"]["train_steps"] == 64
    assert TrajectoryDataset.from_hdf5(path).metadata["provenance"] == prov
    json.dumps(dataset.metadata)


def test_same_seed_same_dataset_other_seed_differs(tiny: tuple, tmp_path) -> None:
    dataset, _ = tiny
    again = collect_dataset("OfflineBallRun-v0", tmp_path / "out", 4, seed=7, **TINY)
    other = collect_dataset("BallRun", None, 4, seed=8, **TINY)
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(again, key), getattr(dataset, key))
    # a suffix-less `out` is a folder: the file gets a DSRL-like name
    assert (tmp_path / "out" / dsrl_filename(again)).is_file()
    assert not np.array_equal(other.observations, dataset.observations)


def test_behaviour_runs_in_worker_processes_give_the_same_dataset(
    tiny: tuple, monkeypatch: pytest.MonkeyPatch,
) -> None:
    from retrofit.collect import collector

    dataset, _ = tiny
    pools: list[int] = []
    real = collector._train_in_workers

    def counted(jobs: list, workers: int, bar: object) -> list:
        pools.append(workers)
        return real(jobs, workers, bar)

    monkeypatch.setattr(collector, "_train_in_workers", counted)
    pooled = collect_dataset("BallRun", None, 4, seed=7, workers=2, **TINY)
    assert pools == [2]  # the two behaviour runs went to the process pool
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(pooled, key), getattr(dataset, key))
    assert pooled.metadata["provenance"] == dataset.metadata["provenance"]
    with pytest.raises(ConfigError, match="workers"):
        collect_dataset("BallRun", None, 4, seed=7, workers=0, **TINY)


def test_cached_snapshots_give_the_same_dataset(tmp_path, tiny: tuple) -> None:
    dataset, _ = tiny
    steps: list[int] = []
    first = collect_dataset("BallRun", None, 4, seed=7, cache_dir=tmp_path, **TINY)
    n_files = len(list(tmp_path.rglob("*.pt")))
    second = collect_dataset("BallRun", None, 4, seed=7, cache_dir=tmp_path, **TINY)
    # the budget run was trained with seed 7 + 1 above: loaded, not trained again
    snaps = train_behaviour_policies(
        "BallRun",
        0.0,
        BehaviourConfig(64, (0.0, 1.0)),
        budget=20.0,
        seed=8,
        cache_dir=tmp_path,
        on_step=steps.append,
    )
    assert n_files == 4  # 2 runs x 2 checkpoints
    assert len(list(tmp_path.rglob("*.pt"))) == 4
    for key in DSRL_KEYS:
        np.testing.assert_array_equal(getattr(first, key), getattr(dataset, key))
        np.testing.assert_array_equal(getattr(second, key), getattr(dataset, key))
    assert [s.step for s in snaps] == [0, 64] and steps == [64]
    assert all(s.budget == 20.0 for s in snaps)


def test_actions_are_clipped_to_the_bounds() -> None:
    env = make_env("BallRun")
    snaps = train_behaviour_policies("BallRun", 0.0, BehaviourConfig(0, (0.0,)))
    episode = rollout_episode(env, snaps[0], noise=50.0, seed=[0, 0])
    env.close()
    low, high = env.action_space.low, env.action_space.high
    assert (episode["actions"] >= low).all() and (episode["actions"] <= high).all()
    assert np.isin(episode["actions"], [low[0], high[0]]).mean() > 0.9


def test_switching_episode_hands_over_at_the_switch_step() -> None:
    config = BehaviourConfig(64, (0.0, 1.0))
    env = make_env("BallRun")
    first, second = train_behaviour_policies("BallRun", 0.0, config, seed=3)
    alone = rollout_episode(env, first, 0.0, seed=[1, 2])
    switched = rollout_episode(env, first, 0.0, seed=[1, 2], switch_to=second, switch_step=40)
    env.close()
    np.testing.assert_array_equal(switched["actions"][:40], alone["actions"][:40])
    assert not np.array_equal(switched["actions"][40:], alone["actions"][40:])
    expected = second.act(switched["observations"][40]).astype(np.float32)
    np.testing.assert_allclose(switched["actions"][40], np.clip(expected, -1, 1), rtol=1e-6)


def test_stats_filename_and_plot(tiny: tuple, tmp_path) -> None:
    dataset, _ = tiny
    stats = dataset_stats(dataset)
    assert stats["episodes"] == 4 and set(stats["thresholds"]) == {10.0, 20.0, 40.0}
    assert 0.0 <= stats["thresholds"][10.0]["safe_fraction"] <= 1.0
    name = dsrl_filename(dataset)
    assert name.startswith("SafetyBallRun-v0-") and name.endswith("-4.hdf5")
    png = plot_dataset(dataset, tmp_path / "scatter.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"penalties": (), "budgets": ()},
        {"penalties": (-1.0,)},
        {"budgets": (float("inf"),)},
        {"noise_levels": (float("nan"),)},
        {"switch_fraction": 1.5},
    ],
)
def test_bad_collect_config_is_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        CollectConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs", [{"train_steps": -1}, {"checkpoints": ()}, {"checkpoints": (1.5,)}]
)
def test_bad_behaviour_config_is_refused(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        BehaviourConfig(**kwargs)


def test_zero_episodes_is_refused() -> None:
    with pytest.raises(ConfigError, match="n_episodes"):
        collect_dataset("BallRun", None, 0, **TINY)
