"""retrofit.evaluation: exact against a hand-written loop, seeded, independent of n_envs."""

from __future__ import annotations

import dataclasses
import json
import random

import numpy as np
import pytest

from retrofit.envs import make_env, step_env
from retrofit.errors import ConfigError, PolicyError
from retrofit.evaluation import EvaluationResult, evaluate, reset_env
from retrofit.tasks import normalized_score


def linear_policy(rng: np.random.Generator, observation_dim: int, action_dim: int):
    """A deterministic callable that reacts to the observation (so episodes differ by seed).

    Batch-invariant bit for bit: a BLAS matmul may round a 4-row batch differently from one row
    (gemm vs gemv kernels; seen on some CPUs), and Car/Drone dynamics amplify 1e-10 into whole
    episodes, so the product is summed term by term in a fixed order instead.
    """
    weights = rng.normal(size=(observation_dim, action_dim)).astype(np.float32)

    def policy(obs: np.ndarray) -> np.ndarray:
        obs = np.asarray(obs, dtype=np.float32)
        total = np.zeros((*obs.shape[:-1], action_dim), dtype=np.float32)
        for i in range(observation_dim):
            total += obs[..., i:i + 1] * weights[i]
        return np.tanh(total)

    return policy


class NoisyAdapter:
    """The ``act`` part of a PolicyAdapter: ``deterministic=False`` draws numpy or torch noise."""

    def __init__(self, source: str = "numpy") -> None:
        self.source = source
        self.calls: list[bool] = []

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        self.calls.append(deterministic)
        mean = np.tanh(obs[:, :2]).astype(np.float32)
        if deterministic:
            return mean
        if self.source == "torch":
            import torch

            noise = torch.randn(mean.shape).numpy()
        else:
            noise = np.random.normal(size=mean.shape)
        return np.clip(mean + 0.3 * noise, -1, 1).astype(np.float32)


def hand_rollouts(policy, task: str, episodes: int, seed: int):
    """The reference loop: one env, episode i reset with seed + i, one action per step.

    bullet-safety-gym ignores ``reset(seed=...)`` and draws the start state from the global numpy
    and ``random`` streams, so they are seeded too (what ``reset_env`` does, without the restore).
    """
    env = make_env(task)
    rewards, costs, lengths = [], [], []
    for i in range(episodes):
        np.random.seed(seed + i)
        random.seed(seed + i)
        obs, _ = env.reset(seed=seed + i)
        total_reward = total_cost = 0.0
        steps = 0
        done = False
        while not done:
            action = policy(obs[None].astype(np.float32))[0]
            obs, reward, cost, terminated, truncated, _ = step_env(env, action)
            total_reward += reward
            total_cost += cost
            steps += 1
            done = terminated or truncated
        rewards.append(total_reward)
        costs.append(total_cost)
        lengths.append(steps)
    env.close()
    return np.array(rewards), np.array(costs), np.array(lengths)


def test_equals_hand_written_loop(rng):
    policy = linear_policy(rng, 7, 2)
    result = evaluate(policy, "BallRun", cost_threshold=10, episodes=3, seed=5)
    rewards, costs, lengths = hand_rollouts(policy, "OfflineBallRun-v0", 3, 5)
    np.testing.assert_array_equal(result.rewards, rewards)
    np.testing.assert_array_equal(result.costs, costs)
    np.testing.assert_array_equal(result.lengths, lengths)
    assert np.all(result.lengths == 100)  # DSRL's full time limit
    norm_r, norm_c = normalized_score("BallRun", rewards, costs, 10)
    np.testing.assert_array_equal(result.normalized_rewards, norm_r)
    np.testing.assert_array_equal(result.normalized_costs, norm_c)
    assert result.reward == np.mean(rewards) and result.cost == np.mean(costs)
    assert result.normalized_reward == np.mean(norm_r)
    assert result.normalized_cost == np.mean(norm_c)
    assert result.safe == (np.mean(norm_c) <= 1)
    assert result.task == "OfflineBallRun-v0"
    assert (result.episodes, result.seed, result.deterministic) == (3, 5, True)
    assert result.out_of_bounds_fraction == 0.0
    assert result.wall_clock_s > 0


def test_zero_policy_equals_hand_written_loop():
    def zeros(obs):
        return np.zeros((len(obs), 2), dtype=np.float32)

    result = evaluate(zeros, "OfflineBallRun-v0", cost_threshold=0, episodes=2, seed=0)
    rewards, costs, _ = hand_rollouts(zeros, "OfflineBallRun-v0", 2, 0)
    np.testing.assert_array_equal(result.rewards, rewards)
    np.testing.assert_array_equal(result.normalized_costs, costs + 1.0)  # κ = 0: ε = 1


def test_reproducible_for_a_seed_and_different_across_seeds(rng):
    policy = linear_policy(rng, 7, 2)
    a = evaluate(policy, "BallRun", 10, episodes=3, seed=11)
    b = evaluate(policy, "BallRun", 10, episodes=3, seed=11)
    c = evaluate(policy, "BallRun", 10, episodes=3, seed=12)
    np.testing.assert_array_equal(a.rewards, b.rewards)
    np.testing.assert_array_equal(a.costs, b.costs)
    assert not np.array_equal(a.rewards, c.rewards)
    np.testing.assert_array_equal(a.rewards[1:], c.rewards[:2])  # episode i uses seed + i


@pytest.mark.parametrize(
    ("task", "observation_dim", "action_dim", "episodes", "n_envs"),
    [("BallRun", 7, 2, 6, 4),  # more episodes than envs: slots are reused
     ("CarRun", 7, 2, 3, 3),  # RaceCar motor targets would leak between episodes
     ("DroneRun", 17, 4, 3, 3)],  # Drone motor targets would leak between episodes
)
def test_n_envs_gives_identical_episodes(rng, task, observation_dim, action_dim, episodes, n_envs):
    policy = linear_policy(rng, observation_dim, action_dim)
    one = evaluate(policy, task, 10, episodes=episodes, seed=3, n_envs=1)
    many = evaluate(policy, task, 10, episodes=episodes, seed=3, n_envs=n_envs)
    assert many.n_envs == n_envs
    np.testing.assert_array_equal(one.rewards, many.rewards)
    np.testing.assert_array_equal(one.costs, many.costs)
    np.testing.assert_array_equal(one.lengths, many.lengths)


def test_n_envs_batches_the_policy_call(rng):
    batch_sizes: list[int] = []
    inner = linear_policy(rng, 7, 2)

    def policy(obs):
        batch_sizes.append(len(obs))
        return inner(obs)

    evaluate(policy, "BallRun", 10, episodes=4, n_envs=4)
    assert batch_sizes == [4] * 100  # one forward pass per step for all four envs


def test_more_envs_than_episodes_is_capped(rng):
    result = evaluate(linear_policy(rng, 7, 2), "BallRun", 10, episodes=2, n_envs=8)
    assert result.n_envs == 2


def test_reset_env_leaves_the_global_streams_alone():
    env = make_env("BallRun")
    np.random.seed(123)
    random.seed(123)
    expected = np.random.random(), random.random()
    np.random.seed(123)
    random.seed(123)
    first = reset_env(env, 9)
    assert (np.random.random(), random.random()) == expected
    np.testing.assert_array_equal(reset_env(env, 9), first)
    env.close()


@pytest.mark.parametrize("source", ["numpy", "torch"])
def test_stochastic_mode_is_seeded(source):
    policy = NoisyAdapter(source)
    a = evaluate(policy, "BallRun", 10, episodes=2, seed=1, deterministic=False)
    b = evaluate(policy, "BallRun", 10, episodes=2, seed=1, deterministic=False)
    c = evaluate(policy, "BallRun", 10, episodes=2, seed=2, deterministic=False)
    d = evaluate(policy, "BallRun", 10, episodes=2, seed=1, deterministic=True)
    assert set(policy.calls) == {False, True}
    assert not a.deterministic
    np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(a.rewards[1], c.rewards[0])  # same start, other noise
    assert not np.array_equal(a.rewards, d.rewards)


def test_caller_random_streams_are_restored():
    import torch
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    expected = np.random.random(), random.random(), torch.rand(1).item()
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    evaluate(NoisyAdapter("torch"), "BallRun", 10, episodes=1, deterministic=False)
    assert (np.random.random(), random.random(), torch.rand(1).item()) == expected


def test_out_of_bounds_actions_pass_through_and_are_counted():
    def twos(obs):
        return np.full((len(obs), 2), 2.0, dtype=np.float32)

    def ones(obs):
        return np.ones((len(obs), 2), dtype=np.float32)

    outside = evaluate(twos, "BallRun", 10, episodes=1)
    inside = evaluate(ones, "BallRun", 10, episodes=1)
    assert outside.out_of_bounds_fraction == 1.0
    assert inside.out_of_bounds_fraction == 0.0
    np.testing.assert_array_equal(outside.rewards, inside.rewards)  # the env clips, not us
    assert "outside the action space" in str(outside)


def test_torch_module_goes_through_wrap():
    import torch

    from retrofit.adapters import wrap
    from retrofit.policies.gaussian import TanhGaussianPolicy

    torch.manual_seed(0)
    module = TanhGaussianPolicy(7, 2, -np.ones(2), np.ones(2), hidden_sizes=(16,))
    direct = evaluate(module, "BallRun", 10, episodes=1)
    wrapped = evaluate(wrap(module), "BallRun", 10, episodes=1)
    np.testing.assert_array_equal(direct.rewards, wrapped.rewards)


@pytest.mark.parametrize(
    ("policy", "match"),
    [(lambda obs: np.zeros((len(obs), 3)), r"shape \(1, 3\).*expected \(1, 2\)"),
     (lambda obs: np.full((len(obs), 2), np.nan), "non-finite"),
     (object(), "Cannot retrofit")],
)
def test_bad_policies_are_clear_errors(policy, match):
    with pytest.raises(PolicyError, match=match):
        evaluate(policy, "BallRun", 10, episodes=1)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"episodes": 0}, "episodes"), ({"n_envs": 0}, "n_envs"),
     ({"cost_threshold": -1.0}, "cost_threshold"), ({"seed": -1}, "seed"),
     ({"episodes": 2.5}, "episodes")],
)
def test_bad_settings_are_config_errors(kwargs, field):
    args = {"cost_threshold": 10.0, **kwargs}
    with pytest.raises(ConfigError, match=field):
        evaluate(lambda obs: np.zeros((len(obs), 2)), "BallRun", **args)


def test_result_is_frozen_serialisable_and_readable(rng):
    result = evaluate(linear_policy(rng, 7, 2), "BallRun", 40, episodes=2, progress=True)
    assert isinstance(result, EvaluationResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.reward = 0.0  # type: ignore[misc]
    with pytest.raises(ValueError):
        result.rewards[0] = 0.0
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("normalized_reward", "normalized_cost", "reward", "cost", "safe", "task",
                "cost_threshold", "episodes", "seed", "rewards", "normalized_costs"):
        assert key in data
    assert data["rewards"] == result.rewards.tolist()
    assert json.loads(result.to_json()) == data
    text = str(result)
    assert "OfflineBallRun-v0" in text and "normalized reward" in text
    assert f"{result.normalized_cost:.3f}" in text
