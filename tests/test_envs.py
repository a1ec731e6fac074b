"""retrofit.envs: every DSRL task is made and stepped; both step APIs; bullet under capture."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from retrofit import _compat
from retrofit.envs import make_env, step_env
from retrofit.errors import EnvironmentError_
from retrofit.tasks import TASKS

# one bullet, one velocity, one navigation task run by default; the full sweep (about 50 s, the
# navigation tasks take 2-4 s each to build) is marked slow
FAST = {"OfflineBallRun-v0", "OfflineHalfCheetahVelocityGymnasium-v1",
        "OfflinePointGoal1Gymnasium-v0"}
SWEEP = [pytest.param(env_id, marks=() if env_id in FAST else pytest.mark.slow)
         for env_id in sorted(TASKS)]


@pytest.mark.parametrize("env_id", SWEEP)
def test_make_and_step(env_id, rng):
    env = make_env(env_id)
    try:
        assert env.spec.max_episode_steps == TASKS[env_id].max_episode_steps
        assert hasattr(env.unwrapped, "get_normalized_score")  # dsrl's own Offline* env
        obs, _ = env.reset(seed=0)
        assert obs.shape == env.observation_space.shape
        space = env.action_space
        for _ in range(3):
            action = rng.uniform(space.low, space.high).astype(space.dtype)
            obs, reward, cost, terminated, truncated, info = step_env(env, action)
            assert obs.shape == env.observation_space.shape
            assert np.all(np.isfinite(obs))
            assert isinstance(reward, float) and isinstance(cost, float)
            assert cost >= 0
            assert isinstance(terminated, bool) and isinstance(truncated, bool)
            assert cost == float(info["cost"])
    finally:
        env.close()


def test_short_name_makes_the_same_env():
    env = make_env("BallRun")
    try:
        assert env.spec.id == "OfflineBallRun-v0"
    finally:
        env.close()


def test_unknown_task():
    with pytest.raises(EnvironmentError_, match="OfflineBallRun-v0"):
        make_env("NoSuchTask")


def test_step_env_handles_safety_gymnasium_six_tuple():
    _compat.patch_safety_gymnasium()
    import safety_gymnasium

    env = safety_gymnasium.make("SafetyPointGoal1-v0")
    try:
        action = np.array([0.7, -0.4], dtype=np.float64)
        env.reset(seed=3)
        ours = step_env(env, action)
        env.reset(seed=3)
        raw = env.step(action)
        assert len(raw) == 6  # the native API this test is about
        obs, reward, cost, terminated, truncated, _ = ours
        np.testing.assert_array_equal(obs, raw[0])
        assert (reward, cost, terminated, truncated) == (
            float(raw[1]), float(raw[2]), bool(raw[3]), bool(raw[4])
        )
        assert isinstance(cost, float)
    finally:
        env.close()


def test_step_env_without_cost_is_a_clear_error():
    import gymnasium as gym

    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    with pytest.raises(EnvironmentError_, match=r"info\['cost'\]"):
        step_env(env, np.zeros(1, dtype=np.float32))
    env.close()


class _FourTuple:
    def step(self, action):
        return np.zeros(2), 0.0, False, {}


def test_step_env_rejects_other_tuple_lengths():
    with pytest.raises(EnvironmentError_, match="returned 4 values"):
        step_env(_FourTuple(), np.zeros(1))


def test_bullet_env_works_while_output_is_captured(capsys):
    # under capsys sys.stdout has no file descriptor; building the pybullet client redirects it
    env = make_env("BallRun")
    try:
        env.reset(seed=0)
        step_env(env, np.zeros(2, dtype=np.float32))
    finally:
        env.close()


@pytest.mark.parametrize("capture", ["fd", "sys"])
def test_bullet_import_under_pytest_capture(tmp_path, capture):
    """A fresh interpreter imports bullet-safety-gym for the first time inside a captured test."""
    inner = tmp_path / "test_inner.py"
    inner.write_text(textwrap.dedent("""
        def test_import_and_step():
            from retrofit.envs import make_env, step_env
            import numpy as np

            env = make_env("OfflineCarRun-v0")
            env.reset(seed=0)
            step_env(env, np.zeros(2, dtype=np.float32))
            env.close()
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--capture={capture}",
         str(inner)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
