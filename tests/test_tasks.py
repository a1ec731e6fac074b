"""retrofit.tasks: constants equal dsrl's ``infos.py`` and the registered environments."""

from __future__ import annotations

import numpy as np
import pytest

from retrofit._compat import import_dsrl
from retrofit.errors import EnvironmentError_
from retrofit.tasks import TASKS, normalized_score, task_info


def short_name(env_id: str) -> str:
    """dsrl's ``infos.py`` key of an env id: ``OfflineCarGoal1Gymnasium-v0`` -> ``CarGoal1``."""
    return env_id.removeprefix("Offline").split("-")[0].removesuffix("Gymnasium")


@pytest.fixture(scope="module")
def dsrl():
    return import_dsrl()


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_row_equals_dsrl_infos(dsrl, env_id):
    from dsrl import infos

    info, name = TASKS[env_id], short_name(env_id)
    assert info.env_id == env_id
    assert info.max_episode_steps == infos.DEFAULT_MAX_EPISODE_STEPS[name]
    assert info.min_reward == infos.MIN_EPISODE_REWARD[name]
    assert info.max_reward == infos.MAX_EPISODE_REWARD[name]
    assert info.max_cost == infos.MAX_EPISODE_COST[name]


@pytest.mark.parametrize("env_id", sorted(TASKS))
def test_row_equals_registered_env(dsrl, env_id):
    import gymnasium as gym

    spec = gym.spec(env_id)
    assert spec.max_episode_steps == TASKS[env_id].max_episode_steps


def test_every_dsrl_task_except_metadrive_is_listed(dsrl):
    from dsrl import infos

    metadrive = {f"{level}{density}" for level in ("easy", "medium", "hard")
                 for density in ("sparse", "mean", "dense")}
    listed = {short_name(env_id) for env_id in TASKS}
    assert set(infos.DEFAULT_MAX_EPISODE_STEPS) - metadrive == listed


def test_thresholds_follow_the_protocol():
    for info in TASKS.values():
        expected = (10.0, 20.0, 40.0) if info.domain == "bullet" else (20.0, 40.0, 80.0)
        assert info.cost_thresholds == expected
        assert info.domain == ("safety" if "Gymnasium" in info.env_id else "bullet")


def test_short_name_and_id_give_the_same_row():
    for env_id in TASKS:
        assert task_info(short_name(env_id)) is task_info(env_id)
    assert task_info("HalfCheetahVelocity").env_id == "OfflineHalfCheetahVelocityGymnasium-v1"


def test_unknown_task_names_the_known_ones():
    with pytest.raises(EnvironmentError_) as err:
        task_info("BallJump")
    message = str(err.value)
    assert "'BallJump'" in message
    assert "OfflineBallRun-v0" in message and "OfflineWalker2dVelocityGymnasium-v1" in message


def test_normalized_score_formula():
    info = task_info("BallRun")
    reward, cost = normalized_score("BallRun", [info.min_reward, info.max_reward], [0.0, 20.0], 10)
    np.testing.assert_allclose(reward, [0.0, 1.0])
    np.testing.assert_allclose(cost, [0.0, 2.0])
    _, cost0 = normalized_score("BallRun", 0.0, 0.0, 0)  # κ = 0: ε = 1
    assert cost0 == 1.0


def test_negative_threshold_is_rejected():
    with pytest.raises(EnvironmentError_, match="cost_threshold"):
        normalized_score("BallRun", 1.0, 1.0, -1)


@pytest.mark.parametrize(
    "task", ["OfflineBallRun-v0", "OfflineCarRun-v0", "OfflineDroneCircle-v0",
             "OfflinePointCircle1Gymnasium-v0", "OfflineHopperVelocityGymnasium-v1"]
)
def test_normalized_score_equals_dsrl(dsrl, task, rng):
    """Our scores equal dsrl's ``get_normalized_score`` after ``set_target_cost(κ)``, κ = 0 too."""
    import gymnasium as gym

    info = task_info(task)
    env = gym.make(task).unwrapped  # constructing a safety-gymnasium task takes seconds: once
    span = info.max_reward - info.min_reward
    rewards = np.concatenate([[info.min_reward, info.max_reward, 0.0],
                              info.min_reward + span * rng.uniform(-0.2, 1.2, size=20)])
    costs = np.concatenate([[0.0, info.max_cost, 1.0], rng.uniform(0, info.max_cost, size=20)])
    for cost_threshold in (0.0, *info.cost_thresholds, 7.5):
        env.set_target_cost(cost_threshold)
        ours = normalized_score(task, rewards, costs, cost_threshold)
        for i in range(len(rewards)):
            theirs = env.get_normalized_score(rewards[i], costs[i])
            assert ours[0][i] == theirs[0]
            assert ours[1][i] == theirs[1]
    env.close()
