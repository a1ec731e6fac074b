"""Adapter tests: shared helpers that make small real BallRun data (100-step episodes)."""

from __future__ import annotations

import functools
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np

from retrofit.data.dataset import TrajectoryDataset

TASK = "OfflineBallRun-v0"


@functools.lru_cache(maxsize=4)
def ballrun_dataset(n_episodes: int = 4, seed: int = 0) -> TrajectoryDataset:
    """Episodes of BallRun under uniform random actions (the env's own rewards and costs)."""
    from retrofit.envs import make_env, step_env

    env = make_env(TASK)
    rng = np.random.default_rng(seed)
    trajectories = []
    try:
        for episode in range(n_episodes):
            obs, _ = env.reset(seed=seed * 1000 + episode)
            rows: dict[str, list] = {k: [] for k in ("o", "n", "a", "r", "c", "t", "x")}
            done = False
            while not done:
                act = rng.uniform(env.action_space.low, env.action_space.high).astype(np.float32)
                nxt, rew, cost, term, trunc, _ = step_env(env, act)
                row = (obs, nxt, act, rew, cost, term, trunc and not term)
                for key, value in zip(rows, row, strict=True):
                    rows[key].append(value)
                obs, done = nxt, term or trunc
            trajectories.append({
                "observations": np.asarray(rows["o"], np.float32),
                "next_observations": np.asarray(rows["n"], np.float32),
                "actions": np.asarray(rows["a"], np.float32),
                "rewards": np.asarray(rows["r"], np.float32),
                "costs": np.asarray(rows["c"], np.float32),
                "terminals": np.asarray(rows["t"], bool),
                "timeouts": np.asarray(rows["x"], bool),
            })
    finally:
        env.close()
    return TrajectoryDataset.from_trajectories(trajectories, task=TASK)


def preference_sets(n_episodes: int = 4) -> tuple[TrajectoryDataset, TrajectoryDataset]:
    """Preferred = the lower-cost half of the episodes, non-preferred = the rest."""
    data = ballrun_dataset(n_episodes)
    _, costs = data.episode_returns()
    order = np.argsort(costs, kind="stable")
    half = len(order) // 2
    return data.select_episodes(sorted(order[:half])), data.select_episodes(sorted(order[half:]))


def run_fresh(code: str) -> str:
    """Run ``code`` in a fresh interpreter (no retrofit import) and return its stdout."""
    out = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


SHIFTED_LOW = np.array([-2.0, 0.0], dtype=np.float32)
SHIFTED_HIGH = np.array([0.5, 3.0], dtype=np.float32)


class ShiftedBox(gym.ActionWrapper):
    """BallRun with the action box [-2, 0.5] x [0, 3], mapped linearly onto the real [-1, 1]²."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.action_space = gym.spaces.Box(SHIFTED_LOW, SHIFTED_HIGH, dtype=np.float32)

    def action(self, action: np.ndarray) -> np.ndarray:
        return (2 * (np.asarray(action) - SHIFTED_LOW) / (SHIFTED_HIGH - SHIFTED_LOW)
                - 1).astype(np.float32)
